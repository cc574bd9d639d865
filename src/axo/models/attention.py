"""Packed-sequence attention on CUDA: torch's variable-length flash kernel behind transformers'
`AttentionInterface`, so packed samples never attend to each other and cost what causal attention costs.

Sequence boundaries come from `position_ids` (each sample restarts at 0), which transformers passes to
the attention function. Registered under the name :data:`VARLEN`; its mask function returns None so no
dense mask is ever built. Written against torch 2.11-2.13 (`torch.nn.attention.varlen.varlen_attn`,
whose causal and GQA arguments changed between versions) and transformers 5.x.
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

VARLEN = "axo_varlen"
_registered = False


def varlen_available() -> bool:
    try:
        from torch.nn.attention import varlen  # noqa: F401
    except ImportError:
        return False
    return True


def sequence_boundaries(position_ids, total: int):
    """Cumulative sequence starts (int32, with the total at the end) and the longest sequence."""
    import torch

    starts = torch.nonzero(position_ids.reshape(-1) == 0).flatten()
    if starts.numel() == 0 or starts[0] != 0:
        starts = torch.cat([starts.new_zeros(1), starts])
    cu = torch.cat([starts, starts.new_tensor([total])]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


def _kernel_options() -> dict[str, Any]:
    from torch.nn.attention.varlen import varlen_attn

    parameters = inspect.signature(varlen_attn).parameters
    options: dict[str, Any] = {}
    if "is_causal" in parameters:  # torch 2.10/2.11
        options["is_causal"] = True
    else:  # torch 2.12+: causal is a window
        options["window_size"] = (-1, 0)
    return options


def varlen_attention(module: Any, query, key, value, attention_mask, scaling: float | None = None,
                     dropout: float = 0.0, **kwargs: Any):
    """transformers attention function: (batch, heads, seq, dim) in, (batch, seq, heads, dim) out."""
    import torch
    from torch.nn.attention.varlen import varlen_attn

    batch, heads, length, dim = query.shape
    input_dtype = query.dtype
    if input_dtype not in (torch.float16, torch.bfloat16):
        # QLoRA's k-bit preparation keeps norms in fp32, so activations can arrive in fp32; the flash kernel
        # takes only half precision. Run it in the autocast dtype (as transformers' flash path does).
        half = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else torch.bfloat16
        query, key, value = query.to(half), key.to(half), value.to(half)
    position_ids = kwargs.get("position_ids")
    if position_ids is None:
        position_ids = torch.arange(length, device=query.device).expand(batch, length)
    cu, longest = sequence_boundaries(position_ids, batch * length)
    q = query.transpose(1, 2).reshape(batch * length, heads, dim)
    k = key.transpose(1, 2).reshape(batch * length, key.shape[1], dim)
    v = value.transpose(1, 2).reshape(batch * length, value.shape[1], dim)
    if k.shape[1] != heads:  # grouped-query attention: give every query head its key/value head
        k = k.repeat_interleave(heads // k.shape[1], dim=1)
        v = v.repeat_interleave(heads // v.shape[1], dim=1)
    out = varlen_attn(q, k, v, cu, cu, longest, longest, scale=scaling, **_kernel_options())
    return out.reshape(batch, length, heads, dim).to(input_dtype), None


def _no_mask(*args: Any, **kwargs: Any) -> None:
    return None  # boundaries come from position_ids; never build a dense mask


def register_varlen_attention() -> str:
    """Register :data:`VARLEN` with transformers (once) and return its name for `attn_implementation`."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(VARLEN, varlen_attention)
        AttentionMaskInterface.register(VARLEN, _no_mask)
        _registered = True
    return VARLEN


XFORMERS = "axo_xformers"


def xformers_attention(module: Any, query, key, value, attention_mask, scaling: float | None = None,
                       dropout: float = 0.0, **kwargs: Any):
    """transformers attention function over xformers' `memory_efficient_attention`: causal within each
    sequence, packed sequences (restarting `position_ids`) kept apart by a block-diagonal causal mask. Rows are
    right-padded, so causality alone keeps real tokens off the padding."""
    from xformers.ops import fmha

    batch, heads, length, dim = query.shape
    q, k, v = (t.transpose(1, 2) for t in (query, key, value))  # xformers takes (batch, seq, heads, dim)
    if k.shape[2] != heads:  # grouped-query attention
        k = k.repeat_interleave(heads // k.shape[2], dim=2)
        v = v.repeat_interleave(heads // v.shape[2], dim=2)
    position_ids = kwargs.get("position_ids")
    bias: Any = fmha.attn_bias.LowerTriangularMask()
    if position_ids is not None and int((position_ids.reshape(-1) == 0).sum()) > batch:
        cu, _ = sequence_boundaries(position_ids, batch * length)
        bias = fmha.attn_bias.BlockDiagonalCausalMask.from_seqlens((cu[1:] - cu[:-1]).tolist())
        q, k, v = (t.reshape(1, batch * length, heads, dim) for t in (q, k, v))
    out = fmha.memory_efficient_attention(q, k, v, attn_bias=bias, p=dropout if module.training else 0.0,
                                          scale=scaling)
    return out.reshape(batch, length, heads, dim).to(query.dtype), None


def _missing(key: str, message: str, hint: str) -> Exception:
    from axo.config.problems import ConfigError, Kind, Problem, Severity

    return ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, key, message, hint)])


def _kernels_available() -> bool:
    """transformers' own test (an installed `kernels` distribution in its supported version range)."""
    from transformers.utils.import_utils import is_kernels_available

    return is_kernels_available()


def check_attention(wanted: str | None) -> None:
    """Refuse, before any data or model work, an attention backend whose package is not installed: `xformers`
    needs xformers; a Hub kernel (`kernels-community/…`) needs the `kernels` package transformers loads it with
    (and the kernel itself from the Hub or the local cache when the model loads)."""
    from axo.config.schema.names import is_hub_kernel

    if wanted == "xformers" and importlib.util.find_spec("xformers") is None:
        raise _missing("attn_implementation", "`xformers` attention needs the xformers package, which is not "
                       "installed.", "Install it (`pip install xformers`, CUDA only), or use "
                       "`attn_implementation: sdpa` (torch's fused kernels, no extra package).")
    if wanted is not None and is_hub_kernel(wanted) and not _kernels_available():
        raise _missing("attn_implementation", f"`{wanted}` is a Hub kernel, which transformers loads through the "
                       "`kernels` package, not installed here.", "Install it (`pip install kernels`), or use "
                       "`attn_implementation: sdpa`.")


def attention_backend(wanted: str) -> str:
    """The name transformers loads for `xformers` or a Hub kernel: xformers through :func:`xformers_attention`
    registered in transformers' `AttentionInterface`; a Hub kernel id as it is (transformers fetches it)."""
    check_attention(wanted)
    if wanted != "xformers":
        return wanted
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(XFORMERS, xformers_attention)
    AttentionMaskInterface.register(XFORMERS, _no_mask)
    return XFORMERS
