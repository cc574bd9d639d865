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

from axo.config.axolotl_keys import AXOLOTL_DATASET_KEYS, AXOLOTL_KEYS
from axo.config.problems import Kind, Problem, Severity
from axo.config.redact import is_secret_key
from axo.config.schema.names import did_you_mean
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
    """Delete keys of `data` (in place, recursively) that `model` does not define, reporting each."""
    problems: list[Problem] = []
    known = user_keys(model)
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
    axolotl_names = AXOLOTL_KEYS if len(path) == 1 else AXOLOTL_DATASET_KEYS if in_dataset else frozenset()
    suggestion = did_you_mean(name, known)
    if name in axolotl_names:
        return Problem(
            Severity.WARNING,
            Kind.UNSUPPORTED_KEY,
            where,
            "is an Axolotl option that axo does not support; it is ignored.",
            hint="Remove it, or open an issue if you need it.",
            line=line,
            origin=origin,
        )
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
