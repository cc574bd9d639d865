"""Meta-learning (`meta_learning:`): MAML, first-order MAML or Reptile over the adapter's weights, on tasks of
support and query rows (data/meta.py). Each micro-batch is a list of tasks; each task runs the inner loop on a
functional copy of the adapter weights and adds its share of the meta-gradient (train/meta_learning.py); the run's
own optimizer, scheduler, checkpoints, trackers and run files do the rest, and the saved result is a standard
PEFT adapter (the shared, meta-learnt weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig
from axo.train.modes.base import (
    PreparedSplits,
    TrainerData,
    TrainerParts,
    TrainingMode,
    register_mode,
)

ALGORITHM_NAMES = {"maml": "MAML", "fomaml": "first-order MAML", "reptile": "Reptile"}


@register_mode
class MetaLearningMode(TrainingMode):
    name = "meta_learning"

    @classmethod
    def selects(cls, cfg: AxoConfig) -> bool:
        return cfg.meta_learning is not None

    def prepare(self, tokenizer: Any, config_dir: Path | None, *, force: bool = False) -> PreparedSplits:
        from axo.data.meta import prepare_tasks

        tasks = prepare_tasks(self.cfg, tokenizer, config_dir, force=force)
        return PreparedSplits(len(tasks.train), len(tasks.eval), tasks.folder, tasks.fingerprint, tasks.from_cache,
                              tasks.meta, payload=tasks)

    def trainer_data(self, prepared: PreparedSplits, tokenizer: Any) -> TrainerData:
        tasks = prepared.payload
        meta = self.cfg.meta_learning
        data = TrainerData(tasks.train, tasks.eval or None)
        data.notes.append(f"meta-learning ({ALGORITHM_NAMES[meta.algorithm]}): {len(tasks.train)} tasks, "
                          f"{meta.tasks_per_step} per meta-update, {meta.inner_steps} inner steps at lr {meta.inner_lr:g}"
                          + (", support rows in context of the query rows" if meta.support_in_context else ""))
        return data

    def show(self, console: Any, prepared: PreparedSplits, tokenizer: Any, samples: int) -> None:
        from axo.data.debug import render_sample
        from axo.data.formats.base import Sample

        for number, task in enumerate(prepared.payload.train[:samples]):
            console.rule(f"task {task['task_id']}: {len(task['support'])} support, {len(task['query'])} query rows")
            for name in ("support", "query"):
                row = task[name][0]
                render_sample(console, Sample(row["input_ids"], row["labels"], 0), tokenizer, number, plain=True)
        folder = "from cache" if prepared.from_cache else "prepared now"
        console.print(f"tasks ({folder}: {prepared.folder}): {prepared.train_rows} train, {prepared.eval_rows} eval")

    def method_arguments(self) -> dict[str, Any]:
        # a batch of tasks has no input_ids for the Trainer to count; MetaTrainer counts tokens itself
        return {"include_num_input_tokens_seen": "no"}

    def blocks_fused_lora(self) -> str | None:
        if self.cfg.meta_learning.algorithm == "maml":
            return "second-order MAML differentiates through the inner steps, and the fused path's backward is not"
        return None

    def build_trainer(self, parts: TrainerParts) -> Any:
        if parts.arguments.world_size > 1:
            raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "meta_learning", "runs in one process in axo; "
                                       f"this run has {parts.arguments.world_size}.", "Train it on one GPU "
                                       "(`--num-gpus 1`, or CUDA_VISIBLE_DEVICES with one device).")])
        from axo.train.meta_learning import InnerLoop
        from axo.train.meta_trainer import MetaTrainer, TaskCollator

        meta = self.cfg.meta_learning
        return MetaTrainer(model=parts.model, args=parts.arguments,
                           data_collator=TaskCollator(parts.tokenizer, meta.algorithm == "reptile",
                                                     meta.support_in_context),
                           train_dataset=parts.data.train, eval_dataset=parts.data.eval,
                           processing_class=parts.tokenizer, callbacks=parts.callbacks, optimizers=parts.optimizers,
                           offload_activations=parts.offload_activations, algorithm=meta.algorithm,
                           loop=InnerLoop.from_config(meta))

    def describe(self) -> dict[str, Any]:
        meta = self.cfg.meta_learning
        return {"method": "meta-learning", "algorithm": ALGORITHM_NAMES[meta.algorithm], "inner_lr": meta.inner_lr,
                "inner_steps": meta.inner_steps, "tasks_per_step": meta.tasks_per_step,
                "first_order_after": meta.first_order_after, "support_in_context": meta.support_in_context}
