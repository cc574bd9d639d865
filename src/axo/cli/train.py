"""`axo train CONFIG`: fine-tune as the config says; the run directory explains itself."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from axo.cli.report import print_errors, print_problems
from axo.config.load import load_config
from axo.config.overrides import parse_overrides
from axo.config.problems import ConfigError, Kind, Severity


def train(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The YAML config file.", show_default=False),
    strict: bool = typer.Option(False, "--strict", help="Unknown and unsupported keys are errors."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest complete checkpoint in output_dir."),
) -> None:
    """Fine-tune (full, LoRA or QLoRA) as CONFIG says and write the adapter or model, tokenizer, resolved
    config, metrics.jsonl, loss.png, provenance.json and a model card into `output_dir`."""
    err = Console(stderr=True)
    try:
        loaded = load_config(config, parse_overrides(list(ctx.args)), strict=strict)
        if not loaded.ok:
            print_problems(err, loaded)
            raise typer.Exit(1)
        for problem in loaded.problems:
            if problem.severity is Severity.WARNING and problem.kind is not Kind.MISSING_RESOURCE:
                err.print(f"[yellow]{escape(problem.render())}[/]", highlight=False, soft_wrap=True)
        from axo.train.run import TrainingInterrupted
        from axo.train.run import train as run_training

        result = run_training(loaded.require(), config_dir=config.resolve().parent, resume=resume)
    except TrainingInterrupted as exc:
        err.print(f"[yellow]stopped[/] {exc.problems[0].message} {exc.problems[0].hint.replace('CONFIG', str(config))}",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(128 + exc.signum) from None
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    losses = f"train loss {result.train_loss:.4f}" if result.train_loss is not None else ""
    if result.eval_loss is not None:
        losses += f", eval loss {result.eval_loss:.4f}"
    Console().print(f"[bold green]done[/]: {result.steps} steps, {losses} -> {result.output_dir}", highlight=False)
