"""LoRA (with DoRA and rsLoRA as options) and QLoRA, LoRA on a 4-bit base: axo's fused path applies."""

from __future__ import annotations

from typing import Any, ClassVar

from axo.models.adapters.base import AdapterKind, register_adapter


@register_adapter
class Lora(AdapterKind):
    name = "lora"
    peft_config = "LoraConfig"
    keys: ClassVar[dict[str, str]] = {
        "lora_r": "r", "lora_dropout": "lora_dropout", "lora_fan_in_fan_out": "fan_in_fan_out",
        "peft_use_dora": "use_dora", "peft_use_rslora": "use_rslora", "peft_init_lora_weights": "init_lora_weights",
    }
    targets_key = "lora_target_modules"
    on_4bit_base = True
    fused_lora = True

    def options(self, cfg: Any, model: Any, total_steps: int | None) -> dict[str, Any]:
        from axo.models.adapter import lora_targets

        options = super().options(cfg, model, total_steps)
        options["target_modules"] = lora_targets(cfg, model)
        options["lora_alpha"] = cfg.lora_alpha or cfg.lora_r
        return options


@register_adapter
class QLora(Lora):
    name = "qlora"
