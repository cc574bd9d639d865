"""The model a run trains, the same for every training mode: the base (quantized if asked), the kernels, the
adapter, frozen layers, and axo's fused LoRA path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axo.config.hardware import Hardware
from axo.config.schema import AxoConfig
from axo.models.adapter import apply_adapter
from axo.models.freeze import freeze_except
from axo.models.fused_lora import attach_fused_lora
from axo.models.kernels import apply_kernels, fused_lora_groups
from axo.models.loader import load_model


def model_for_training(cfg: AxoConfig, tokenizer: Any, hardware: Hardware, *, say: Callable[[str], None],
                       fused_lora_blocked: str | None = None, loss_kernels: bool = True,
                       base_model: Any = None, total_steps: int | None = None) -> tuple[Any, bool]:
    """(the model to train, whether the embeddings grew for new tokens).

    `base_model` is one the caller already loaded with `load_model`; `fused_lora_blocked` says why the engine
    cannot take the fused LoRA path (then it stays off); `loss_kernels=False` leaves the output head and loss
    to the training mode; `total_steps` is the run's length (AdaLoRA's rank schedule).
    """
    model, resized = (base_model, False) if base_model is not None else load_model(cfg, tokenizer, hardware)
    kernels = apply_kernels(cfg, model, loss_kernels=loss_kernels, has_cuda=hardware.has_cuda)
    if kernels:
        say(f"fused kernels: {', '.join(kernels)}" + ("; liger-kernel's are on by default when installed (set any "
                                                      "liger_* key to choose them yourself)"
                                                      if any("(default)" in k for k in kernels) else ""))
    model = apply_adapter(cfg, model, embeddings_resized=resized, total_steps=total_steps)
    if cfg.unfrozen_parameters:
        say(f"unfrozen_parameters: {freeze_except(model, cfg.unfrozen_parameters)} parameter tensors train, "
            "the rest are frozen")
    groups = fused_lora_groups(cfg)
    if groups and fused_lora_blocked:
        groups = set()
        say(f"fused LoRA path off: {fused_lora_blocked}")
    fused = attach_fused_lora(model, groups)
    if any(fused.values()):
        say("fused LoRA path: " + ", ".join(f"{count} {group}" for group, count in sorted(fused.items())) + " layers")
    return model, resized
