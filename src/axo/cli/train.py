"""`axo train CONFIG`: fine-tune as the config says; the run directory explains itself."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from axo.cli.report import load_for_run, print_errors
from axo.config.problems import ConfigError


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
        cfg = load_for_run(config, list(ctx.args), strict, err)
        from axo.train.run import TrainingInterrupted
        from axo.train.run import train as run_training

        result = run_training(cfg, config_dir=config.resolve().parent, resume=resume)
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
