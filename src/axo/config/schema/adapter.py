"""The adapter kind (`adapter:`; models/adapters/ registers them) with LoRA's keys, and full fine-tuning."""

from __future__ import annotations

from pydantic import Field

from axo.config.schema.base import Section


class AdapterSection(Section):
    adapter: str | None = Field(
        None,
        description="`lora`, `qlora` (LoRA on a 4-bit base; needs `load_in_4bit: true`), `adalora`, `ia3`, `loha`, "
        "`lokr`, `oft`, `boft`, `vera`, `prefix_tuning`, `prompt_tuning` (PEFT's kinds; their keys carry the kind's "
        "prefix), or blank for a full fine-tune.",
    )
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int | None = Field(
        None, ge=1, description="LoRA scaling numerator (scale = alpha / r); defaults to `lora_r`.",
    )
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    lora_target_modules: list[str] | str | None = Field(
        None,
        description="Module names to adapt (e.g. `[q_proj, v_proj]`) or one regex matched against full module names.",
    )
    lora_target_linear: bool | None = Field(
        None, description="Adapt every linear layer except the output head.",
    )
    lora_modules_to_save: list[str] | None = Field(
        None, description="Modules trained in full and saved with the adapter, e.g. `[embed_tokens, lm_head]`.",
    )
    lora_fan_in_fan_out: bool = Field(False, description="Set for models whose linear weights are stored transposed (GPT-2 Conv1D).")
    lora_model_dir: str | None = Field(None, description="An existing adapter directory to continue training from.")
    peft_use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")
    peft_use_rslora: bool = Field(False, description="Rank-stabilised LoRA scaling (alpha / sqrt(r)).")
    peft_layers_to_transform: list[int] | None = Field(None, description="Only adapt these layer indices.")
    peft_init_lora_weights: bool | str | None = Field(
        None, description="LoRA init: true (default), `gaussian`, `pissa`, `olora`, `loftq` …, as in peft.",
    )
