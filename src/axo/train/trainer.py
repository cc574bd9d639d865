"""axo's Trainer: transformers' own, plus an exact count of trained tokens and atomic checkpoints."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

from transformers import Trainer

from axo.config.problems import Kind, Problem, Severity
from axo.data.formats.base import IGNORE_INDEX
from axo.train import checkpoints
from axo.train.guards import fault_during_save


class AxoTrainer(Trainer):
    """Counts trained tokens in `compute_loss`, i.e. for exactly the batches the optimizer sees (counting
    in the collator would run ahead: accelerate's data loader prefetches one batch), and writes every
    checkpoint through `train/checkpoints.py` (staged, synced, renamed, rotated, space-checked)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._trained_tokens: Any = 0  # a device tensor once training starts: counting must not sync each step
        self._staging_root: Path | None = None
        self.last_checkpoint: Path | None = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.get("labels")
        if model.training and labels is not None:
            # Token labels: positions with loss. Classification: one label per row.
            count = (labels != IGNORE_INDEX).sum() if labels.dim() > 1 else labels.numel()
            self._trained_tokens = self._trained_tokens + count
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    @property
    def trained_tokens(self) -> int:
        """Label tokens (rows, for classification) trained on so far by all processes; reading it waits for
        the GPU, and with several processes it is a collective: every process must read it together."""
        if self.args.world_size == 1:
            return int(self._trained_tokens)
        import torch

        count = torch.as_tensor(self._trained_tokens, device=self.args.device, dtype=torch.int64)
        return int(self.accelerator.reduce(count, reduction="sum"))

    def _get_output_dir(self, trial):
        # While a checkpoint is being written, transformers' save code writes into the staging folder.
        if self._staging_root is not None:
            return str(self._staging_root)
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        output_dir = Path(self.args.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        checkpoints.check_free_space(output_dir, checkpoints.expected_checkpoint_size(
            output_dir, self.model, deepspeed=self.is_deepspeed_enabled))
        staging = output_dir / checkpoints.STAGING
        staging.mkdir(exist_ok=True)
        step = self.state.global_step
        self._staging_root = staging
        try:
            super()._save_checkpoint(model, trial)
            fault_during_save(step)
        except OSError as exc:
            shutil.rmtree(staging / f"{checkpoints.PREFIX}{step}", ignore_errors=True)
            if exc.errno == errno.ENOSPC:
                raise checkpoints.CheckpointError([Problem(
                    Severity.ERROR, Kind.MISSING_RESOURCE, "output_dir",
                    f"the disk filled up while saving checkpoint {step}; the half-written copy was removed and "
                    f"the last good checkpoint ({checkpoints.latest_checkpoint(output_dir)}) is intact.",
                    "Free space, lower save_total_limit, or set save_only_model: true.")]) from None
            raise
        finally:
            self._staging_root = None
        # With several processes (DeepSpeed/FSDP shards), every one must have written its part before the
        # checkpoint is published, and none may start the next save before the staging folder is gone.
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            checkpoints.publish(staging / f"{checkpoints.PREFIX}{step}", output_dir)
            shutil.rmtree(staging, ignore_errors=True)
            checkpoints.rotate(output_dir, self.args.save_total_limit)
        self.accelerator.wait_for_everyone()
        self.last_checkpoint = output_dir / f"{checkpoints.PREFIX}{step}"
