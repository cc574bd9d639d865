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


def liger_options(cfg: AxoConfig) -> dict[str, bool]:
    """liger's `apply_liger_kernel_to_*` arguments for the keys the config turns on."""
    return {argument: True for key, argument in _LIGER_KEYS.items() if getattr(cfg, key)}


def apply_kernels(cfg: AxoConfig, model: Any, *, loss_kernels: bool = True) -> list[str]:
    """Patch `model` with the requested liger kernels and Cut Cross Entropy; returns the kernels applied.
    `loss_kernels=False` leaves the output head and loss alone (liger's cross-entropy kernels, CCE): the
    preference and reward modes compute their own losses (config/rules.py warns that those keys are unused).

    Raises:
        ConfigError: when liger-kernel or cut-cross-entropy is missing or has no kernels for this architecture.
    """
    cce = ["cut_cross_entropy"] if loss_kernels and apply_cce(cfg, model) else []
    options = liger_options(cfg)
    if not loss_kernels:
        options = {name: on for name, on in options.items() if "cross_entropy" not in name}
    if not options:
        return cce
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


def fused_lora_groups(cfg: AxoConfig) -> set[str]:
    """Which layer groups ("qkv", "o", "mlp") take axo's fused LoRA path (models/fused_lora.py).

    Each `lora_*_kernel` key decides its group; unset means on for plain LoRA/QLoRA (the rules reject an
    explicit `true` with DoRA or an 8-bit base, where the path does not apply).
    """
    if cfg.adapter not in ("lora", "qlora") or cfg.peft_use_dora or cfg.load_in_8bit:
        return set()
    keys = {"qkv": cfg.lora_qkv_kernel, "o": cfg.lora_o_kernel, "mlp": cfg.lora_mlp_kernel}
    return {group for group, value in keys.items() if value is not False}
