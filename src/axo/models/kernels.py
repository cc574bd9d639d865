"""Fused kernels applied to the loaded model as the config asks (Axolotl's key names): liger-kernel's, and Cut
Cross Entropy (models/cce.py)."""

from __future__ import annotations

import importlib.util
from typing import Any

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig
from axo.models.cce import apply_cce

_LIGER_KEYS = {"liger_rope": "rope", "liger_rms_norm": "rms_norm", "liger_glu_activation": "swiglu",
               "liger_layer_norm": "layer_norm", "liger_cross_entropy": "cross_entropy",
               "liger_fused_linear_cross_entropy": "fused_linear_cross_entropy"}


# What axo turns on when the config leaves every liger_* key unset, liger-kernel is installed, the run has a CUDA
# GPU and liger has kernels for the architecture: the four that make no difference to the result beyond
# rounding, and save the most memory (the logits and the float32 norm inputs).
_DEFAULT_LIGER = ("rope", "rms_norm", "swiglu", "fused_linear_cross_entropy")


def liger_by_default(cfg: AxoConfig, has_cuda: bool, installed: bool | None = None) -> bool:
    """Whether the config gets liger's kernels without asking: no liger_* key set at all (an explicit `false`
    anywhere means the user chose), a CUDA GPU, liger-kernel installed (`installed`; None: on this machine), a
    single-process or DDP run (FSDP cannot shard liger's fused loss), and no Cut Cross Entropy."""
    chosen = any(getattr(cfg, key) is not None for key in _LIGER_KEYS)
    if installed is None:
        installed = importlib.util.find_spec("liger_kernel") is not None
    return (not chosen and has_cuda and installed and not cfg.cut_cross_entropy
            and not (cfg.fsdp_version or cfg.fsdp_config))


def liger_options(cfg: AxoConfig, *, by_default: bool = False) -> dict[str, bool]:
    """liger's `apply_liger_kernel_to_*` arguments: the keys the config turns on, or axo's defaults."""
    if by_default:
        return dict.fromkeys(_DEFAULT_LIGER, True)
    return {argument: True for key, argument in _LIGER_KEYS.items() if getattr(cfg, key)}


def apply_kernels(cfg: AxoConfig, model: Any, *, loss_kernels: bool = True, has_cuda: bool = False) -> list[str]:
    """Patch `model` with the requested liger kernels and Cut Cross Entropy; returns the kernels applied.
    `loss_kernels=False` leaves the output head and loss alone (liger's cross-entropy kernels, CCE): the
    preference and reward modes compute their own losses (config/rules.py warns that those keys are unused).
    With no liger_* key set, liger's kernels are applied by default where `liger_by_default` allows and liger
    has kernels for the architecture (marked "(default)" in the list returned).

    Raises:
        ConfigError: when liger-kernel or cut-cross-entropy is missing or has no kernels for this architecture.
    """
    cce = ["cut_cross_entropy"] if loss_kernels and apply_cce(cfg, model) else []
    by_default = liger_by_default(cfg, has_cuda)
    options = liger_options(cfg, by_default=by_default)
    if not loss_kernels:
        options = {name: on for name, on in options.items() if "cross_entropy" not in name}
    if not options:
        return cce
    if by_default:
        return cce + _apply_default_liger(model, options)
    if importlib.util.find_spec("liger_kernel") is None:
        raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, next(k for k, v in _LIGER_KEYS.items()
                                                                                 if v in options),
                                   "the Liger kernels need the liger-kernel package (and a GPU with Triton).",
                                   "pip install 'axo[liger]', or remove the liger_* keys.")])
    try:
        import liger_kernel.transformers as liger
    except ImportError as exc:  # installed, but its Triton kernels cannot load here (no triton / no GPU)
        raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "liger_rms_norm",
                                   f"the Liger kernels cannot load on this machine ({exc}).",
                                   "They need a CUDA GPU with Triton; remove the liger_* keys to train here.")]) from None

    model_type = model.config.model_type
    apply = getattr(liger, f"apply_liger_kernel_to_{model_type}", None)
    if apply is None:
        raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "liger_rms_norm",
                                   f"liger-kernel has no kernels for {model_type!r} models.", "Remove the liger_* keys.")])
    if "layer_norm" in options and "layer_norm" not in apply.__code__.co_varnames:
        options.pop("layer_norm")
    defaults = {name: False for name in ("rope", "rms_norm", "swiglu", "cross_entropy", "fused_linear_cross_entropy")
                if name in apply.__code__.co_varnames}
    apply(model=model, **{**defaults, **options})
    return cce + sorted(options)


def liger_apply_function(model_type: str) -> Any:
    """liger's `apply_liger_kernel_to_<model_type>`, or None when liger cannot load or has none."""
    try:
        import liger_kernel.transformers as liger
    except ImportError:
        return None
    return getattr(liger, f"apply_liger_kernel_to_{model_type}", None)


def _apply_default_liger(model: Any, options: dict[str, bool]) -> list[str]:
    apply = liger_apply_function(model.config.model_type)
    if apply is None:
        return []
    options = {name: on for name, on in options.items() if name in apply.__code__.co_varnames}
    defaults = {name: False for name in ("rope", "rms_norm", "swiglu", "cross_entropy", "fused_linear_cross_entropy")
                if name in apply.__code__.co_varnames}
    apply(model=model, **{**defaults, **options})
    return [f"{name} (default)" for name in sorted(options)]


def fused_lora_groups(cfg: AxoConfig) -> set[str]:
    """Which layer groups ("qkv", "o", "mlp") take axo's fused LoRA path (models/fused_lora.py).

    Each `lora_*_kernel` key decides its group; unset means on for plain LoRA/QLoRA (the rules reject an
    explicit `true` with DoRA or an 8-bit base, where the path does not apply).
    """
    from axo.models.adapters import ADAPTERS

    kind = ADAPTERS.get(cfg.adapter) if cfg.adapter else None
    if kind is None or not kind.fused_lora or cfg.peft_use_dora or cfg.load_in_8bit:
        return set()
    keys = {"qkv": cfg.lora_qkv_kernel, "o": cfg.lora_o_kernel, "mlp": cfg.lora_mlp_kernel}
    return {group for group, value in keys.items() if value is not False}
