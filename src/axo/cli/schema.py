"""`axo config-schema [KEY]`: the JSON schema of the config, or one key explained."""

from __future__ import annotations

import json

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from axo.config.aliases import ATTENTION_SWITCHES, RENAMED_KEYS
from axo.config.keys import section_of, user_keys
from axo.config.schema import AxoConfig, DatasetConfig
from axo.config.schema.names import did_you_mean
from axo.config.support import not_implemented_message


def config_schema(
    key: str = typer.Argument(None, help="Explain one key instead of printing the whole schema.", show_default=False),
) -> None:
    """Print the JSON schema of axo's config (every key, type, default and description)."""
    if key is None:
        typer.echo(json.dumps(AxoConfig.model_json_schema(by_alias=True), indent=2))
        return
    found = _find_field(key.replace("-", "_"))
    if found is None:
        spelled = {**user_keys(AxoConfig), **user_keys(DatasetConfig)}
        old = RENAMED_KEYS.get(key) or ATTENTION_SWITCHES.get(key) and "attn_implementation"
        hint = f" It is an old spelling of `{old}`." if old else did_you_mean(key, spelled)
        typer.echo(f"error: unknown key {key!r}.{hint}", err=True)
        raise typer.Exit(1)
    name, info = found
    shown = info.alias or name
    default = "required" if info.is_required() else repr(info.get_default(call_default_factory=True))
    typer.echo(f"{shown}\n  type:    {_type_name(info.annotation)}\n  default: {default}\n  {info.description}")
    status = not_implemented_message(name)
    if status:
        typer.echo(f"  status:  {status}")


def _find_field(key: str) -> tuple[str, FieldInfo] | None:
    """A top-level key, a dotted path (`datasets.0.type`, `special_tokens.pad_token`), or a dataset-entry key."""
    parts = [p for p in key.split(".") if not p.isdigit()]
    model: type[BaseModel] | None = AxoConfig
    if len(parts) == 1 and parts[0] not in user_keys(AxoConfig) and parts[0] in user_keys(DatasetConfig):
        model = DatasetConfig
    info = None
    for part in parts:
        if model is None:
            return None
        name = user_keys(model).get(part)
        if name is None:
            return None
        info = model.model_fields[name]
        model = section_of(info.annotation)
    return (name, info) if info is not None else None


def _type_name(annotation: object) -> str:
    text = str(annotation)
    return text.replace("typing.", "").replace("axo.config.schema.", "").replace("<class '", "").replace("'>", "")
