"""A LoRA linear layer as one autograd function: base GEMM plus the low-rank path, nothing else.

PEFT computes `base(x) + lora_B(lora_A(dropout(x))) * scaling` as separate modules. With its float32
adapter weights and bf16 activations that costs, per layer and per pass, a float32 copy of the input,
an autocast copy back to bf16, the scaled low-rank product as a full-size tensor, and a full-size add —
four extra reads/writes of the layer's input or output, and as many again in the backward pass. Here the
low-rank product is accumulated into the base output by the GEMM itself (`addmm_` with beta = 1), the
rank-r products are taken in the cheap order (x·Aᵀ first, never Aᵀ·B), and the backward pass accumulates
the input gradient in place the same way. The only tensors saved for backward are the (possibly
dropped-out) input, the rank-r product x·Aᵀ and, with dropout, its keep-mask.

`lora_linear_base_last` computes the same thing as three autograd steps ordered so that everything the
backward pass needs is saved *before* the frozen base GEMM runs. Under non-reentrant gradient
checkpointing torch stops recomputing a layer as soon as the last tensor its backward needs exists; used
for the layer's final projection (the MLP's down projection, whose output only feeds the residual), the
recomputation then skips that GEMM — about a quarter of a Llama layer's forward GEMM FLOPs.

The frozen base weight can be a plain tensor or 4-bit bitsandbytes storage: `dequantize` turns it into the
compute dtype (once in forward, once in backward — the quantized copy is the only one kept).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Dequantize = Callable[[], torch.Tensor]


def _compute_dtype(x: torch.Tensor, fallback: torch.dtype) -> torch.dtype:
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return fallback


def _frozen_weight(weight: torch.Tensor, dequantize: Dequantize | None, compute_dtype: torch.dtype) -> torch.Tensor:
    """The base weight as a `compute_dtype` matrix: dequantized from 4-bit storage, or cast (a no-op when it
    already has that dtype)."""
    return dequantize() if dequantize is not None else weight.to(compute_dtype)


def _default_compute_dtype(x: torch.Tensor, weight: torch.Tensor, dequantize: Dequantize | None) -> torch.dtype:
    return _compute_dtype(x, x.dtype if dequantize is not None else weight.dtype)


class _LoraLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scale, dropout_p, dequantize, compute_dtype, out_dtype):
        in_features = x.shape[-1]
        x2 = x.reshape(-1, in_features).to(compute_dtype)
        base = _frozen_weight(weight, dequantize, compute_dtype)
        if bias is not None:
            out = torch.addmm(bias.to(compute_dtype), x2, base.t())
        else:
            out = torch.mm(x2, base.t())
        del base
        a, b = lora_a.to(compute_dtype), lora_b.to(compute_dtype)
        keep = None
        if dropout_p > 0.0:
            keep = torch.empty_like(x2, dtype=torch.bool).bernoulli_(1.0 - dropout_p)
            x_lora = x2 * keep * (1.0 / (1.0 - dropout_p))
        else:
            x_lora = x2
        xa = torch.mm(x_lora, a.t())
        out.addmm_(xa, b.t(), alpha=scale)
        ctx.save_for_backward(x_lora, xa, keep, weight, lora_a, lora_b)
        ctx.meta = (scale, dropout_p, dequantize, compute_dtype, x.shape, x.dtype, bias is not None)
        return out.view(*x.shape[:-1], out.shape[-1]).to(out_dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x_lora, xa, keep, weight, lora_a, lora_b = ctx.saved_tensors
        scale, dropout_p, dequantize, compute_dtype, x_shape, x_dtype, has_bias = ctx.meta
        g = grad_out.reshape(-1, grad_out.shape[-1]).to(compute_dtype)
        a, b = lora_a.to(compute_dtype), lora_b.to(compute_dtype)
        g_b = torch.mm(g, b)  # [tokens, r]: the gradient reaching x·Aᵀ, before scaling
        grad_a = grad_b = grad_x = grad_bias = None
        if ctx.needs_input_grad[4]:
            grad_b = torch.mm(g.t(), xa).mul_(scale).to(lora_b.dtype)
        if ctx.needs_input_grad[3]:
            grad_a = torch.mm(g_b.t(), x_lora).mul_(scale).to(lora_a.dtype)
        if ctx.needs_input_grad[0]:
            base = _frozen_weight(weight, dequantize, compute_dtype)
            grad_x = torch.mm(g, base)
            del base
            if keep is None:
                grad_x.addmm_(g_b, a, alpha=scale)
            else:
                grad_x.add_(torch.mm(g_b, a).mul_(keep).mul_(scale / (1.0 - dropout_p)))
            grad_x = grad_x.view(x_shape).to(x_dtype)
        if has_bias and ctx.needs_input_grad[2]:
            grad_bias = g.sum(0)
        return grad_x, None, grad_bias, grad_a, grad_b, None, None, None, None, None


class _LowRankDown(torch.autograd.Function):
    """`x·Aᵀ`. Its backward returns A's gradient only: `_FrozenBaseAdd` returns the input's whole gradient."""

    @staticmethod
    def forward(ctx, x2, lora_a, compute_dtype):
        ctx.save_for_backward(x2, lora_a)
        return torch.mm(x2, lora_a.to(compute_dtype).t())

    @staticmethod
    def backward(ctx, grad_xa):
        x2, lora_a = ctx.saved_tensors
        grad_a = torch.mm(grad_xa.t(), x2).to(lora_a.dtype) if ctx.needs_input_grad[1] else None
        return None, grad_a, None


class _FrozenBaseAdd(torch.autograd.Function):
    """`low += x·Wᵀ (+ bias)` in place. Saves no tensors, so a checkpoint's recomputation can stop before it;
    the weights it needs in backward are parameters, held on ctx."""

    @staticmethod
    def forward(ctx, x2, low, weight, bias, lora_a, lora_b, scale, dequantize, compute_dtype):
        base = _frozen_weight(weight, dequantize, compute_dtype)
        low.addmm_(x2, base.t())
        del base
        if bias is not None:
            low.add_(bias.to(compute_dtype))
        ctx.mark_dirty(low)
        ctx.weights = (weight, lora_a, lora_b)
        ctx.meta = (scale, dequantize, compute_dtype, bias is not None)
        return low

    @staticmethod
    def backward(ctx, g):
        weight, lora_a, lora_b = ctx.weights
        scale, dequantize, compute_dtype, has_bias = ctx.meta
        grad_x = None
        if ctx.needs_input_grad[0]:
            base = _frozen_weight(weight, dequantize, compute_dtype)
            grad_x = torch.mm(g, base)
            del base
            g_b = torch.mm(g, lora_b.to(compute_dtype))
            grad_x.addmm_(g_b, lora_a.to(compute_dtype), alpha=scale)
        grad_bias = g.sum(0) if has_bias and ctx.needs_input_grad[3] else None
        return grad_x, g, None, grad_bias, None, None, None, None, None


def lora_linear_base_last(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, lora_a: torch.Tensor,
                          lora_b: torch.Tensor, scale: float, *, dequantize: Dequantize | None = None,
                          compute_dtype: torch.dtype | None = None,
                          out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """`lora_linear` without dropout, with the frozen base GEMM last and saving nothing (see the module
    docstring). Same values and gradients; one extra write of the output-sized low-rank product."""
    if compute_dtype is None:
        compute_dtype = _default_compute_dtype(x, weight, dequantize)
    x2 = x.reshape(-1, x.shape[-1]).to(compute_dtype)
    xa = _LowRankDown.apply(x2, lora_a, compute_dtype)
    low = torch.mm(xa, (lora_b.to(compute_dtype) * scale).t())
    out = _FrozenBaseAdd.apply(x2, low, weight, bias, lora_a, lora_b, float(scale), dequantize, compute_dtype)
    return out.view(*x.shape[:-1], out.shape[-1]).to(out_dtype or compute_dtype)


def lora_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, lora_a: torch.Tensor,
                lora_b: torch.Tensor, scale: float, *, dropout_p: float = 0.0, dequantize: Dequantize | None = None,
                compute_dtype: torch.dtype | None = None, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """`x·Wᵀ + bias + scale · dropout(x)·Aᵀ·Bᵀ` with a frozen `W` (and bias) and trainable `A`, `B`.

    `compute_dtype` defaults to autocast's dtype when autocast is on, else the base weight's (for quantized
    storage, pass `dequantize`, which must return `W` in the compute dtype). The result has `out_dtype`
    (default: the compute dtype); gradients come back in each input's own dtype. The caller passes
    `dropout_p = 0` outside training, as `nn.Dropout` would.
    """
    if compute_dtype is None:
        compute_dtype = _default_compute_dtype(x, weight, dequantize)
    return _LoraLinear.apply(x, weight, bias, lora_a, lora_b, float(scale), float(dropout_p), dequantize,
                             compute_dtype, out_dtype or compute_dtype)
