"""Prefix tuning and prompt tuning: trained virtual tokens in front of every row, the base model untouched.
Nothing to merge; packed rows would share one prefix across samples, so packing is refused. PEFT requires a number
of virtual tokens; unset, axo uses 20 (the number in PEFT's own examples)."""

from __future__ import annotations

from typing import Any, ClassVar

from axo.models.adapters.base import AdapterKind, register_adapter

VIRTUAL_TOKENS = 20


class _VirtualTokens(AdapterKind):
    merges = False
    on_4bit_base = True
    packs = False

    def extra_options(self, cfg: Any, model: Any, total_steps: int | None, options: dict[str, Any]) -> dict[str, Any]:
        return {} if "num_virtual_tokens" in options else {"num_virtual_tokens": VIRTUAL_TOKENS}


@register_adapter
class PrefixTuning(_VirtualTokens):
    name = "prefix_tuning"
    peft_config = "PrefixTuningConfig"
    keys: ClassVar[dict[str, str]] = {
        "prefix_num_virtual_tokens": "num_virtual_tokens", "prefix_projection": "prefix_projection",
        "prefix_encoder_hidden_size": "encoder_hidden_size",
    }


@register_adapter
class PromptTuning(_VirtualTokens):
    name = "prompt_tuning"
    peft_config = "PromptTuningConfig"
    keys: ClassVar[dict[str, str]] = {
        "prompt_tuning_num_virtual_tokens": "num_virtual_tokens", "prompt_tuning_init": "prompt_tuning_init",
        "prompt_tuning_init_text": "prompt_tuning_init_text",
    }

    def extra_options(self, cfg: Any, model: Any, total_steps: int | None, options: dict[str, Any]) -> dict[str, Any]:
        extra = super().extra_options(cfg, model, total_steps, options)
        if options.get("prompt_tuning_init_text"):  # PEFT tokenizes the text with the base's tokenizer
            extra |= {"prompt_tuning_init": "TEXT", "tokenizer_name_or_path": cfg.tokenizer_config or cfg.base_model}
        return extra
