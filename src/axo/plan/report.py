"""`axo plan`'s answer as rich tables, and as a JSON-ready dict."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from axo.plan import RunPlan
from axo.plan.memory import GIB


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _size(count: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f}{unit}"
    return str(count)


def show(console: Console, plan: RunPlan) -> None:
    """Print the plan: model and GPU, memory by part, speed/time/cost/disk, and the ranked options."""
    shape, chosen, gpu = plan.shape, plan.chosen, plan.gpu
    console.print(f"[bold]model[/]: {shape.model_type}, {_size(shape.total_params)} parameters, "
                  f"{_size(shape.trainable.count)} trained, {shape.layers} layers")
    console.print(f"[bold]GPU[/]: {gpu.name}, {gpu.memory_gib:.1f} GiB, budget {plan.budget / GIB:.1f} GiB "
                  f"({'measured rates' if gpu.measured else 'estimated rates'})")
    console.print(f"[bold]plan[/]: {chosen.label}")
    parts = Table("memory by part", "GiB", title=None, show_edge=False)
    for name, value in chosen.memory.parts.items():
        parts.add_row(name, f"{value / GIB:.2f}")
    verdict = "[green]fits[/]" if chosen.fits else "[red]does not fit[/]"
    parts.add_row("[bold]predicted peak[/]", f"[bold]{chosen.memory.gib():.2f}[/] {verdict}")
    console.print(parts)
    if chosen.memory.host:
        console.print(f"[bold]host memory[/]: {chosen.memory.host / GIB:.1f} GiB pinned for the offloaded "
                      "activations (besides the process's own)" + _host_verdict(chosen.memory.host))
    console.print(f"[bold]speed[/]: {chosen.step_s:.3f} s per micro-batch of {chosen.setup.tokens} tokens, "
                  f"{chosen.tokens_per_s:,.0f} tokens/s")
    if plan.data is not None and plan.seconds is not None:
        cost = f", ${plan.cost:,.2f} at ${plan.price_per_hour:g}/h" if plan.cost is not None else ""
        batches = plan.data.micro_batches_per_step
        console.print(f"[bold]run[/]: {plan.data.steps} steps × {batches} micro-batch{'es' if batches > 1 else ''} "
                      f"({plan.data.note}, {plan.data.fill:.0%} full) ≈ {_duration(plan.seconds)}{cost}")
    console.print(f"[bold]disk[/]: {plan.checkpoint_bytes / GIB:.2f} GiB per checkpoint, "
                  f"{plan.disk_bytes / GIB:.2f} GiB for the kept checkpoints and the final weights")
    if not chosen.fits:
        console.print("[red]does not fit[/]: here is what would (fastest first):")
    options = Table("option", "peak GiB", "fits", "tokens/s", "vs plan", show_edge=False)
    for candidate in plan.options[:12]:
        options.add_row(candidate.label, f"{candidate.memory.gib():.1f}", "yes" if candidate.fits else "no",
                        f"{candidate.tokens_per_s:,.0f}", f"{candidate.tokens_per_s / chosen.tokens_per_s:.2f}×")
    console.print(options)
    for note in plan.notes:
        console.print(f"[dim]note: {note}[/]")


def _host_verdict(needed: int) -> str:
    """How `needed` bytes of pinned memory compare with this machine's available memory."""
    from axo.config.hardware import available_host_memory

    available = available_host_memory()
    if available is None:
        return ""
    verdict = "fits" if needed <= available else "[red]more than[/]"
    return f"; this machine: {verdict} its {available / GIB:.1f} GiB available"


def as_dict(plan: RunPlan) -> dict[str, Any]:
    """The plan's numbers for `axo plan --json` and the benchmarks."""
    def entry(candidate) -> dict[str, Any]:
        return {"label": candidate.label, "kept_layers": candidate.recompute.kept,
                "offload": candidate.recompute.offload, "peak_gib": round(candidate.memory.gib(), 3),
                "parts_gib": {k: round(v / GIB, 3) for k, v in candidate.memory.parts.items()},
                "host_gib": round(candidate.memory.host / GIB, 3), "step_s": round(candidate.step_s, 4),
                "tokens_per_s": round(candidate.tokens_per_s), "fits": candidate.fits}

    return {"gpu": plan.gpu.name, "gpu_source": plan.gpu.source, "budget_gib": round(plan.budget / GIB, 2),
            "params": plan.shape.total_params, "trainable": plan.shape.trainable.count,
            "chosen": entry(plan.chosen), "options": [entry(o) for o in plan.options],
            "steps": plan.data.steps if plan.data else None, "seconds": plan.seconds, "cost": plan.cost,
            "checkpoint_gib": round(plan.checkpoint_bytes / GIB, 3), "disk_gib": round(plan.disk_bytes / GIB, 3),
            "notes": plan.notes}
