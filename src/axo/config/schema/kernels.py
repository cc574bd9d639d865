"""Speed options: fused kernels (liger-kernel, with Axolotl's plugin key names) and compilation."""

from __future__ import annotations

from pydantic import Field

from axo.config.schema.base import Section


class KernelSection(Section):
    liger_rope: bool | None = Field(None, description="Fused rotary embeddings (liger-kernel).")
    liger_rms_norm: bool | None = Field(None, description="Fused RMSNorm (liger-kernel).")
    liger_glu_activation: bool | None = Field(None, description="Fused SwiGLU/GeGLU MLP activation (liger-kernel).")
    liger_swiglu: bool | None = Field(None, description="Older spelling of `liger_glu_activation`.")
    liger_layer_norm: bool | None = Field(None, description="Fused LayerNorm (liger-kernel).")
    liger_cross_entropy: bool | None = Field(None, description="Fused cross-entropy (liger-kernel).")
    liger_fused_linear_cross_entropy: bool | None = Field(
        None, description="Output projection + cross-entropy in chunks, never materialising the full logits (liger-kernel).",
    )
    cut_cross_entropy: bool | None = Field(
        None, description="Cut Cross Entropy (Apple's cut-cross-entropy package, CUDA GPU): the loss from the last "
        "hidden states and the output head without materialising the logits (models/cce.py lists the architectures).",
    )
    lora_qkv_kernel: bool | None = Field(
        None, description="Fused LoRA path (base GEMM + low-rank product in one autograd function) for the attention "
        "q/k/v projections. Unset: on for `adapter: lora`/`qlora` (not DoRA, not 8-bit).",
    )
    lora_o_kernel: bool | None = Field(
        None, description="Fused LoRA path for the attention output projection. Unset: on when `lora_qkv_kernel` would be.",
    )
    lora_mlp_kernel: bool | None = Field(
        None, description="Fused LoRA path for the MLP projections (gate/up/down). Unset: on when `lora_qkv_kernel` would be.",
    )
    plugins: list[str] | None = Field(
        None, description="Axolotl plugin names. Liger is built in (its liger_* keys are read directly); the Cut "
        "Cross Entropy plugin turns on `cut_cross_entropy`; any other plugin is reported by name (config/plugins.py).",
    )
