"""Deprecated and renamed Axolotl spellings, translated to the current keys with a warning.

Each translation runs on the raw YAML data before validation, so the typed config only ever holds the
current spelling. Setting both the old and the new spelling to different values is a conflict error.
"""

from __future__ import annotations

from typing import Any

from axo.config.keys import Locator
from axo.config.problems import Kind, Problem, Severity
from axo.config.yaml_io import KeyPath, format_key_path

# old key -> new key; the value carries over unchanged.
RENAMED_KEYS: dict[str, str] = {
    "dataset_processes": "dataset_num_proc",
    "noisy_embedding_alpha": "neftune_noise_alpha",
    "evaluation_strategy": "eval_strategy",
    "liger_swiglu": "liger_glu_activation",
}

# boolean switch -> attn_implementation value it stands for.
ATTENTION_SWITCHES: dict[str, str] = {
    "flash_attention": "flash_attention_2",
    "sdp_attention": "sdpa",
    "eager_attention": "eager",
    "flex_attention": "flex_attention",
    "xformers_attention": "sdpa",  # xformers is not a dependency; sdpa is its fused equivalent in torch
}

SHAREGPT_PROPERTY_MAPPINGS = {"role": "from", "content": "value"}


class _Translator:
    def __init__(self, locate: Locator):
        self.locate = locate
        self.problems: list[Problem] = []
        self.moved: dict[KeyPath, KeyPath] = {}  # new key path -> the old key path it was written as

    def report(self, severity: Severity, kind: Kind, path: KeyPath, message: str, hint: str | None = None) -> None:
        line, origin = self.locate(path)
        self.problems.append(Problem(severity, kind, format_key_path(path), message, hint, line, origin))

    def move(self, data: dict[str, Any], old: str, new: str, value: Any, path: KeyPath) -> None:
        """Put `value` under `new`, unless the user already set `new` (or another old spelling of it)."""
        if new in data and data[new] is not None and data[new] != value:
            earlier = self.moved.get((*path, new))
            other = f"`{earlier[-1]}`" if earlier else f"`{new}`"
            self.report(
                Severity.ERROR,
                Kind.CONFLICT,
                (*path, old),
                f"means `{new}: {value}`, but {other} sets `{new}: {data[new]}`.",
                hint=f"Keep only `{new}`.",
            )
            return
        data[new] = value
        self.moved[(*path, new)] = (*path, old)

    def rename(self, data: dict[str, Any], path: KeyPath) -> None:
        for old, new in RENAMED_KEYS.items():
            if old in data:
                value = data.pop(old)
                self.report(Severity.WARNING, Kind.DEPRECATED, (*path, old),
                            f"is deprecated; read as `{new}: {value}`.", hint=f"Rename it to `{new}`.")
                self.move(data, old, new, value, path)

    def attention(self, data: dict[str, Any]) -> None:
        for switch, implementation in ATTENTION_SWITCHES.items():
            if switch not in data:
                continue
            value = data.pop(switch)
            if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0", "none", ""):
                value = False  # Axolotl's field is a bool: "false" in quotes still means off
            if value in (None, False):
                self.report(Severity.NOTE, Kind.DEPRECATED, (switch,),
                            f"is `{value}`, which changes nothing; the attention kernel is chosen by "
                            "`attn_implementation`.", hint="Remove the key.")
                continue
            note = " (xformers is not used; torch's fused SDPA kernel takes its place)" if switch == "xformers_attention" else ""
            self.report(Severity.WARNING, Kind.DEPRECATED, (switch,),
                        f"is read as `attn_implementation: {implementation}`{note}.",
                        hint=f"Write `attn_implementation: {implementation}` instead.")
            self.move(data, switch, "attn_implementation", implementation, ())

    def dataset(self, entry: dict[str, Any], path: KeyPath) -> None:
        mappings: dict[str, Any] = {}
        for old, prop in (("message_field_role", "role"), ("message_field_content", "content")):
            if old in entry:
                value = entry.pop(old)
                self.report(Severity.WARNING, Kind.DEPRECATED, (*path, old),
                            f"is deprecated; read as `message_property_mappings: {{{prop}: {value}}}`.",
                            hint="Use `message_property_mappings` instead.")
                mappings[prop] = value
        if mappings:
            existing = entry.get("message_property_mappings") or {}
            entry["message_property_mappings"] = {**mappings, **existing}

        conversation = entry.pop("conversation", None)
        dataset_type = entry.get("type")
        if isinstance(dataset_type, str) and dataset_type.split(":")[0] == "sharegpt":
            self.report(
                Severity.WARNING,
                Kind.DEPRECATED,
                (*path, "type"),
                f"`{dataset_type}` is read as `type: chat_template` with `field_messages: conversations` and "
                "`message_property_mappings: {role: from, content: value}` (Axolotl no longer accepts sharegpt).",
                hint="Write those keys instead of `type: sharegpt`.",
            )
            entry["type"] = "chat_template"
            entry.setdefault("field_messages", "conversations")
            entry["message_property_mappings"] = {**SHAREGPT_PROPERTY_MAPPINGS,
                                                  **(entry.get("message_property_mappings") or {})}
        if conversation is not None:
            self.report(Severity.WARNING, Kind.DEPRECATED, (*path, "conversation"),
                        f"is the old sharegpt template key; read as `chat_template: {conversation}`.",
                        hint="Write `chat_template:` instead.")
            self.move(entry, "conversation", "chat_template", conversation, path)


def translate_deprecated(data: dict[str, Any], locate: Locator) -> tuple[list[Problem], dict[KeyPath, KeyPath]]:
    """Rewrite old spellings in `data` in place.

    Returns:
        A warning for each old spelling (an error for conflicts), and a map from each new key path to the
        old one it was written as, so later problems about the new key point at the user's line.
    """
    translator = _Translator(locate)
    translator.rename(data, ())
    translator.attention(data)
    for section in ("datasets", "test_datasets"):
        entries = data.get(section)
        if isinstance(entries, list):
            for index, entry in enumerate(entries):
                if isinstance(entry, dict):
                    translator.dataset(entry, (section, index))
    return translator.problems, translator.moved
