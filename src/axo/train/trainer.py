"""axo's Trainer: transformers' own, plus an exact count of the tokens that carried loss."""

from __future__ import annotations

from typing import Any

from transformers import Trainer

from axo.data.formats.base import IGNORE_INDEX


class AxoTrainer(Trainer):
    """Counts trained tokens in `compute_loss`, i.e. for exactly the batches the optimizer sees.

    Counting in the collator would run ahead: accelerate's data loader prefetches one batch to know
    when an epoch ends.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.trained_tokens = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.get("labels")
        if model.training and labels is not None:
            # Token labels: positions with loss. Classification: one label per row.
            self.trained_tokens += int((labels != IGNORE_INDEX).sum()) if labels.dim() > 1 else int(labels.numel())
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
