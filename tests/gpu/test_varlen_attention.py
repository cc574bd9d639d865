"""GPU checks for packed attention (run on the device: `python -m pytest -m gpu tests/gpu`)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_cuda():
    if not torch.cuda.is_available():
        pytest.fail("GPU tests run on a CUDA machine (the device tool); CI deselects them with -m 'not gpu'")


def test_varlen_matches_sdpa_run_per_sample():
    from axo.models.attention import varlen_attention

    torch.manual_seed(0)
    lengths = [700, 300, 1024, 24]
    heads, kv_heads, dim = 32, 8, 128
    q = torch.randn(1, heads, sum(lengths), dim, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, kv_heads, sum(lengths), dim, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    positions = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0).cuda()
    packed, _ = varlen_attention(None, q, k, v, None, scaling=dim ** -0.5, position_ids=positions)
    start = 0
    for n in lengths:
        sl = slice(start, start + n)
        expected = torch.nn.functional.scaled_dot_product_attention(
            q[:, :, sl], k[:, :, sl].repeat_interleave(4, 1), v[:, :, sl].repeat_interleave(4, 1), is_causal=True,
            scale=dim ** -0.5).transpose(1, 2)
        assert torch.allclose(packed[:, sl].float(), expected.float(), atol=2e-2, rtol=0), n
        start += n


def test_fp32_activations_are_run_in_half_precision():
    from axo.models.attention import varlen_attention

    q = torch.randn(1, 8, 64, 64, device="cuda")
    k = torch.randn(1, 2, 64, 64, device="cuda")
    out, _ = varlen_attention(None, q, k, torch.randn_like(k), None, scaling=0.125,
                              position_ids=torch.arange(64, device="cuda").unsqueeze(0))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
