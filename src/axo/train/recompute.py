"""Which decoder layers gradient checkpointing recomputes: the memory planner's choice (plan/), or
`gradient_checkpointing_keep_layers`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from axo.config.hardware import Hardware
from axo.config.schema import AxoConfig
from axo.train.arguments import checkpointing_enabled, offload_checkpoint_inputs

if TYPE_CHECKING:
    from axo.plan import RunPlan


def checkpointed_layers(model: Any) -> list[Any]:
    """The model's decoder layers that gradient checkpointing wraps, in stack order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing]


class KeepTopLayers(TrainerCallback):
    """Leave the top `count` decoder layers un-checkpointed.

    transformers turns checkpointing on for every layer when training starts, so this runs right after
    (on_train_begin). The top layer is the one backward reaches first: recomputing it would rebuild the same
    activations at once, so keeping them changes speed, not peak memory — unless activations are offloaded,
    when kept activations all go to host memory: an offloaded plan keeps none (run.py).
    """

    def __init__(self, count: int):
        self.count = count
        self.kept = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not checkpointing_enabled(args) or model is None or self.count == 0:
            return
        layers = checkpointed_layers(model)
        for layer in layers[len(layers) - min(self.count, len(layers)):]:
            layer.gradient_checkpointing = False
        self.kept = min(self.count, len(layers))


def memory_plan(cfg: AxoConfig, hardware: Hardware, data: Any, steps: int, *, plans_memory: bool,
                world_size: int, say: Callable[[str], None]) -> RunPlan | None:
    """The planner's answer for this run on this machine's GPU (plan/), said in the run log; None where the
    planner does not model the run (no GPU, several processes or a sharding engine, or a training mode whose
    step is not one causal-LM forward and backward). Holds torch to the config's memory cap, if any."""
    if not (hardware.has_cuda and plans_memory and world_size == 1) or cfg.deepspeed or cfg.fsdp_config \
            or cfg.fsdp_version:
        return None
    import torch

    from axo.config.memory_cap import memory_cap_gib
    from axo.plan import data_plan_from, plan_run
    from axo.plan.gpus import gpu_from_device_name

    total = torch.cuda.get_device_properties(0).total_memory
    gpu = gpu_from_device_name(torch.cuda.get_device_name(0), total / 2**30)
    cap = memory_cap_gib(cfg)
    if cap is not None:
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap * 2**30 / total), 0)
    try:
        plan = plan_run(cfg, gpu, data=data_plan_from(cfg, len(data.train), data.packing, mean_sample(data), steps))
    except Exception as exc:  # noqa: BLE001 — the planner must never stop a run; it says why it is absent
        say(f"memory plan unavailable ({type(exc).__name__}: {str(exc)[:200]}); recompute as configured")
        return None
    chosen = plan.chosen
    say(f"memory plan: {chosen.label}; predicted peak {chosen.memory.gib():.1f} GiB of "
        f"{plan.budget / 2**30:.1f} GiB " + (f"(max_memory {cap:g} GiB)" if cap is not None else
                                               f"({gpu.name}, {gpu.memory_gib:.0f} GiB less 10 %)"))
    _check_host_memory(chosen.memory.host, say)
    if not chosen.fits:
        fitting = [o for o in plan.options if o.fits][:3]
        say("warning: the predicted peak is over the budget; this run will likely run out of GPU memory. "
            + ("Would fit: " + "; ".join(f"{o.label} ({o.memory.gib():.1f} GiB)" for o in fitting) if fitting
               else "Nothing axo can choose fits: a smaller micro_batch_size or sequence_len, or QLoRA."))
    return plan


def _check_host_memory(needed: int, say: Callable[[str], None]) -> None:
    """Refuse before loading when offloaded activations would need more pinned host memory than the machine has
    available: the system would kill the run part-way through its first step, without a word from Python. The
    estimate matched an H200 run's pinned peak to 0.02 % (docs/BENCHMARKS.md, 8B QLoRA at 327,680 and 393,216
    tokens)."""
    from axo.config.hardware import available_host_memory
    from axo.config.problems import ConfigError, Kind, Problem, Severity

    available = available_host_memory()
    if needed and available is not None:
        say(f"host memory: the offloaded activations pin about {needed / 2**30:.1f} GiB "
            f"({available / 2**30:.1f} GiB available)")
        if needed > available:
            raise ConfigError([Problem(
                Severity.ERROR, Kind.CONFLICT, "sequence_len",
                f"the offloaded activations need about {needed / 2**30:.1f} GiB of pinned host memory and this "
                f"machine has {available / 2**30:.1f} GiB available: the system would kill the run mid-step.",
                "Shorten sequence_len or micro_batch_size, free host memory, or use a GPU with more memory "
                "(`axo plan CONFIG` shows what each needs).")])


def mean_sample(data: Any) -> float | None:
    """The mean sample length of packed data (attention spans one sample), else None."""
    packing = data.packing
    if packing is None or not packing.epochs or not packing.epochs[0]:
        return None
    samples = sum(len(row) for row in packing.epochs[0])
    return packing.tokens / samples if samples else None


def plan_record(plan: RunPlan | None, measured_peak_gib: float | None) -> dict[str, Any] | None:
    """What provenance.json says about the memory plan: the choice, why, predicted and measured peak, and the
    CUDA allocator setting it ran with (train/allocator.py)."""
    from axo.train.allocator import allocator_setting

    if plan is None:
        return None
    chosen = plan.chosen
    return {"choice": chosen.label, "kept_layers": chosen.recompute.kept, "layers": plan.shape.layers,
            "offload": chosen.recompute.offload, "budget_gib": round(plan.budget / 2**30, 2),
            "predicted_peak_gib": round(chosen.memory.gib(), 2),
            "predicted_parts_gib": {k: round(v / 2**30, 3) for k, v in chosen.memory.parts.items()},
            "predicted_host_gib": round(chosen.memory.host / 2**30, 2),
            "measured_peak_gib": None if measured_peak_gib is None else round(measured_peak_gib, 2),
            "predicted_step_s": round(chosen.step_s * chosen.setup.accumulation, 4), "gpu": plan.gpu.name,
            "allocator": allocator_setting()}


def offload_layer_inputs(arguments: Any, model: Any, say: Callable[[str], None]) -> None:
    """With offloading and recompute, the recomputed layers' inputs go to host memory too: torch's reentrant
    checkpointing saves them through the hooks that move them (train/offload.py). Its recomputation needs an
    input that requires grad, which a frozen embedding does not give: `enable_input_require_grads` makes it so
    (newer transformers do it themselves when they turn checkpointing on)."""
    offload_checkpoint_inputs(arguments)
    model.enable_input_require_grads()
    say("activation offloading: saved activations and the recomputed layers' inputs wait in host memory "
        "(recompute through torch's reentrant checkpoint, which lets the inputs go)")
