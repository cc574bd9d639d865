"""`axo plan CONFIG`: will it fit on this GPU, how fast, how long, what will it cost — before anything loads."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from axo.cli.report import load_for_run, print_errors
from axo.config.problems import ConfigError, Kind, Problem, Severity


def plan(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="The YAML config file.", show_default=False),
    gpu: str = typer.Option(None, "--gpu", help="Plan for this GPU (h200, h100, a100-80gb, l40s, rtx4090, …); "
                            "default: this machine's first GPU."),
    memory: float = typer.Option(None, "--memory", help="GPU memory in GiB (with --gpu: a cap below its memory)."),
    price: float = typer.Option(None, "--price", help="GPU price in USD per hour, for the run's cost."),
    steps: int = typer.Option(None, "--steps", help="Optimizer steps, instead of reading them from the prepared data."),
    without_liger: bool = typer.Option(False, "--without-liger", help="Plan for a GPU machine without liger-kernel "
                                       "(default: as this machine for its own GPU; installed, for --gpu/--memory)."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    strict: bool = typer.Option(False, "--strict", help="Unknown and unsupported keys are errors."),
) -> None:
    """Predict CONFIG's GPU memory by part, speed, time, cost and disk, and rank the choices that fit."""
    err = Console(stderr=True)
    try:
        cfg = load_for_run(config, list(ctx.args), strict, err)
        from axo.plan import plan_run
        from axo.plan.report import as_dict, show

        target = _target_gpu(gpu, memory)
        data, note = _data_plan(cfg, config.resolve().parent, steps, err)
        elsewhere = gpu is not None or memory is not None
        liger = False if without_liger else (True if elsewhere else None)
        result = plan_run(cfg, target, data=data, price_per_hour=price, liger_installed=liger,
                          max_memory_gib=memory if gpu is not None else None)
        if note:
            result.notes.append(note)
    except ConfigError as exc:
        print_errors(err, exc.problems)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(as_dict(result), indent=1))
    else:
        show(Console(), result)


def _target_gpu(name: str | None, memory: float | None):
    """The GPU to plan for: the named one, one of `memory` GiB, or this machine's."""
    from axo.config.hardware import detect_hardware
    from axo.plan.gpus import GPUS, find_gpu, gpu_from_device_name

    if name is not None:
        found = find_gpu(name)
        if found is None:
            raise ConfigError([Problem(Severity.ERROR, Kind.TYPE, "--gpu", f"{name!r} is not a GPU axo knows.",
                                       f"Use one of: {', '.join(GPUS)}; or give --memory GIB for another GPU.")])
        return found
    if memory is not None:
        return gpu_from_device_name(f"a {memory:g} GiB GPU", memory)
    hardware = detect_hardware()
    if not hardware.has_cuda or hardware.memory_bytes is None:
        raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "--gpu", "this machine has no CUDA GPU "
                                   "to plan for.", f"Name the GPU the run will use: --gpu {' | '.join(GPUS)}, "
                                   "or --memory GIB.")])
    return gpu_from_device_name(hardware.device_name or "GPU", hardware.memory_bytes / 2**30)


def _data_plan(cfg, config_dir: Path, steps: int | None, err: Console):
    """The run's length from its prepared data (prepared now if needed, as `axo preprocess`), or `steps`."""
    from axo.plan import DataPlan, data_plan_from

    if steps is not None:
        return DataPlan(steps=steps, micro_batches_per_step=cfg.gradient_accumulation_steps or 1, fill=1.0,
                        mean_sample=None, note="--steps"), None
    from axo.models.tokenizer import load_tokenizer
    from axo.train.arguments import total_steps
    from axo.train.modes import mode_for
    from axo.train.recompute import mean_sample

    try:
        tokenizer = load_tokenizer(cfg)
        mode = mode_for(cfg)
        data = mode.trainer_data(mode.prepare(tokenizer, config_dir), tokenizer)
    except ConfigError as exc:  # DataError too: data that is missing or unreadable here
        reason = str(exc).splitlines()[0][:160]
        return None, f"the data could not be prepared here ({reason}); give --steps N for time and cost."
    lengths = None if data.packing else _mean_length(data.train)
    return data_plan_from(cfg, len(data.train), data.packing, mean_sample(data) or lengths,
                          total_steps(cfg, len(data.train), 1, data.packing)), None


def _mean_length(dataset) -> float | None:
    try:
        column = dataset["input_ids"]
    except (KeyError, TypeError):
        return None
    lengths = [len(ids) for ids in column]
    return sum(lengths) / len(lengths) if lengths else None
