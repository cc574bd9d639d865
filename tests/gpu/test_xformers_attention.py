"""GPU check for `attn_implementation: xformers` (run on the device with xformers installed:
`python -m pytest -m gpu tests/gpu/test_xformers_attention.py -o addopts=""`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

pytestmark = pytest.mark.gpu


def test_xformers_matches_sdpa_padded_and_packed():
    pytest.importorskip("xformers")
    from axo.models.attention import xformers_attention

    torch.manual_seed(0)
    module = SimpleNamespace(training=False)
    heads, kv_heads, dim, length = 8, 2, 64, 96
    q = torch.randn(2, heads, length, dim, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(2, kv_heads, length, dim, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    out, _ = xformers_attention(module, q, k, v, None, scaling=dim ** -0.5)
    expected = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(4, 1), v.repeat_interleave(4, 1), is_causal=True, scale=dim ** -0.5).transpose(1, 2)
    assert out.shape == (2, length, heads, dim)
    assert torch.allclose(out.float(), expected.float(), atol=2e-2, rtol=0)

    lengths = [40, 56]  # one packed row of two samples: neither may see the other
    positions = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0).cuda()
    packed, _ = xformers_attention(module, q[:1], k[:1], v[:1], None, scaling=dim ** -0.5, position_ids=positions)
    start = 0
    for n in lengths:
        sl = slice(start, start + n)
        alone = torch.nn.functional.scaled_dot_product_attention(
            q[:1, :, sl], k[:1, :, sl].repeat_interleave(4, 1), v[:1, :, sl].repeat_interleave(4, 1),
            is_causal=True, scale=dim ** -0.5).transpose(1, 2)
        assert torch.allclose(packed[:, sl].float(), alone.float(), atol=2e-2, rtol=0), n
        start += n
