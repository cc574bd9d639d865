"""The trainer side of meta-learning (torch, transformers' Trainer): the collator that pads each task's rows into
its own batches, and the Trainer whose step is a meta-update over a micro-batch of tasks. Imported by the mode
(train/modes/meta.py) only when it builds its trainer, so importing the mode registry (as every `axo preprocess`
does) loads neither this Trainer nor torch."""

from __future__ import annotations

from typing import Any

import torch
from transformers import DataCollatorForSeq2Seq, Trainer

from axo.data.formats.base import IGNORE_INDEX
from axo.data.meta import after_context, context_ids
from axo.train.meta_learning import InnerLoop, adapted_query_loss, meta_step
from axo.train.trainer import AxoTrainerMixin


class TaskCollator:
    """A micro-batch of tasks: each task's support rows and query rows padded into a batch of their own (and,
    for Reptile, both together), plus `task_count` — one entry per task, the tensor the Trainer's evaluation
    loop reads the batch size from. With `support_in_context`, each query row is asked after its task's support
    rows (`after_context`)."""

    def __init__(self, tokenizer: Any, reptile: bool, support_in_context: bool = False):
        self.pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX,
                                          return_tensors="pt")
        self.reptile, self.support_in_context = reptile, support_in_context
        self.bos_token_id = tokenizer.bos_token_id

    def queries(self, support: list[dict[str, Any]], query: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The query rows as the run scores them: alone, or after the support rows."""
        if not self.support_in_context:
            return query
        context = context_ids(support, self.bos_token_id)
        return [after_context(row, context, self.bos_token_id) for row in query]

    def rows(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return dict(self.pad([{"input_ids": list(r["input_ids"]), "labels": list(r["labels"])} for r in rows]))

    def task(self, task: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
        query = self.queries(task["support"], task["query"])
        batches = {"support": self.rows(task["support"]), "query": self.rows(query)}
        if self.reptile:
            batches["all"] = self.rows(task["support"] + query)
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
