"""`axo train CONFIG`: fine-tune as the config says; the run directory explains itself."""

from __future__ import annotations

import os
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
    num_gpus: int | None = typer.Option(
        None, "--num-gpus", min=1, show_default=False,
        help="Training processes to start, one per GPU (default: every visible GPU). Under torchrun or "
             "accelerate launch, which start the processes themselves, it is ignored.",
    ),
) -> None:
    """Fine-tune (full, LoRA or QLoRA) as CONFIG says and write the adapter or model, tokenizer, resolved
    config, metrics.jsonl, loss.png, provenance.json and a model card into `output_dir`."""
    from axo.models import hub
    from axo.train.launch import under_launcher

    err = Console(stderr=True, quiet=os.environ.get("RANK", "0") != "0")  # one copy of every message, from rank 0
    try:
        cfg = load_for_run(config, list(ctx.args), strict, err)
        # Before importing the trainer (seconds of torch/transformers imports): an offline machine without
        # the model in its cache hears so at once (preflight checks again for API callers).
        hub.require(hub.training_refs(cfg))
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    from axo.train.distributed import Processes, end_processes
    from axo.train.run import TrainingInterrupted
    from axo.train.run import train as run_training

    processes = Processes.from_env()
    try:
        if not under_launcher():
            _launch_if_several(config, num_gpus, ctx, strict, resume, err)
        succeeded = False
        try:
            result = run_training(cfg, config_dir=config.resolve().parent, resume=resume)
            succeeded = True
        finally:
            end_processes(succeeded)
    except TrainingInterrupted as exc:
        err.print(f"[yellow]stopped[/] {exc.problems[0].message} {exc.problems[0].hint.replace('CONFIG', str(config))}",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(128 + exc.signum) from None
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    if not processes.is_main:
        return
    losses = f"train loss {result.train_loss:.4f}" if result.train_loss is not None else ""
    if result.eval_loss is not None:
        losses += f", eval loss {result.eval_loss:.4f}"
    Console().print(f"[bold green]done[/]: {result.steps} steps, {losses} -> {result.output_dir}", highlight=False)


def _launch_if_several(config: Path, num_gpus: int | None, ctx: typer.Context, strict: bool, resume: bool,
                       err: Console) -> None:
    """Start one process per GPU when more than one is wanted; exits with the processes' status."""
    from axo.config.hardware import detect_hardware
    from axo.train.launch import launch, visible_devices

    available = detect_hardware().cuda_devices
    wanted = num_gpus if num_gpus is not None else available
    if num_gpus is not None and num_gpus > available:
        err.print(f"[red]error[/] --num-gpus {num_gpus}: this machine has {available} visible CUDA GPU(s).\n"
                  "  hint: lower --num-gpus, check CUDA_VISIBLE_DEVICES, or (CPU-only) run under "
                  "`torchrun --nproc_per_node N -m axo train CONFIG` to start CPU processes.",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if wanted <= 1 and available <= 1:
        return
    # One process on a machine with more GPUs also runs as a child that sees only its GPU: in this process
    # CUDA has already counted them all, and transformers would wrap the model in DataParallel.
    arguments = [*ctx.args, *(["--strict"] if strict else []), *(["--resume"] if resume else [])]
    if wanted > 1:
        err.print(f"starting {wanted} training processes (one per GPU)", highlight=False)
    raise typer.Exit(launch(config, wanted, arguments, visible=visible_devices(available)[:wanted]))


if __name__ == "__main__":  # `python -m axo.cli.train CONFIG` (e.g. under torchrun) = `axo train CONFIG`
    import sys

    from axo.cli.main import main

    sys.argv.insert(1, "train")
    main()
