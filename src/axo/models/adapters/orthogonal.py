"""OFT and BOFT: an orthogonal (block-diagonal, or butterfly-factorised) rotation of each adapted weight."""

from __future__ import annotations

from typing import ClassVar

from axo.models.adapters.base import AdapterKind, register_adapter


@register_adapter
class Oft(AdapterKind):
    name = "oft"
    peft_config = "OFTConfig"
    keys: ClassVar[dict[str, str]] = {
        "oft_r": "r", "oft_block_size": "oft_block_size", "oft_module_dropout": "module_dropout", "oft_coft": "coft",
        "oft_eps": "eps", "oft_block_share": "block_share",
    }
    targets_key = "oft_target_modules"


@register_adapter
class Boft(AdapterKind):
    name = "boft"
    peft_config = "BOFTConfig"
    keys: ClassVar[dict[str, str]] = {
        "boft_block_size": "boft_block_size", "boft_block_num": "boft_block_num",
        "boft_n_butterfly_factor": "boft_n_butterfly_factor", "boft_dropout": "boft_dropout",
    }
    targets_key = "boft_target_modules"
