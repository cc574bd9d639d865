"""Know before you run: memory by part, speed, time, cost and disk for a config on a GPU, from the model's
config alone (shapes.py builds it on the meta device), and the recompute plan `axo train` picks to fit.

    shapes.py   what the model is made of (exact parameter counts and dtypes)
    memory.py   bytes by part and the predicted peak
    timing.py   FLOPs per step and seconds on a GPU
    gpus.py     the GPU table (memory, bf16 rate, measured fraction of it)
    choose.py   the run's settings, the memory budget, the options that fit, ranked
    report.py   `axo plan`'s answer
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

from axo.config.memory_cap import memory_cap_gib
from axo.config.schema import AxoConfig
from axo.plan.choose import Option, alternatives, budget_bytes, fewest_recomputed, option, resolve_setup
from axo.plan.gpus import Gpu
from axo.plan.memory import Recompute, Setup, checkpoint_bytes
from axo.plan.shapes import ModelShape, model_shape


@dataclass(frozen=True)
class DataPlan:
    """What the prepared data says about the run's length."""

    steps: int
    micro_batches_per_step: int
    fill: float  # tokens present / tokens a full micro-batch holds
    mean_sample: int | None
    note: str = ""


@dataclass
class RunPlan:
    """The answer to "will it fit, how fast, how long, what will it cost" for one config on one GPU."""

    gpu: Gpu
    budget: int
    shape: ModelShape
    chosen: Option
    options: list[Option]
    data: DataPlan | None
    checkpoint_bytes: int
    disk_bytes: int
    price_per_hour: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.data is None:
            return None
        return self.data.steps * self.data.micro_batches_per_step * self.chosen.step_s * self.data.fill

    @property
    def cost(self) -> float | None:
        seconds = self.seconds
        return None if seconds is None or self.price_per_hour is None else seconds / 3600 * self.price_per_hour


def offloads(cfg: AxoConfig) -> bool:
    """Whether the config asks for activation offloading (`activation_offloading`, `gradient_checkpointing:
    offload`)."""
    return bool(cfg.activation_offloading) or cfg.gradient_checkpointing == "offload"


def configured_keep(cfg: AxoConfig) -> int:
    """Decoder layers whose activations a checkpointed run keeps when the planner does not choose:
    `gradient_checkpointing_keep_layers` when set; else none when offloading (kept activations would all go to
    host memory), else the top one (backward rebuilds it first thing, so recomputing it only costs time)."""
    if cfg.gradient_checkpointing_keep_layers is not None:
        return cfg.gradient_checkpointing_keep_layers
    return 0 if offloads(cfg) else 1


def configured_recompute(cfg: AxoConfig, shape: ModelShape, budget: int, setup: Setup) -> tuple[Recompute, str]:
    """The recompute choice `axo train` makes for `cfg`, and why.

    `gradient_checkpointing: false`: none. `true` with `gradient_checkpointing_keep_layers` set: that many
    layers kept. `true` alone: the most layers kept that fit the budget — every layer when all fit; when even
    full recompute does not fit, the layer inputs are offloaded to host memory. `activation_offloading` or
    `gradient_checkpointing: offload`: full recompute, offloaded.
    """
    layers = shape.layers
    offload = offloads(cfg)
    if not cfg.gradient_checkpointing:
        return Recompute(layers, offload=offload), "gradient_checkpointing is off"
    if cfg.gradient_checkpointing_keep_layers is not None:
        kept = min(configured_keep(cfg), layers)
        return Recompute(kept, offload=offload), f"gradient_checkpointing_keep_layers: {kept}"
    if offload:
        return Recompute(configured_keep(cfg), offload=True), "activation offloading asked for"
    fitted = fewest_recomputed(shape, setup, budget)
    if fitted is None:
        return Recompute(0, offload=True), "even full recompute does not fit the budget: layer inputs go to host memory"
    if fitted.kept >= layers:
        return fitted, "every layer's activations fit the budget, so none is recomputed"
    return fitted, f"the budget keeps {fitted.kept} of {layers} layers' activations"


def plan_run(cfg: AxoConfig, gpu: Gpu, *, data: DataPlan | None = None, price_per_hour: float | None = None,
             max_memory_gib: float | None = None, shape: ModelShape | None = None,
             liger_installed: bool | None = None) -> RunPlan:
    """Plan `cfg` on `gpu`: the option a run would take, every alternative ranked, time, cost and disk.
    `liger_installed`: whether the GPU machine has liger-kernel (None: as this machine)."""
    shape = shape or model_shape(cfg)
    cap = max_memory_gib if max_memory_gib is not None else memory_cap_gib(cfg)
    budget = budget_bytes(gpu, cap)
    setup = resolve_setup(cfg, shape, has_cuda=True, mean_sample=data.mean_sample if data else None,
                          liger_installed=liger_installed)
    recompute, why = configured_recompute(cfg, shape, budget, setup)
    chosen = option(shape, setup, recompute, gpu, budget, recompute.describe(shape.layers) + f" ({why})")
    saved = checkpoint_bytes(shape, setup)
    limit = cfg.save_total_limit if cfg.save_total_limit is not None else 4
    final = shape.trainable.bytes if cfg.adapter else shape.total_params * shape.dtype_bytes
    notes = []
    if cfg.deepspeed or cfg.fsdp_config or cfg.fsdp_version:
        notes.append("DeepSpeed/FSDP shard weights and optimizer state across GPUs; this plan is for one GPU "
                     "holding everything (an upper bound per GPU).")
    if not gpu.measured:
        notes.append(f"{gpu.name}: {gpu.source}.")
    return RunPlan(gpu=gpu, budget=budget, shape=shape, chosen=chosen,
                   options=alternatives(cfg, shape, setup, gpu, budget), data=data, checkpoint_bytes=saved,
                   disk_bytes=saved * limit + final, price_per_hour=price_per_hour, notes=notes)


def data_plan_from(cfg: AxoConfig, train_rows: int, packing, lengths_mean: float | None, steps: int) -> DataPlan:
    """The DataPlan of prepared data: `steps` optimizer steps of `gradient_accumulation_steps` micro-batches."""
    accumulation = cfg.gradient_accumulation_steps or 1
    capacity = cfg.micro_batch_size * cfg.sequence_len
    if packing is not None:
        fill = packing.efficiency
    elif lengths_mean:
        fill = min(1.0, ceil(lengths_mean / 8) * 8 / cfg.sequence_len)
    else:
        fill = 1.0
    mean = round(lengths_mean) if lengths_mean else None
    return DataPlan(steps=steps, micro_batches_per_step=accumulation, fill=fill, mean_sample=mean,
                    note=f"{train_rows} training rows, {capacity} tokens per micro-batch")
