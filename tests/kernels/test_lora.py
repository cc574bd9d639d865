"""The fused LoRA function against the textbook formula, value and gradients, in float32 and under bf16 autocast."""

from __future__ import annotations

import pytest
import torch

from axo.kernels.lora import lora_linear, lora_linear_base_last


def _inputs(bias: bool, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 16, generator=gen, dtype=dtype, requires_grad=True)
    weight = torch.randn(12, 16, generator=gen, dtype=dtype)
    b = torch.randn(12, generator=gen, dtype=dtype) if bias else None
    lora_a = torch.randn(4, 16, generator=gen, requires_grad=True)
    lora_b = torch.randn(12, 4, generator=gen, requires_grad=True)
    return x, weight, b, lora_a, lora_b


def _reference(x, weight, bias, lora_a, lora_b, scale, keep=None, p=0.0):
    dropped = x if keep is None else x * keep.view_as(x) / (1 - p)
    out = x @ weight.t() + scale * (dropped @ lora_a.t().to(x.dtype)) @ lora_b.t().to(x.dtype)
    return out + bias if bias is not None else out


def _grads(out, tensors, seed=1):
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.dtype)
    return torch.autograd.grad(out, tensors, upstream)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("function", [lora_linear, lora_linear_base_last], ids=["fused", "base-last"])
def test_matches_the_formula_in_float32(bias, function):
    x, weight, b, lora_a, lora_b = _inputs(bias)
    if b is not None:
        b.requires_grad_(True)
    trainable = [t for t in (x, b, lora_a, lora_b) if t is not None]
    out = function(x, weight, b, lora_a, lora_b, 2.0)
    expected = _reference(x, weight, b, lora_a, lora_b, 2.0)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for got, want in zip(_grads(out, trainable), _grads(expected, trainable), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_dropout_uses_one_mask_for_value_and_gradients():
    x, weight, _, lora_a, lora_b = _inputs(False)
    torch.manual_seed(7)
    fused = lora_linear(x, weight, None, lora_a, lora_b, 0.5, dropout_p=0.25)
    torch.manual_seed(7)  # the function draws its keep-mask first, with bernoulli_ on the flattened input
    keep = torch.empty(15, 16, dtype=torch.bool).bernoulli_(0.75)
    assert 0 < keep.sum() < keep.numel()
    expected = _reference(x, weight, None, lora_a, lora_b, 0.5, keep=keep, p=0.25)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
    for got, want in zip(_grads(fused, [x, lora_a, lora_b]), _grads(expected, [x, lora_a, lora_b]), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_bf16_autocast_computes_in_bf16_and_returns_float32_grads_for_float32_adapters():
    x, weight, _, lora_a, lora_b = _inputs(False, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = lora_linear(x, weight, None, lora_a, lora_b, 2.0)
    assert fused.dtype == torch.bfloat16
    grad_x, grad_a, grad_b = _grads(fused, [x, lora_a, lora_b])
    assert (grad_x.dtype, grad_a.dtype, grad_b.dtype) == (torch.bfloat16, torch.float32, torch.float32)
    expected = _reference(x.float(), weight.float(), None, lora_a, lora_b, 2.0)
    torch.testing.assert_close(fused.float(), expected, rtol=3e-2, atol=0.3)
    want_x, want_a, want_b = _grads(expected, [x, lora_a, lora_b])
    for got, want in ((grad_x, want_x), (grad_a, want_a), (grad_b, want_b)):
        assert torch.nn.functional.cosine_similarity(got.float().flatten(), want.float().flatten(), dim=0) > 0.999


def test_dequantize_callback_supplies_the_base_weight_in_both_passes():
    x, weight, _, lora_a, lora_b = _inputs(False)
    calls = []

    def dequantize():
        calls.append(1)
        return weight

    storage = torch.zeros(1, dtype=torch.uint8)  # stands in for packed 4-bit storage; never read as weights
    fused = lora_linear(x, storage, None, lora_a, lora_b, 2.0, dequantize=dequantize,
                        compute_dtype=torch.float32, out_dtype=torch.float32)
    torch.testing.assert_close(fused, _reference(x, weight, None, lora_a, lora_b, 2.0))
    _grads(fused, [x, lora_a])
    assert len(calls) == 2  # once forward, once backward: only the packed copy is kept in between


@pytest.mark.parametrize(("base_last", "base_weight_reads"), [(False, 3), (True, 2)])
def test_checkpoint_recomputation_skips_the_base_gemm_when_it_comes_last(base_last, base_weight_reads):
    """Forward, recompute, backward each read the base weight — except the recompute with base-last ordering,
    which torch's early stop ends once the low-rank tensors exist."""
    from torch.utils.checkpoint import checkpoint

    x, weight, _, lora_a, lora_b = _inputs(False)
    reads = []

    def dequantize():
        reads.append(1)
        return weight

    storage = torch.zeros(1, dtype=torch.uint8)
    function = lora_linear_base_last if base_last else lora_linear

    def layer(h):
        return function(h.tanh(), storage, None, lora_a, lora_b, 2.0, dequantize=dequantize,
                        compute_dtype=torch.float32, out_dtype=torch.float32) + h.sum()

    out = checkpoint(layer, x, use_reentrant=False)
    got = _grads(out, [x, lora_a, lora_b])
    assert len(reads) == base_weight_reads
    want = _grads(_reference(x.tanh(), weight, None, lora_a, lora_b, 2.0) + x.sum(), [x, lora_a, lora_b])
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-4)
