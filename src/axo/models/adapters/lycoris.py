"""LoHa and LoKr (PEFT's LyCORIS kinds): Hadamard and Kronecker products of low-rank factors."""

from __future__ import annotations

from typing import ClassVar

from axo.models.adapters.base import AdapterKind, register_adapter


@register_adapter
class LoHa(AdapterKind):
    name = "loha"
    peft_config = "LoHaConfig"
    keys: ClassVar[dict[str, str]] = {
        "loha_r": "r", "loha_alpha": "alpha", "loha_rank_dropout": "rank_dropout",
        "loha_module_dropout": "module_dropout",
    }
    targets_key = "loha_target_modules"


@register_adapter
class LoKr(AdapterKind):
    name = "lokr"
    peft_config = "LoKrConfig"
    keys: ClassVar[dict[str, str]] = {
        "lokr_r": "r", "lokr_alpha": "alpha", "lokr_rank_dropout": "rank_dropout",
        "lokr_module_dropout": "module_dropout", "lokr_decompose_both": "decompose_both",
        "lokr_decompose_factor": "decompose_factor",
    }
    targets_key = "lokr_target_modules"
