"""AdaLoRA: LoRA whose ranks are pruned towards a budget as training runs; PEFT's `update_and_allocate` must
see every optimizer step, so the kind brings a TrainerCallback that calls it."""

from __future__ import annotations

from typing import Any, ClassVar

from axo.models.adapters.base import AdapterKind, register_adapter


@register_adapter
class AdaLora(AdapterKind):
    name = "adalora"
    peft_config = "AdaLoraConfig"
    keys: ClassVar[dict[str, str]] = {
        "adalora_init_r": "init_r", "adalora_target_r": "target_r", "adalora_tinit": "tinit",
        "adalora_tfinal": "tfinal", "adalora_deltaT": "deltaT", "adalora_beta1": "beta1", "adalora_beta2": "beta2",
        "adalora_orth_reg_weight": "orth_reg_weight", "lora_dropout": "lora_dropout",
    }
    targets_key = "adalora_target_modules"
    on_4bit_base = True
    resumable = False  # PEFT's load_adapter cannot restore pruned ranks; the allocator's scores are not saved

    def extra_options(self, cfg: Any, model: Any, total_steps: int | None, options: dict[str, Any]) -> dict[str, Any]:
        # PEFT needs the run's length to schedule the budget; the warm-up and final phases must fit inside it
        steps = max(total_steps or 1, 3)
        extra = {"total_step": steps, "lora_alpha": cfg.lora_alpha or cfg.lora_r}
        tinit, tfinal = options.get("tinit"), options.get("tfinal")
        if tinit is None and tfinal is None:
            extra |= {"tinit": steps // 5, "tfinal": steps // 5}
        return extra

    def callbacks(self, model: Any) -> list[Any]:
        from transformers import TrainerCallback

        class RankBudget(TrainerCallback):
            """After each optimizer step, before the gradients are cleared: PEFT's rank re-allocation."""

            def on_optimizer_step(self, args, state, control, **kwargs):
                model.base_model.update_and_allocate(state.global_step)

        return [RankBudget()]
