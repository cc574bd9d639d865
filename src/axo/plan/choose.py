"""The settings the memory and time model read, resolved from a config the way a run resolves them, and the
choices that fit a memory budget, ranked by speed."""

from __future__ import annotations

from dataclasses import dataclass, replace

from axo.config.schema import AxoConfig
from axo.models.kernels import fused_lora_groups, liger_by_default, liger_options
from axo.plan.gpus import Gpu
from axo.plan.memory import MemoryEstimate, Recompute, Setup, estimate
from axo.plan.shapes import ModelShape
from axo.plan.timing import step_seconds

# Room left on the device beyond the predicted peak: the CUDA context and the caching allocator's
# fragmentation are not in `max_memory_allocated`, and the prediction itself is held to ±10 %.
MARGIN = 0.10
_LIGER_DEFAULT_KERNELS = frozenset({"rope", "rms_norm", "swiglu", "fused_linear_cross_entropy"})
_GLU_MODELS = {"llama", "mistral", "qwen2", "qwen3", "mixtral", "gemma", "gemma2", "gemma3", "phi3", "granite", "olmo2"}


def resolve_setup(cfg: AxoConfig, shape: ModelShape, *, has_cuda: bool, mean_sample: int | None = None,
                  liger_installed: bool | None = None) -> Setup:
    """The Setup a run of `cfg` would train with on a machine with (`has_cuda`) or without a GPU, with or
    without liger-kernel installed there (None: as on this machine).

    `mean_sample`: the mean packed sample length, when the data plan is known (attention spans one sample).
    """
    liger = set(liger_options(cfg, by_default=liger_by_default(cfg, has_cuda, liger_installed)))
    if "swiglu" in liger and shape.model_type not in _GLU_MODELS:
        liger.discard("swiglu")
    tokens = cfg.micro_batch_size * cfg.sequence_len
    return Setup(
        tokens=tokens, sequence=min(mean_sample or cfg.sequence_len, cfg.sequence_len),
        quant_bits=4 if cfg.load_in_4bit else 8 if cfg.load_in_8bit else None,
        double_quant=bool(cfg.bnb_4bit_use_double_quant), optimizer=cfg.optimizer,
        liger=frozenset(liger) if has_cuda else frozenset(), cut_cross_entropy=bool(cfg.cut_cross_entropy) and has_cuda,
        fused_lora=fused_lora_groups(cfg) == {"qkv", "o", "mlp"}, lora_dropout=cfg.lora_dropout or 0.0,
        full_finetune=cfg.adapter is None, accumulation=cfg.gradient_accumulation_steps or 1)


@dataclass(frozen=True)
class Option:
    """One way to run the config: its recompute choice and fused loss, the predicted memory and speed."""

    recompute: Recompute
    setup: Setup
    memory: MemoryEstimate
    step_s: float
    fits: bool
    label: str

    @property
    def tokens_per_s(self) -> float:
        return self.setup.tokens / self.step_s


def budget_bytes(gpu: Gpu, max_memory_gib: float | None) -> int:
    """What the planner may fill: the user's cap, or the device less the margin."""
    if max_memory_gib is not None:
        return int(min(max_memory_gib, gpu.memory_gib) * (1 - MARGIN / 2) * 2**30)
    return int(gpu.memory_bytes * (1 - MARGIN))


def option(shape: ModelShape, setup: Setup, recompute: Recompute, gpu: Gpu, budget: int, label: str) -> Option:
    memory = estimate(shape, setup, recompute)
    return Option(recompute, setup, memory, step_seconds(shape, setup, recompute, gpu), memory.peak <= budget, label)


def recompute_options(shape: ModelShape, setup: Setup, gpu: Gpu, budget: int) -> list[Option]:
    """No recompute, the fewest recomputed layers that fit, full recompute, and full recompute with the layer
    inputs offloaded to host memory."""
    layers = shape.layers
    choices = [option(shape, setup, Recompute(layers), gpu, budget, "no recompute")]
    partial = fewest_recomputed(shape, setup, budget)
    if partial is not None and 1 < partial.kept < layers:
        choices.append(option(shape, setup, partial, gpu, budget, partial.describe(layers)))
    choices.append(option(shape, setup, Recompute(1), gpu, budget, "full recompute"))
    choices.append(option(shape, setup, Recompute(0, offload=True), gpu, budget, "full recompute, inputs offloaded"))
    return choices


def fewest_recomputed(shape: ModelShape, setup: Setup, budget: int) -> Recompute | None:
    """The recompute choice that keeps the most layers' activations within `budget` (None: not even full
    recompute fits)."""
    best = None
    for kept in range(1, shape.layers + 1):
        if estimate(shape, setup, Recompute(kept)).peak > budget:
            break
        best = Recompute(kept)
    return best


def alternatives(cfg: AxoConfig, shape: ModelShape, setup: Setup, gpu: Gpu, budget: int) -> list[Option]:
    """Options beyond the config's own: every recompute choice, with and without a fused loss, a halved
    micro-batch, and an 8-bit optimizer; the ones that fit first, fastest first."""
    found = recompute_options(shape, setup, gpu, budget)
    if not setup.fused_ce and "fused_linear_cross_entropy" not in setup.liger:
        fused = replace(setup, liger=setup.liger | _LIGER_DEFAULT_KERNELS)
        found += [replace(o, label=o.label + " + liger kernels") for o in recompute_options(shape, fused, gpu, budget)]
    if cfg.micro_batch_size > 1:
        half = replace(setup, tokens=setup.tokens // 2)
        found += [replace(o, label=o.label + f", micro_batch_size {cfg.micro_batch_size // 2}")
                  for o in recompute_options(shape, half, gpu, budget)]
    if "8bit" not in setup.optimizer and shape.trainable.count > 0:
        eight = replace(setup, optimizer="adamw_bnb_8bit")
        found += [replace(o, label=o.label + ", optimizer adamw_bnb_8bit")
                  for o in recompute_options(shape, eight, gpu, budget)]
    return sorted(found, key=lambda o: (not o.fits, -o.tokens_per_s if o.fits else o.memory.peak))
