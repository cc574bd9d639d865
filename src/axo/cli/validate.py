"""`axo validate CONFIG`: read a config as Axolotl would and report what is wrong, ignored or derived."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from axo.cli.report import as_json, config_as_yaml, print_problems, summary
from axo.config.load import load_config
from axo.config.overrides import parse_overrides
from axo.config.problems import ConfigError

OVERRIDES_HELP = (
    "Any config key can be overridden as `--key value` (`--learning-rate 2e-4` or `--learning_rate 2e-4`; "
    "nested keys as `--datasets.0.path data.jsonl`). Values are typed like YAML values."
)


def validate(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The YAML config file.", show_default=False),
    strict: bool = typer.Option(False, "--strict", help="Unknown, unsupported and not-yet-implemented keys are errors."),
    output_json: bool = typer.Option(False, "--json", help="Print one JSON object (config and problems) instead."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the problems, not the resolved config."),
) -> None:
    """Validate CONFIG: apply Axolotl's defaults and derived values, print the resolved config (secrets
    redacted) and every problem. Exit 0 when valid, 1 when not."""
    try:
        overrides = parse_overrides(list(ctx.args))
    except ConfigError as exc:
        for problem in exc.problems:
            typer.echo(problem.render(), err=True)
        raise typer.Exit(1) from None
    loaded = load_config(config, overrides, strict=strict)
    if output_json:
        typer.echo(as_json(loaded))
    else:
        if loaded.config is not None and not quiet:
            typer.echo(config_as_yaml(loaded.config), nl=False)
        err = Console(stderr=True)
        print_problems(err, loaded)
        style = "bold green" if loaded.ok else "bold red"
        err.print(f"[{style}]{summary(loaded)}[/]", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if loaded.ok else 1)
