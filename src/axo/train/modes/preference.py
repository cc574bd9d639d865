"""Preference tuning (`rl: dpo | ipo | orpo | simpo | kto`) and reward models (`reward_model: true`) on TRL's
trainers, with axo's model loading, adapter, kernels, checkpoints and run files.

The rows are text (data/preference/): TRL tokenizes them when the trainer is built, as under Axolotl, so the
same strings give the same token ids. With an adapter the reference model is the base with the adapter
disabled (TRL's own PEFT path: no second copy in memory); a full fine-tune loads a reference only for the
methods that compare against one (DPO, IPO, KTO) and only when `precompute_ref_log_probs` is off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from axo.config.schema import AxoConfig
from axo.train.modes.base import (
    PreparedSplits,
    TrainerData,
    TrainerParts,
    TrainingMode,
    register_mode,
)

METHOD_NAMES = {"dpo": "DPO", "ipo": "IPO", "orpo": "ORPO", "simpo": "SimPO", "kto": "KTO", "reward": "reward model"}
REFERENCE_METHODS = frozenset({"dpo", "ipo", "kto"})  # the losses compare the policy with a frozen reference


def _trl_classes(method: str) -> tuple[type, type]:
    """(trainer, config) TRL runs `method` with — ORPO and CPO/SimPO live in `trl.experimental` in TRL 1.x."""
    if method in ("dpo", "ipo"):
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer, DPOConfig
    if method == "kto":
        from trl import KTOConfig, KTOTrainer

        return KTOTrainer, KTOConfig
    if method in ("orpo", "simpo"):
        # TRL prints an "unstable API" notice on every import of trl.experimental; axo pins the TRL it runs
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if method == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOTrainer, ORPOConfig
    if method == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        return CPOTrainer, CPOConfig
    from trl import RewardConfig, RewardTrainer

    return RewardTrainer, RewardConfig


def preference_method(cfg: AxoConfig) -> str:
    return "reward" if cfg.reward_model else str(cfg.rl)


def beta(cfg: AxoConfig) -> float | None:
    """β as Axolotl reads it: `trl.beta`, else `rl_beta`, else (ORPO) `orpo_alpha`; None leaves TRL's default."""
    if cfg.trl and cfg.trl.get("beta") is not None:
        return float(cfg.trl["beta"])
    if cfg.rl_beta is not None:
        return cfg.rl_beta
    return cfg.orpo_alpha if cfg.rl == "orpo" else None


def method_arguments(cfg: AxoConfig) -> dict[str, Any]:
    """The TRL config arguments of the method, from Axolotl's keys (only those set: TRL's defaults otherwise)."""
    method = preference_method(cfg)
    out: dict[str, Any] = {"max_length": cfg.sequence_len}
    if method != "reward" and beta(cfg) is not None:
        out["beta"] = beta(cfg)
    if method == "dpo":
        if cfg.rpo_alpha is not None:  # RPO = the DPO loss plus rpo_alpha × the chosen NLL (TRL's "sft" loss)
            out["loss_type"], out["loss_weights"] = ["sigmoid", "sft"], [1.0, cfg.rpo_alpha]
        if cfg.dpo_loss_type is not None:
            out["loss_type"] = cfg.dpo_loss_type
        if cfg.dpo_loss_weights is not None:
            out["loss_weights"] = cfg.dpo_loss_weights
        if cfg.dpo_label_smoothing:
            out["label_smoothing"] = cfg.dpo_label_smoothing
    if method == "ipo":
        out["loss_type"] = ["ipo"]
    if method in ("dpo", "ipo"):
        for key, name in (("dpo_use_weighting", "use_weighting"), ("dpo_ld_alpha", "ld_alpha")):
            if getattr(cfg, key) is not None:
                out[name] = getattr(cfg, key)
    if method in ("dpo", "ipo", "kto") and cfg.precompute_ref_log_probs is not None:
        out["precompute_ref_log_probs"] = cfg.precompute_ref_log_probs
    if method == "simpo":
        out["loss_type"] = "simpo"
        if cfg.simpo_gamma is not None:
            out["simpo_gamma"] = cfg.simpo_gamma
        if cfg.cpo_alpha is not None:
            out["cpo_alpha"] = cfg.cpo_alpha
    if method == "kto":
        # TRL's KTO pairs each completion with its neighbours' for the KL estimate: rows in a fixed order
        out["train_sampling_strategy"] = "sequential"
        out["desirable_weight"] = cfg.kto_desirable_weight or 1.0
        out["undesirable_weight"] = cfg.kto_undesirable_weight or 1.0
    if method == "reward" and cfg.center_rewards_coefficient is not None:
        out["center_rewards_coefficient"] = cfg.center_rewards_coefficient
    if method in ("orpo", "simpo"):
        # their batches hold chosen_/rejected_input_ids, not input_ids: the Trainer cannot count tokens seen
        # (it warns every step); axo's trainer counts them (train/trainer.py `seen_count`)
        out["include_num_input_tokens_seen"] = "no"
    return out


