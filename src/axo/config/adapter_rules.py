"""Cross-key rules of the adapter kinds (`adapter:`; models/adapters/): a kind axo knows, a base it can sit on,
rows it can train on, and keys of another kind that would be ignored."""

from __future__ import annotations

from axo.config.problems import Kind, Severity
from axo.config.schema import AxoConfig
from axo.config.schema.adapter_kinds import AdapterKindsSection


def adapter_findings(cfg: AxoConfig, user_set: set[str]) -> list:
    """Findings (config/rules.py `Finding`) for `adapter:` and the kinds' keys."""
    from axo.config.rules import Finding
    from axo.models.adapters import ADAPTERS

    found: list[Finding] = []
    owners = {key: name for name in ADAPTERS.all() for key in ADAPTERS.get(name).own_keys()}
    for key in sorted(user_set & set(AdapterKindsSection.model_fields)):
        owner = owners.get(key)
        if owner is not None and owner != cfg.adapter:
            found.append(Finding(key, f"has no effect: it is a key of `adapter: {owner}`, and this config trains "
                                 f"{f'`adapter: {cfg.adapter}`' if cfg.adapter else 'a full fine-tune'}.",
                                 f"Remove it, or set `adapter: {owner}`.", Severity.WARNING))
    if cfg.adapter is None:
        return found
    kind = ADAPTERS.get(cfg.adapter)
    if kind is None:
        return [*found, Finding("adapter", f"{cfg.adapter!r} is not an adapter kind axo knows.",
                                f"Use one of: {', '.join(ADAPTERS.all())}; or leave it blank for a full fine-tune.",
                                kind=Kind.TYPE)]
    if cfg.load_in_4bit and not kind.on_4bit_base:
        found.append(Finding("load_in_4bit", f"`adapter: {cfg.adapter}` cannot train on a 4-bit base: peft has no "
                             "bitsandbytes 4-bit layer for it.", "Remove `load_in_4bit` (train on the bf16 base), or "
                             f"use one of the kinds that have one: {', '.join(_on_4bit(ADAPTERS))}."))
    if cfg.sample_packing and not kind.packs:
        found.append(Finding("sample_packing", f"cannot be used with `adapter: {cfg.adapter}`: its virtual tokens "
                             "come before each row, so the samples packed after the first would never see them.",
                             "Set `sample_packing: false`."))
    return found


def _on_4bit(adapters) -> list[str]:
    return [f"`{name}`" for name in adapters.all() if adapters.get(name).on_4bit_base]
