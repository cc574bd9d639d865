"""Preference tuning (`rl:`) and reward models (`reward_model:`), under Axolotl 0.21's key names.

Each key maps to the TRL trainer argument Axolotl passes it to (train/modes/preference.py); defaults left at
None mean "TRL's default", as in Axolotl.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from axo.config.schema.base import Section

PreferenceMethod = Literal["dpo", "ipo", "orpo", "kto", "simpo"]


class PreferenceSection(Section):
    rl: PreferenceMethod | None = Field(
        None, description="Preference tuning on chosen/rejected pairs: `dpo`, `ipo`, `orpo`, `simpo`, or `kto` "
        "(desirable/undesirable completions). Runs TRL's trainer for the method with axo's model loading, adapter, "
        "kernels, checkpoints and run files.",
    )
    rl_beta: float | None = Field(
        None, gt=0, description="β: how far the policy may move from the reference (DPO/IPO/KTO/SimPO; ORPO's "
        "λ is `orpo_alpha`). TRL's default 0.1 when unset.",
    )
    trl: dict[str, Any] | None = Field(
        None, description="Axolotl's `trl:` block; axo reads its `beta` (which wins over `rl_beta`, as in "
        "Axolotl). Its online-RL keys (GRPO) are refused.",
    )
    dpo_loss_type: list[str] | None = Field(
        None, min_length=1, description="DPO losses to combine (TRL's `loss_type`: sigmoid, hinge, ipo, robust, "
        "apo_zero, sft, …); default sigmoid.",
    )
    dpo_loss_weights: list[float] | None = Field(
        None, min_length=1, description="Weights of the `dpo_loss_type` losses (same length).",
    )
    dpo_label_smoothing: float | None = Field(
        None, ge=0.0, lt=0.5, description="Conservative/robust DPO: the probability that a pair's label is wrong.",
    )
    dpo_use_weighting: bool | None = Field(None, description="WPO weighting of the DPO loss.")
    dpo_ld_alpha: float | None = Field(
        None, ge=0.0, le=1.0, description="LD-DPO: weight of the tokens a response has beyond the shorter "
        "response of its pair (1.0 = unweighted).",
    )
    dpo_padding_free: bool | None = Field(
        None, description="Padding-free DPO batches; TRL 1.15 has it disabled, so `true` is refused.",
    )
    dpo_use_liger_kernel: bool | None = Field(
        None, description="Liger's fused linear DPO loss (CUDA + liger-kernel): the logits are never "
        "materialised.",
    )
    precompute_ref_log_probs: bool | None = Field(
        None, description="Compute the reference log-probs of the whole dataset once before training "
        "(DPO/KTO), so no reference forward pass runs per step.",
    )
    rpo_alpha: float | None = Field(
        None, ge=0.0, description="RPO: add this times the chosen responses' NLL to the DPO loss (TRL's "
        "`loss_type: [sigmoid, sft]` with weights [1, rpo_alpha]; Axolotl 0.21 refuses the key).",
    )
    orpo_alpha: float | None = Field(
        None, gt=0, description="ORPO's λ, the weight of the odds-ratio term (TRL's `beta` for ORPO); default 0.1.",
    )
    simpo_gamma: float | None = Field(None, ge=0, description="SimPO's target reward margin γ; TRL's default 0.5.")
    cpo_alpha: float | None = Field(
        None, ge=0, description="Weight of the NLL (behaviour cloning) term in CPO/SimPO; SimPO default 0.",
    )
    kto_desirable_weight: float | None = Field(None, gt=0, description="KTO: weight of desirable completions.")
    kto_undesirable_weight: float | None = Field(None, gt=0, description="KTO: weight of undesirable completions.")
    max_prompt_len: int | None = Field(
        None, ge=1, description="Longest prompt (tokens) in preference rows; longer prompts are dropped like "
        "over-long rows. Default: no limit beyond `sequence_len`.",
    )
    remove_unused_columns: bool | None = Field(
        None, description="Axolotl's switch for dropping dataset columns the model's forward does not take; axo "
        "always keeps the columns its collators and TRL's trainers read, as Axolotl's `false`.",
    )
    reward_model: bool | None = Field(
        None, description="Train a reward model (a sequence-scoring head, TRL's RewardTrainer) on chosen/"
        "rejected pairs, e.g. `type: bradley_terry.chat_template`.",
    )
    center_rewards_coefficient: float | None = Field(
        None, ge=0, description="Reward models: pull the mean reward towards zero (0.01 recommended).",
    )
