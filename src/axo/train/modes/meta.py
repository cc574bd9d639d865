"""Meta-learning (`meta_learning:`): MAML, first-order MAML or Reptile over the adapter's weights, on tasks of
support and query rows (data/meta.py). Each micro-batch is a list of tasks; each task runs the inner loop on a
functional copy of the adapter weights and adds its share of the meta-gradient (train/meta_learning.py); the run's
own optimizer, scheduler, checkpoints, trackers and run files do the rest, and the saved result is a standard
PEFT adapter (the shared, meta-learnt weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig
from axo.data.formats.base import IGNORE_INDEX
from axo.train.meta_learning import InnerLoop, adapted_query_loss, meta_step
from axo.train.modes.base import (
    PreparedSplits,
    TrainerData,
    TrainerParts,
    TrainingMode,
    register_mode,
)
from axo.train.trainer import AxoTrainerMixin

ALGORITHM_NAMES = {"maml": "MAML", "fomaml": "first-order MAML", "reptile": "Reptile"}


class TaskCollator:
    """A micro-batch of tasks: each task's support rows and query rows padded into a batch of their own (and,
    for Reptile, both together), plus `task_count` — one entry per task, the tensor the Trainer's evaluation
    loop reads the batch size from."""

    def __init__(self, tokenizer: Any, reptile: bool):
        from transformers import DataCollatorForSeq2Seq

        self.pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX,
                                          return_tensors="pt")
        self.reptile = reptile

    def rows(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return dict(self.pad([{"input_ids": list(r["input_ids"]), "labels": list(r["labels"])} for r in rows]))

    def task(self, task: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
        batches = {"support": self.rows(task["support"]), "query": self.rows(task["query"])}
        if self.reptile:
            batches["all"] = self.rows(task["support"] + task["query"])
        return batches

    def __call__(self, tasks: list[dict[str, Any]]) -> dict[str, Any]:
        return {"task_count": torch.ones(len(tasks)), "tasks": [self.task(task) for task in tasks]}


class MetaTrainer(AxoTrainerMixin, Trainer):
    """transformers' Trainer whose training step is a meta-learning step over a micro-batch of tasks, and whose
    evaluation loss is the mean query loss after adapting on each eval task's support rows."""

    def __init__(self, *args: Any, algorithm: str, loop: InnerLoop, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.algorithm, self.loop = algorithm, loop

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """The micro-batches of one meta-update and how many tasks they hold (fewer than `tasks_per_step` at the
        end of an epoch), so each task's share of the update is 1/tasks whatever the window's size."""
        batches, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        return batches, sum(len(batch["tasks"]) for batch in batches)

    def training_step(self, model, inputs, num_items_in_batch=None):
        model.train()
        tasks = inputs["tasks"]
        # each task's share of the meta-update: the mean over the update's tasks
        share = 1.0 / (num_items_in_batch or len(tasks) * self.args.gradient_accumulation_steps)
        self._count(tasks)
        with self.activation_context():
            losses = [meta_step(model, task, self.algorithm, self.loop, share, self.accelerator.backward)
                      for task in tasks]
        return torch.tensor(sum(losses) * share, device=self.args.device)

    def _count(self, tasks: list[dict[str, Any]]) -> None:
        """Tokens seen (every support and query token) and trained (their answer tokens), for the run files."""
        rows = [task[name] for task in tasks for name in ("support", "query")]
        self.state.num_input_tokens_seen += int(sum(int(batch["attention_mask"].sum()) for batch in rows))
        self._trained_tokens = self._trained_tokens + sum((batch["labels"] != IGNORE_INDEX).sum() for batch in rows)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        losses = [adapted_query_loss(model, task, self.loop)[0] for task in inputs["tasks"]]
        return torch.tensor(sum(losses) / len(losses), device=self.args.device), None, None


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
                          f"{meta.tasks_per_step} per meta-update, {meta.inner_steps} inner steps at lr {meta.inner_lr:g}")
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
        meta = self.cfg.meta_learning
        return MetaTrainer(model=parts.model, args=parts.arguments,
                           data_collator=TaskCollator(parts.tokenizer, meta.algorithm == "reptile"),
                           train_dataset=parts.data.train, eval_dataset=parts.data.eval,
                           processing_class=parts.tokenizer, callbacks=parts.callbacks, optimizers=parts.optimizers,
                           offload_activations=parts.offload_activations, algorithm=meta.algorithm,
                           loop=InnerLoop.from_config(meta))

    def describe(self) -> dict[str, Any]:
        meta = self.cfg.meta_learning
        return {"method": "meta-learning", "algorithm": ALGORITHM_NAMES[meta.algorithm], "inner_lr": meta.inner_lr,
                "inner_steps": meta.inner_steps, "tasks_per_step": meta.tasks_per_step,
                "first_order_after": meta.first_order_after}
