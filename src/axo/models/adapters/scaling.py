"""IA³ (learned rescaling of activations) and VeRA (shared frozen random projections, trained scaling vectors)."""

from __future__ import annotations

from typing import Any, ClassVar

from axo.models.adapters.base import AdapterKind, mlp_modules, register_adapter


@register_adapter
class Ia3(AdapterKind):
    name = "ia3"
    peft_config = "IA3Config"
    keys: ClassVar[dict[str, str]] = {
        "ia3_feedforward_modules": "feedforward_modules", "ia3_init_ia3_weights": "init_ia3_weights",
    }
    targets_key = "ia3_target_modules"
    on_4bit_base = True

    def extra_options(self, cfg: Any, model: Any, total_steps: int | None, options: dict[str, Any]) -> dict[str, Any]:
        if cfg.ia3_feedforward_modules is None and options.get("target_modules") is not None:
            return {"feedforward_modules": mlp_modules(options["target_modules"]) or []}
        return {}


@register_adapter
class Vera(AdapterKind):
    name = "vera"
    peft_config = "VeraConfig"
    keys: ClassVar[dict[str, str]] = {
        "vera_r": "r", "vera_dropout": "vera_dropout", "vera_d_initial": "d_initial",
        "vera_projection_prng_key": "projection_prng_key", "vera_save_projection": "save_projection",
    }
    targets_key = "vera_target_modules"
