"""4-bit and 8-bit loading through bitsandbytes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from axo.config.schema.base import Section


class QuantizationSection(Section):
    load_in_8bit: bool = Field(False, description="Load the base model in 8-bit (bitsandbytes LLM.int8, CUDA only).")
    load_in_4bit: bool = Field(
        False, description="Load the base model in 4-bit (bitsandbytes, CUDA only); required by `adapter: qlora`.",
    )
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type.")
    bnb_4bit_use_double_quant: bool = Field(True, description="Quantize the quantization constants too (saves ~0.4 bit/param).")
    bnb_4bit_compute_dtype: Literal["bfloat16", "float16", "float32"] | None = Field(
        None, description="dtype of the 4-bit matmuls; defaults to the training dtype.",
    )
    bnb_4bit_quant_storage: Literal["bfloat16", "float16", "float32", "uint8"] | None = Field(
        None, description="Storage dtype of packed 4-bit weights (bfloat16 for FSDP/ZeRO-3 sharding).",
    )
    embeddings_skip_upcast: bool | None = Field(
        None, description="With a 4/8-bit base, keep the embeddings, output head and norms in the training dtype "
        "instead of float32 (they are frozen). Unset: true when training in bf16/fp16 — Axolotl's default is "
        "false; set false for its float32 copies (+2 bytes per embedding weight, float32 residual stream).",
    )
    bnb_config_kwargs: dict[str, Any] | None = Field(
        None, description="More keyword arguments for transformers' `BitsAndBytesConfig`.",
    )