@register_mode
class PreferenceMode(TrainingMode):
    name = "preference"
    loss_kernels = False  # TRL computes the log-probs (DPO/KTO: in chunks, never the full logits)

    @classmethod
    def selects(cls, cfg: AxoConfig) -> bool:
        return bool(cfg.rl or cfg.reward_model)

    @property
    def method(self) -> str:
        return preference_method(self.cfg)

    def prepare(self, tokenizer: Any, config_dir: Path | None, *, force: bool = False) -> PreparedSplits:
        from axo.data.preference.prepare import prepare_preference

        prepared = prepare_preference(self.cfg, tokenizer, self.method, config_dir=config_dir, force=force)
        return PreparedSplits(len(prepared.train), len(prepared.eval), prepared.folder, prepared.fingerprint,
                              prepared.from_cache, prepared.meta, payload=prepared)

    def trainer_data(self, prepared: PreparedSplits, tokenizer: Any) -> TrainerData:
        import datasets

        rows = prepared.payload
        train, evaluation = rows.train, rows.eval
        if self.method == "reward":  # Axolotl's ids (no BOS/EOS added); TRL's RewardTrainer keeps given ids
            from axo.data.preference.bradley_terry import axolotl_ids

            train, evaluation = ([axolotl_ids(tokenizer, row, self.cfg.sequence_len) for row in split]
                                 for split in (train, evaluation))
        datasets.disable_progress_bars()  # TRL's tokenizing maps: axo prints its own summary
        return TrainerData(datasets.Dataset.from_list(train),
                           datasets.Dataset.from_list(evaluation) if evaluation else None)

    def show(self, console: Any, prepared: PreparedSplits, tokenizer: Any, samples: int) -> None:
        from axo.data.debug import print_rows, print_summary

        print_rows(console, prepared.payload.train[:samples])
        print_summary(console, prepared.meta, prepared.from_cache, str(prepared.folder))
        console.print(f"[bold]{METHOD_NAMES[self.method]}[/]: {prepared.train_rows} train rows, "
                      f"{prepared.eval_rows} eval rows (TRL tokenizes them when training starts)", highlight=False)

    def arguments_class(self) -> type:
        return _trl_classes(self.method)[1]

    def method_arguments(self) -> dict[str, Any]:
        return method_arguments(self.cfg)

    def needs_reference_copy(self) -> bool:
        """Whether a full fine-tune must load a second, frozen copy of the base as the reference."""
        return self.method in REFERENCE_METHODS and not self.cfg.precompute_ref_log_probs and not self.cfg.adapter

    def build_trainer(self, parts: TrainerParts) -> Any:
        from axo.train.trainer import AxoTrainerMixin

        trl_trainer, _ = _trl_classes(self.method)
        trainer_class = type(f"Axo{trl_trainer.__name__}", (AxoTrainerMixin, trl_trainer), {})
        kwargs: dict[str, Any] = {}
        if self.method in REFERENCE_METHODS:
            kwargs["ref_model"] = parts.reference
        trainer = trainer_class(model=parts.model, args=parts.arguments, train_dataset=parts.data.train,
                                eval_dataset=parts.data.eval, processing_class=parts.tokenizer,
                                callbacks=parts.callbacks, optimizers=parts.optimizers,
                                offload_activations=parts.offload_activations, **kwargs)
        peft_config = getattr(trainer.model, "peft_config", {})
        if "ref" in peft_config and "default" in peft_config and not self.cfg.lora_model_dir:
            # TRL copies an adapter it is handed (a PEFT model) into a "ref" adapter and scores the reference
            # with it; for a new adapter that copy is the base, so drop it: the reference is the base with the
            # adapter disabled, and no `ref/` adapter is saved next to the trained one
            trainer.model.delete_adapter("ref")
        return trainer

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": METHOD_NAMES[self.method]}
        arguments = method_arguments(self.cfg)
        for key in ("beta", "loss_type", "loss_weights", "simpo_gamma", "cpo_alpha", "desirable_weight",
                    "undesirable_weight", "label_smoothing", "center_rewards_coefficient"):
            if key in arguments:
                out[key] = arguments[key]
        if "beta" not in out and self.method != "reward":
            out["beta"] = 0.1  # TRL's default for every one of these methods (ORPO's λ, too)
        return out
