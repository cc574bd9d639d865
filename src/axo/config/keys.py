"""Find keys the schema does not know, report them with a did-you-mean, and remove them.

Axolotl silently drops unknown keys, so a misspelt `learning_rte` trains with the default learning rate.
We walk the user's data against the schema (recursing into dataset entries and other nested sections),
and every key that is not a field becomes a problem naming the key, its line and the closest known key.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel

from axo.config.axolotl_keys import (
    AXOLOTL_DATASET_KEYS,
    AXOLOTL_KEYS,
    PREFERENCE_DATASET_TYPES,
)
from axo.config.key_tiers import (
    LEGACY_AXOLOTL_KEYS,
    TRAINING_MODES,
    training_mode,
    unsupported_message,
)
from axo.config.plugins import apply_plugins
from axo.config.problems import Kind, Problem, Severity
from axo.config.redact import is_secret_key
from axo.config.schema.names import DATASET_TYPES, did_you_mean
from axo.config.yaml_io import KeyPath, format_key_path

Locator = typing.Callable[[KeyPath], tuple[int | None, str | None]]


def user_keys(model: type[BaseModel]) -> dict[str, str]:
    """Map every spelling a user may write (field name and alias) to the field name."""
    keys: dict[str, str] = {}
    for name, info in model.model_fields.items():
        keys[name] = name
        if info.alias:
            keys[info.alias] = name
    return keys


def section_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `list[DatasetConfig] | None`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple):
        for arg in typing.get_args(annotation):
            found = section_of(arg)
            if found is not None:
                return found
    return None


def remove_unknown_keys(
    data: dict[str, Any], model: type[BaseModel], locate: Locator, path: KeyPath = ()
) -> list[Problem]:
    """Delete keys of `data` (in place, recursively) that `model` does not define, reporting each.

    At the top level it first settles the Axolotl keys axo cannot act on but must not drop: a training method
    axo lacks (`rl`, `reward_model`, …: an error) and `plugins:` (honoured or reported by name).
    """
    problems: list[Problem] = []
    known = user_keys(model)
    if not path:
        problems += refuse_training_modes(data, set(known), locate)
        problems += apply_plugins(data, set(known), locate)
    for key in list(data):
        # Lines are recorded under the key as written; `1:` or `true:` arrive here as int/bool.
        sub = (*path, key if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key))
        line, origin = locate(sub)
        if not isinstance(key, str) or key not in known:
            problems.append(_unknown_key_problem(key, sub, known, line, origin))
            del data[key]
            continue
        nested = section_of(model.model_fields[known[key]].annotation)
        value = data[key]
        if nested is None:
            continue
        if isinstance(value, dict):
            problems += remove_unknown_keys(value, nested, locate, sub)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    problems += remove_unknown_keys(item, nested, locate, (*sub, index))
    return problems


def _unknown_key_problem(
    key: Any, path: KeyPath, known: dict[str, str], line: int | None, origin: str | None
) -> Problem:
    name = str(key)
    where = format_key_path(path)
    in_dataset = len(path) == 3 and path[0] in ("datasets", "test_datasets")
    axolotl_names = (AXOLOTL_KEYS | LEGACY_AXOLOTL_KEYS if len(path) == 1 else AXOLOTL_DATASET_KEYS if in_dataset
                     else frozenset())
    suggestion = did_you_mean(name, known)
    if name in axolotl_names:
        message = (unsupported_message(name) if len(path) == 1 else _PREFERENCE_FIELD if name in
                   ("field_chosen", "field_rejected") else "is an Axolotl dataset option that axo does not "
                   "support; it is ignored, so the data may be read differently from Axolotl.")
        return Problem(Severity.WARNING, Kind.UNSUPPORTED_KEY, where, message,
                       hint="Remove it, or open an issue if you need it.", line=line, origin=origin)
    if is_secret_key(name):  # e.g. `wandb_api_key`: "did you mean wandb_name?" would mislead
        return Problem(Severity.WARNING, Kind.UNKNOWN_KEY, where, "looks like a secret; axo reads no keys or "
                       "passwords from the config or the command line (files and the process list would show "
                       "them), so it is ignored.", "Set it in the environment: WANDB_API_KEY for W&B, HF_TOKEN for "
                       "the Hub, MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN for MLflow.", line, origin)
    return Problem(
        Severity.WARNING,
        Kind.UNKNOWN_KEY,
        where,
        f"unknown key{suggestion}; it is ignored.",
        hint="Fix the spelling, or run `axo config-schema` to list the keys." if not suggestion else None,
        line=line,
        origin=origin,
    )


_PREFERENCE_FIELD = ("is a field of Axolotl's preference datasets (chosen/rejected pairs), read only under `rl:` "
                     "or `reward_model:`; here it is ignored.")


def refuse_training_modes(data: dict[str, Any], schema_keys: set[str], locate: Locator) -> list[Problem]:
    """Methods axo lacks (`rl: grpo|gdpo|ebft`, `process_reward_model`) are errors naming the method: axo would
    train something else. Preference and reward dataset `type`s need `rl` or `reward_model`, and those modes
    need them. Refused keys (and such dataset types) are removed so that validation adds no second, less
    helpful error."""
    problems = []
    mode = training_mode(data)
    for key in TRAINING_MODES:
        if key not in data:
            continue
        if mode and mode[0] == key:
            what, _, plan = mode[1].partition("; ")
            line, origin = locate((key,))
            problems.append(Problem(Severity.ERROR, Kind.UNSUPPORTED_KEY, key, f"`{key}: {_yaml(data[key])}` asks "
                                    f"for {what}, which axo does not have ({plan}); it would train something "
                                    "else.", "Train this config with Axolotl, or choose a method axo has (rl: "
                                    "dpo|ipo|orpo|simpo|kto, reward_model: true, or SFT).", line, origin))
            del data[key]
        elif key not in schema_keys or _unset(data[key]):
            del data[key]
    problems += _check_dataset_types(data, mode is not None, locate)
    return problems


def _unset(value: Any) -> bool:
    return value in (None, False) or (isinstance(value, str) and value.lower() in ("", "false", "none", "no"))


def preference_only_type(kind: str) -> bool:
    """Whether a dataset `type` exists only for preference/reward training (`chat_template.default` is also
    Axolotl's spelling of the SFT `chat_template`)."""
    return (kind in PREFERENCE_DATASET_TYPES and kind != "chat_template.default") or kind.startswith("bradley_terry.")


def _check_dataset_types(data: dict[str, Any], refused: bool, locate: Locator) -> list[Problem]:
    """SFT configs may not name preference types, and `rl`/`reward_model` configs only name those."""
    problems = []
    method = data.get("rl") or ("reward_model" if data.get("reward_model") is True else None)
    for section in ("datasets", "test_datasets"):
        entries = data.get(section)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            kind = entry.get("type") if isinstance(entry, dict) else None
            if not isinstance(kind, str):
                continue
            line, origin = locate((section, index, "type"))
            where = f"{section}[{index}].type"
            if refused:
                if preference_only_type(kind) or kind.split(":")[0] not in DATASET_TYPES:
                    del entry["type"]  # a dataset of the refused method: its error above says it all
            elif method is None and preference_only_type(kind):
                problems.append(Problem(Severity.ERROR, Kind.CONFLICT, where, f"`{kind}` is a preference or "
                                        "reward-model dataset type, but the config trains SFT (no `rl:` or "
                                        "`reward_model:`).", "Add `rl: dpo` (or ipo/orpo/simpo/kto) for preference "
                                        "tuning or `reward_model: true`, or use an SFT type (chat_template, "
                                        "alpaca, completion, …).", line, origin))
                del entry["type"]
            elif method is not None and kind != "chat_template.default" and kind not in PREFERENCE_DATASET_TYPES \
                    and not kind.startswith("bradley_terry."):
                problems.append(Problem(Severity.ERROR, Kind.CONFLICT, where, f"`{kind}` is an SFT dataset type, "
                                        f"but `{'rl: ' + str(method) if method != 'reward_model' else 'reward_model: true'}`"
                                        " trains on chosen/rejected pairs.", "Use a preference type such as "
                                        "chat_template.default, chatml.intel, chatml.argilla, or a `type:` mapping "
                                        "with field_prompt/field_chosen/field_rejected.", line, origin))
                del entry["type"]
    return problems


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
