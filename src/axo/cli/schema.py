"""`axo config-schema [KEY]`: the JSON schema of the config, or one key explained."""

from __future__ import annotations

import json

import typer

from axo.config.keys import user_keys
from axo.config.schema import AxoConfig
from axo.config.schema.names import did_you_mean
from axo.config.support import not_implemented_message


def config_schema(
    key: str = typer.Argument(None, help="Explain one key instead of printing the whole schema.", show_default=False),
) -> None:
    """Print the JSON schema of axo's config (every key, type, default and description)."""
    if key is None:
        typer.echo(json.dumps(AxoConfig.model_json_schema(by_alias=True), indent=2))
        return
    spelled = user_keys(AxoConfig)
    name = spelled.get(key.replace("-", "_"))
    if name is None:
        typer.echo(f"error: unknown key {key!r}{did_you_mean(key, spelled)}.", err=True)
        raise typer.Exit(1)
    info = AxoConfig.model_fields[name]
    shown = info.alias or name
    default = "required" if info.is_required() else repr(info.get_default(call_default_factory=True))
    typer.echo(f"{shown}\n  type:    {_type_name(info.annotation)}\n  default: {default}\n  {info.description}")
    status = not_implemented_message(name)
    if status:
        typer.echo(f"  status:  {status}")


def _type_name(annotation: object) -> str:
    text = str(annotation)
    return text.replace("typing.", "").replace("axo.config.schema.", "").replace("<class '", "").replace("'>", "")
