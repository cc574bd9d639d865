"""`axo init`: write a commented starting config that validates and runs as written."""

from __future__ import annotations

from pathlib import Path

import typer

from axo.config.presets import DEFAULT_PRESET, PRESETS
from axo.config.render import render_commented_config
from axo.config.schema.names import did_you_mean


def init(
    preset: str = typer.Option(DEFAULT_PRESET, "--preset", "-p", help=f"One of: {', '.join(PRESETS)}."),
    output: Path = typer.Option(Path("config.yml"), "--output", "-o", help="Where to write the config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    list_presets: bool = typer.Option(False, "--list", help="List the presets and exit."),
) -> None:
    """Write a commented config from a preset (default: a 10-step smoke test)."""
    if list_presets:
        for item in PRESETS.values():
            typer.echo(f"{item.name:22} {item.summary}")
        return
    chosen = PRESETS.get(preset)
    if chosen is None:
        typer.echo(f"error: unknown preset {preset!r}{did_you_mean(preset, PRESETS)}; "
                   f"choose one of: {', '.join(PRESETS)}.", err=True)
        raise typer.Exit(1)
    if output.exists() and not force:
        typer.echo(f"error: {output} already exists; nothing was written. Pass --force to overwrite it, "
                   "or choose another file with -o.", err=True)
        raise typer.Exit(1)
    header = [
        f"axo config: {chosen.summary}",
        f"Written by `axo init --preset {chosen.name}`.",
        f"Check it: axo validate {output}",
        f"Train:    axo train {output}",
        "Explain any key: axo config-schema KEY",
    ]
    text = render_commented_config(chosen.values, header)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        temporary = output.with_name(output.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(output)  # never leave a half-written config behind
    except OSError as exc:
        typer.echo(f"error: cannot write {output}: {exc.strerror}. Choose a writable path with -o.", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {output} (preset {chosen.name}); check it with `axo validate {output}`")
