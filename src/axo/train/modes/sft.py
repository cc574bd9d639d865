"""Supervised fine-tuning: token samples with labels, packed or padded, trained by axo's Trainer (sequence
classification, `num_labels`, is its own mode: modes/classification.py)."""

from __future__ import annotations

from math import ceil
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


@register_mode
class SupervisedMode(TrainingMode):
    name = "sft"
    plans_memory = True

    @classmethod
    def selects(cls, cfg: AxoConfig) -> bool:
        return (not cfg.rl and not cfg.reward_model and not cfg.pretraining_dataset and cfg.num_labels is None
                and cfg.meta_learning is None)

    def prepare(self, tokenizer: Any, config_dir: Path | None, *, force: bool = False) -> PreparedSplits:
        from axo.data.prepare import prepare_data

        prepared = prepare_data(self.cfg, tokenizer, config_dir=config_dir, force=force)
        return PreparedSplits(len(prepared.train), len(prepared.eval), prepared.folder, prepared.fingerprint,
                              prepared.from_cache, prepared.meta, payload=prepared)

    def trainer_data(self, prepared: PreparedSplits, tokenizer: Any) -> TrainerData:
        from axo.data.packing import PackedDataset, plan_packing
        from axo.train.data import load_split, packing_capacity

        cfg, samples = self.cfg, prepared.payload
        data = TrainerData(load_split(prepared.folder, "train"), load_split(prepared.folder, "eval"))
        if cfg.sample_packing:
            capacity = packing_capacity(cfg)
            data.packing = plan_packing(samples.train, capacity, ceil(cfg.num_epochs), cfg.seed)
            data.train = PackedDataset(samples.train, data.packing)
            if data.eval is not None and cfg.eval_sample_packing:
                data.eval = PackedDataset(samples.eval, plan_packing(samples.eval, capacity, 1, cfg.seed,
                                                                     shuffle=False))
            data.notes.append(f"packing: {len(samples.train)} samples into {data.packing.rows_per_epoch[0]} rows "
                              f"of {capacity} tokens per epoch, efficiency {data.packing.efficiency:.1%}")
        return data

    def show(self, console: Any, prepared: PreparedSplits, tokenizer: Any, samples: int) -> None:
        from axo.data.debug import print_summary, render_sample

        for number, sample in enumerate(prepared.payload.train[:samples]):
            render_sample(console, sample, tokenizer, number, plain=True)
        print_summary(console, prepared.meta, prepared.from_cache, str(prepared.folder))

    def build_trainer(self, parts: TrainerParts) -> Any:
        from axo.train.data import collator
        from axo.train.trainer import AxoTrainer

        return AxoTrainer(model=parts.model, args=parts.arguments, data_collator=collator(self.cfg, parts.tokenizer),
                          train_dataset=parts.data.train, eval_dataset=parts.data.eval,
                          processing_class=parts.tokenizer, callbacks=parts.callbacks, optimizers=parts.optimizers,
                          offload_activations=parts.offload_activations)

    def describe(self) -> dict[str, Any]:
        return {"method": "SFT"}
