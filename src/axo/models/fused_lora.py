"""Route PEFT's LoRA layers through axo's fused LoRA kernel (`axo.kernels.lora`).

This is the one place axo changes how a library computes: for each adapted layer the config selects
(`lora_qkv_kernel`, `lora_o_kernel`, `lora_mlp_kernel`), the instance's `forward` is replaced by one that
takes the fused path while the layer is in PEFT's plain state — one active vanilla LoRA adapter (no DoRA or
other variant, no LoRA bias), not merged, adapters enabled, no per-call `adapter_names` — and calls PEFT's
own forward otherwise. Merging, disabling the adapter (to score the base model), saving and loading are
PEFT's, untouched. Written against peft 0.21 (`peft.tuners.lora.layer.Linear` on `torch.nn.Linear`, and
`peft.tuners.lora.bnb.Linear4bit` on bitsandbytes `Linear4bit`); other layer types keep PEFT's path.
"""

from __future__ import annotations

import types
from typing import Any

import torch

from axo.kernels.lora import lora_linear, lora_linear_base_last

GROUPS = ("qkv", "o", "mlp")
_OUTPUT_PROJECTIONS = {"o_proj", "out_proj", "dense", "wo", "c_proj"}
# A decoder layer's last projection: its output only feeds the residual add, so the low-rank-first
# ordering (kernels/lora.py, lora_linear_base_last) lets checkpoint recomputation skip its base GEMM.
_LAYER_LAST_PROJECTIONS = {"down_proj", "w2", "fc2", "dense_4h_to_h"}


def layer_group(qualified_name: str) -> str:
    """Which config key covers the layer: attention output projection ("o"), other attention
    projections ("qkv"), everything else — the MLP — ("mlp")."""
    parts = qualified_name.split(".")
    in_attention = any("attn" in part or "attention" in part for part in parts[:-1])
    if not in_attention:
        return "mlp"
    return "o" if parts[-1] in _OUTPUT_PROJECTIONS else "qkv"


def _base_kind(base: torch.nn.Module) -> str | None:
    if type(base).__name__ == "Linear4bit" and hasattr(base.weight, "quant_state"):
        return "nf4"
    if isinstance(base, torch.nn.Linear):
        return "dense"
    return None


def _fused_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """Bound to a PEFT LoRA layer instance (so `copy.deepcopy` of the model copies it correctly)."""
    active = self.active_adapters
    plain = not (args or kwargs or self.disable_adapters or self.merged or len(active) != 1
                 or active[0] not in self.lora_A or active[0] in self.lora_variant
                 or getattr(self, "fan_in_fan_out", False))
    if not plain or self.lora_B[active[0]].bias is not None:
        return type(self).forward(self, x, *args, **kwargs)
    name = active[0]
    dropout = self.lora_dropout[name]
    p = dropout.p if isinstance(dropout, torch.nn.Dropout) and dropout.training else 0.0
    base = self.base_layer
    lora_a, lora_b, scale = self.lora_A[name].weight, self.lora_B[name].weight, self.scaling[name]
    base_last = p == 0.0 and self._axo_base_last and torch.is_grad_enabled()
    if _base_kind(base) == "dense":
        if base_last:
            return lora_linear_base_last(x, base.weight, base.bias, lora_a, lora_b, scale)
        return lora_linear(x, base.weight, base.bias, lora_a, lora_b, scale, dropout_p=p)
    return _nf4(x, base, lora_a, lora_b, scale, p, base_last)


def _nf4(x: torch.Tensor, base: Any, lora_a: torch.Tensor, lora_b: torch.Tensor, scale: float,
         p: float, base_last: bool) -> torch.Tensor:
    """bitsandbytes 4-bit base: compute in autocast's dtype (else the layer's compute dtype), return the
    input's dtype, as `bnb.nn.Linear4bit` does."""
    import bitsandbytes.functional as bnbf

    if torch.is_autocast_enabled(x.device.type):
        compute_dtype = torch.get_autocast_dtype(x.device.type)
    else:
        compute_dtype = base.compute_dtype or x.dtype
    weight = base.weight

    def dequantize() -> torch.Tensor:
        return bnbf.dequantize_4bit(weight, weight.quant_state).to(compute_dtype)

    if base_last:
        return lora_linear_base_last(x, weight, base.bias, lora_a, lora_b, scale, dequantize=dequantize,
                                     compute_dtype=compute_dtype, out_dtype=x.dtype)
    return lora_linear(x, weight, base.bias, lora_a, lora_b, scale, dropout_p=p, dequantize=dequantize,
                       compute_dtype=compute_dtype, out_dtype=x.dtype)


def attach_fused_lora(model: torch.nn.Module, groups: set[str]) -> dict[str, int]:
    """Give every PEFT LoRA layer in `groups` the fused forward; returns how many layers each group got.

    Layers whose base is neither a `torch.nn.Linear` nor a bitsandbytes 4-bit linear (8-bit, embeddings,
    convolutions) keep PEFT's forward.
    """
    from peft.tuners.lora import LoraLayer

    counts = dict.fromkeys(groups, 0)
    for qualified_name, module in model.named_modules():
        if not isinstance(module, LoraLayer) or not hasattr(module, "base_layer"):
            continue
        group = layer_group(qualified_name)
        kind = _base_kind(module.base_layer)
        if group not in groups or kind is None or "forward" in vars(module):
            continue
        module._axo_base_last = qualified_name.rsplit(".", 1)[-1] in _LAYER_LAST_PROJECTIONS
        module.forward = types.MethodType(_fused_forward, module)
        counts[group] += 1
    return counts
