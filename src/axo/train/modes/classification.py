"""Sequence classification and regression (`num_labels`, `type: classification` datasets): one text or text pair
per row, one class (or score, `problem_type: regression`) per row, a classification head on the base.

The loss is computed here from the logits, not by the model: transformers' Trainer skips its division by the
gradient-accumulation steps whenever the model's `forward` takes `**kwargs` (it assumes the model divides by
`num_items_in_batch`), yet the sequence classifiers' own loss is a plain mean over the micro-batch, so the
logged loss and the gradients grew with the accumulation steps (2.40 / 4.79 / 9.59 for 1 / 2 / 4). Here each
row's loss is summed and divided by the rows of the whole accumulated batch (`num_items_in_batch`, passed by the
Trainer to a `compute_loss_func`): the same loss and gradients for any accumulation and any model class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axo.config.schema import AxoConfig
from axo.data.errors import data_error
from axo.train.modes.base import (
    PreparedSplits,
    TrainerData,
    TrainerParts,
    TrainingMode,
    register_mode,
)


def label_names(meta: dict[str, Any]) -> list[str] | None:
    """The class names of prepared data (from its meta.json), or None when the labels were ids or scores.

    Raises:
        DataError: when datasets name different classes (each numbers its names in sorted order, so the same
            id would mean different classes).
    """
    entries = [*meta.get("datasets", []), *meta.get("test_datasets", [])]
    named = [(entry["path"], entry.get("label_names")) for entry in entries]
    kinds = {tuple(names) if names else None for _, names in named}
    if len(kinds) > 1:
        (first, one), (second, other) = named[0], next(item for item in named if item[1] != named[0][1])
        raise data_error(f"names the classes {one or 'by id'}, while {second} names {other or 'them by id'}; each "
                         "dataset numbers its class names in sorted order, so they must name the same classes.",
                         origin=first, key="label", hint="Use the same set of label names (or ids) in every dataset.")
    names = kinds.pop() if kinds else None
    return list(names) if names else None


def row_loss(problem_type: str | None):
    """The Trainer's `compute_loss_func`: cross-entropy (classes) or squared error (regression) summed over the
    rows and divided by `num_items_in_batch`, the rows of the whole accumulated batch (every process's, when
    the Trainer averages across devices), or by the micro-batch's rows when it is not given (evaluation)."""

    def loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        import torch.nn.functional as F

        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        if problem_type == "regression":
            total = F.mse_loss(logits.float().view(-1), labels.float().view(-1), reduction="sum")
        else:
            total = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1), reduction="sum")
        rows = num_items_in_batch if num_items_in_batch is not None else labels.shape[0]
        if hasattr(rows, "to"):
            rows = rows.to(total.device)
        return total / rows

    return loss


@register_mode
class ClassificationMode(TrainingMode):
    name = "classification"
    loss_kernels = False  # the loss is computed here from the logits (no liger / CCE causal-LM patches)
    names: list[str] | None = None  # the class names of the prepared data (`trainer_data`)

    @classmethod
    def selects(cls, cfg: AxoConfig) -> bool:
        return cfg.num_labels is not None and not cfg.rl and not cfg.reward_model and not cfg.pretraining_dataset

    @property
    def problem_type(self) -> str:
        return self.cfg.problem_type or "single_label_classification"

    def prepare(self, tokenizer: Any, config_dir: Path | None, *, force: bool = False) -> PreparedSplits:
        from axo.data.prepare import prepare_data

        prepared = prepare_data(self.cfg, tokenizer, config_dir=config_dir, force=force)
        label_names(prepared.meta)  # datasets that number different names are refused before any model loads
        return PreparedSplits(len(prepared.train), len(prepared.eval), prepared.folder, prepared.fingerprint,
                              prepared.from_cache, prepared.meta, payload=prepared)

    def trainer_data(self, prepared: PreparedSplits, tokenizer: Any) -> TrainerData:
        from axo.train.data import load_split

        self.names = label_names(prepared.meta)  # written into the model's config by `build_trainer`
        return TrainerData(load_split(prepared.folder, "train", classification=True),
                           load_split(prepared.folder, "eval", classification=True))

    def show(self, console: Any, prepared: PreparedSplits, tokenizer: Any, samples: int) -> None:
        from rich.markup import escape

        from axo.data.debug import print_summary

        names = label_names(prepared.meta)
        for number, sample in enumerate(prepared.payload.train[:samples]):
            label = names[sample.label] if names else sample.label
            console.print(f"[bold]sample {number}[/] ({len(sample.input_ids)} tokens) label {label!r}:",
                          highlight=False)
            console.print(escape(tokenizer.decode(sample.input_ids)), soft_wrap=True, highlight=False)
        print_summary(console, prepared.meta, prepared.from_cache, str(prepared.folder))

    def build_trainer(self, parts: TrainerParts) -> Any:
        from transformers import DataCollatorWithPadding

        from axo.train.trainer import AxoTrainer

        self._name_labels(parts.model, self.names)
        cfg = self.cfg
        collate = DataCollatorWithPadding(parts.tokenizer, padding="max_length" if cfg.pad_to_sequence_len else True,
                                          max_length=cfg.sequence_len if cfg.pad_to_sequence_len else None)
        return AxoTrainer(model=parts.model, args=parts.arguments, data_collator=collate,
                          train_dataset=parts.data.train, eval_dataset=parts.data.eval,
                          processing_class=parts.tokenizer, callbacks=parts.callbacks, optimizers=parts.optimizers,
                          offload_activations=parts.offload_activations,
                          compute_loss_func=row_loss(self.problem_type))

    def _name_labels(self, model: Any, names: list[str] | None) -> None:
        """Write what the head means into the model's config (saved with the model): the problem type, and the
        class names as `id2label`/`label2id` when the data named them."""
        config = _base_config(model)
        config.problem_type = self.problem_type
        if names:
            config.id2label = dict(enumerate(names))
            config.label2id = {name: index for index, name in enumerate(names)}

    def describe(self) -> dict[str, Any]:
        return {"method": "regression" if self.problem_type == "regression" else "classification",
                "num_labels": self.cfg.num_labels}


def _base_config(model: Any) -> Any:
    """The transformers config of `model` (through a peft wrapper, whose config is the base's)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.config
