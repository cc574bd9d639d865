"""Keys of the adapter kinds beyond LoRA (`adapter: adalora | ia3 | loha | lokr | oft | boft | vera |
prefix_tuning | prompt_tuning`): PEFT's own parameter names under the kind's prefix. Unset keys keep PEFT's
defaults; a layer-replacing kind without its own `*_target_modules` adapts the LoRA keys' targets."""

from __future__ import annotations

from pydantic import Field

from axo.config.schema.base import Section

_TARGETS = ("Modules this kind adapts (names or one regex); unset: `lora_target_modules` / `lora_target_linear`, "
            "else PEFT's default for the architecture.")


class AdapterKindsSection(Section):
    adalora_init_r: int | None = Field(None, ge=1,
        description="AdaLoRA: every layer's starting rank (PEFT `init_r`, 12).")
    adalora_target_r: int | None = Field(None, ge=1,
        description="AdaLoRA: the average rank the budget ends at (PEFT `target_r`, 8).")
    adalora_tinit: int | None = Field(None, ge=0,
        description="AdaLoRA: steps before pruning starts (unset: a fifth of the run).")
    adalora_tfinal: int | None = Field(None, ge=0,
        description="AdaLoRA: final steps at the target budget (unset: a fifth of the run).")
    adalora_deltaT: int | None = Field(None, ge=1,
        description="AdaLoRA: steps between budget updates (PEFT `deltaT`, 1).")
    adalora_beta1: float | None = Field(None, description="AdaLoRA: smoothing of the importance scores (PEFT `beta1`).")
    adalora_beta2: float | None = Field(None, description="AdaLoRA: smoothing of their uncertainty (PEFT `beta2`).")
    adalora_orth_reg_weight: float | None = Field(None, ge=0,
        description="AdaLoRA: orthogonality regularisation weight.")
    adalora_target_modules: list[str] | str | None = Field(None, description="AdaLoRA: " + _TARGETS)
    ia3_target_modules: list[str] | str | None = Field(None, description="IA³: " + _TARGETS)
    ia3_feedforward_modules: list[str] | str | None = Field(
        None, description="IA³: the targets whose input (not output) is rescaled; unset: the MLP projections among "
        "them.")
    ia3_init_ia3_weights: bool | None = Field(
        None, description="IA³: start the scaling vectors at 1 (PEFT's default).")
    loha_r: int | None = Field(None, ge=1, description="LoHa: rank of each Hadamard factor (PEFT `r`, 8).")
    loha_alpha: int | None = Field(None, ge=1, description="LoHa: scaling numerator (PEFT `alpha`, 8).")
    loha_rank_dropout: float | None = Field(None, ge=0, lt=1, description="LoHa: dropout over ranks.")
    loha_module_dropout: float | None = Field(None, ge=0, lt=1,
        description="LoHa: chance of skipping a module in a step.")
    loha_target_modules: list[str] | str | None = Field(None, description="LoHa: " + _TARGETS)
    lokr_r: int | None = Field(None, ge=1, description="LoKr: rank of the Kronecker factor (PEFT `r`, 8).")
    lokr_alpha: int | None = Field(None, ge=1, description="LoKr: scaling numerator (PEFT `alpha`, 8).")
    lokr_rank_dropout: float | None = Field(None, ge=0, lt=1, description="LoKr: dropout over ranks.")
    lokr_module_dropout: float | None = Field(None, ge=0, lt=1,
        description="LoKr: chance of skipping a module in a step.")
    lokr_decompose_both: bool | None = Field(None, description="LoKr: low-rank both Kronecker factors.")
    lokr_decompose_factor: int | None = Field(None, description="LoKr: the factor's size (-1: as square as possible).")
    lokr_target_modules: list[str] | str | None = Field(None, description="LoKr: " + _TARGETS)
    oft_r: int | None = Field(None, ge=0, description="OFT: number of orthogonal blocks (0: set by `oft_block_size`).")
    oft_block_size: int | None = Field(None, ge=0,
        description="OFT: size of each orthogonal block (PEFT's default 32).")
    oft_module_dropout: float | None = Field(None, ge=0, lt=1, description="OFT: chance of skipping a block in a step.")
    oft_coft: bool | None = Field(None, description="OFT: constrained OFT (rotations kept near the identity).")
    oft_eps: float | None = Field(None, gt=0, description="OFT: how far constrained OFT may move.")
    oft_block_share: bool | None = Field(None, description="OFT: one rotation shared by all blocks of a layer.")
    oft_target_modules: list[str] | str | None = Field(None, description="OFT: " + _TARGETS)
    boft_block_size: int | None = Field(None, ge=0, description="BOFT: butterfly block size (PEFT's default 4).")
    boft_block_num: int | None = Field(None, ge=0, description="BOFT: number of blocks (0: set by the block size).")
    boft_n_butterfly_factor: int | None = Field(None, ge=1, description="BOFT: butterfly factors (1: plain OFT).")
    boft_dropout: float | None = Field(None, ge=0, lt=1, description="BOFT: multiplicative dropout.")
    boft_target_modules: list[str] | str | None = Field(None, description="BOFT: " + _TARGETS)
    vera_r: int | None = Field(None, ge=1, description="VeRA: rank of the shared random projections (PEFT `r`, 256).")
    vera_dropout: float | None = Field(None, ge=0, lt=1, description="VeRA: dropout on the input.")
    vera_d_initial: float | None = Field(None, description="VeRA: initial value of the trained vector d.")
    vera_projection_prng_key: int | None = Field(None, description="VeRA: seed of the shared random projections.")
    vera_save_projection: bool | None = Field(None,
        description="VeRA: save the projections with the adapter (default true).")
    vera_target_modules: list[str] | str | None = Field(None, description="VeRA: " + _TARGETS)
    prefix_num_virtual_tokens: int | None = Field(None, ge=1,
        description="Prefix tuning: virtual tokens per layer (unset: 20).")
    prefix_projection: bool | None = Field(None, description="Prefix tuning: learn the prefix through a small MLP.")
    prefix_encoder_hidden_size: int | None = Field(None, ge=1, description="Prefix tuning: that MLP's width.")
    prompt_tuning_num_virtual_tokens: int | None = Field(None, ge=1,
        description="Prompt tuning: trained virtual tokens (unset: 20).")
    prompt_tuning_init: str | None = Field(None,
        description="Prompt tuning: `RANDOM` or `TEXT` (from `prompt_tuning_init_text`).")
    prompt_tuning_init_text: str | None = Field(None,
        description="Prompt tuning: text whose embeddings start the virtual tokens.")
