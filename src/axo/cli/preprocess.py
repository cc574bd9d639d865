"""`axo preprocess CONFIG`: prepare and cache the datasets; `--debug N` shows N samples token by token."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from axo.cli.report import load_for_run, print_errors
from axo.config.problems import ConfigError
from axo.torch_free import rerun, torch_when_needed


def preprocess(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The YAML config file.", show_default=False),
    debug: int = typer.Option(0, "--debug", help="Show this many prepared samples, each token coloured by trained/masked."),
    force: bool = typer.Option(False, "--force", help="Prepare again even when the cache is up to date."),
    strict: bool = typer.Option(False, "--strict", help="Unknown and unsupported keys are errors."),
) -> None:
    """Tokenize, mask and cache the datasets of CONFIG (what `axo train` does first)."""
    err = Console(stderr=True)
    try:
        # run from `axo`, torch is hidden (axo/torch_free.py); whatever fails for want of it runs again with it
        with torch_when_needed():
            warn = Console(stderr=True, quiet=True) if rerun() else err  # a rerun's first run showed them
            cfg = load_for_run(config, list(ctx.args), strict, warn)
            from axo.models.tokenizer import load_tokenizer
            from axo.train.modes import mode_for

            tokenizer = load_tokenizer(cfg)
            mode = mode_for(cfg)
            prepared = mode.prepare(tokenizer, config.resolve().parent, force=force)
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    with torch_when_needed():
        mode.show(Console(), prepared, tokenizer, debug)
