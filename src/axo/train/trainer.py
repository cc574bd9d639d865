"""axo's Trainer behaviour, as a mixin over transformers' Trainer or any TRL trainer built on it: an exact count
of trained tokens, atomic checkpoints (with the state of callbacks that keep their own: `CheckpointState`),
activation offloading. `AxoTrainer` is the SFT/classification trainer; the preference and reward modes mix the
same class into TRL's trainers (train/modes/)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

from transformers import Trainer

from axo.data.formats.base import IGNORE_INDEX
from axo.storage import write_failure
from axo.train import checkpoints
from axo.train.guards import fault_during_save


class AxoTrainerMixin:
    """Counts trained tokens in `compute_loss`, i.e. for exactly the batches the optimizer sees (counting
    in the collator would run ahead: accelerate's data loader prefetches one batch), and writes every
    checkpoint through `train/checkpoints.py` (staged, synced, renamed, rotated, space-checked). Listed before
    the Trainer class in the bases, so its methods wrap the trainer's."""

    def __init__(self, *args: Any, offload_activations: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.offload_activations = offload_activations  # `activation_offloading`: see `training_step`
        self._trained_tokens: Any = 0  # a device tensor once training starts: counting must not sync each step
        self._staging_root: Path | None = None
        self.last_checkpoint: Path | None = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            count = trained_count(inputs)
            if count is not None:
                self._trained_tokens = self._trained_tokens + count
        with self.activation_context() if model.training else contextlib.nullcontext():
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.args.include_num_input_tokens_seen == "no" and "input_ids" not in inputs:
            count = seen_count(inputs)  # ORPO/SimPO batches: the Trainer cannot count them (no input_ids)
            if count is not None:
                self.state.num_input_tokens_seen += int(self.accelerator.gather(count).sum())
        return super().training_step(model, inputs, num_items_in_batch)

    def activation_context(self) -> Any:
        """With `activation_offloading`, the tensors autograd saves in the forward pass wait in host memory
        (train/offload.py); used around the forward pass only, so recomputation in backward stays on the GPU."""
        if not self.offload_activations:
            return contextlib.nullcontext()
        from axo.train.offload import HostOffload, OffloadState

        if getattr(self, "_offload_state", None) is None:
            self._offload_state = OffloadState(self.model)
        return HostOffload(self.model, self._offload_state)

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
        staged = staging / f"{checkpoints.PREFIX}{step}"
        self._staging_root = staging
        try:
            with contextlib.ExitStack() as parts:
                for part in self._checkpoint_states():
                    parts.enter_context(part.saving(staged if self.args.should_save else None))
                super()._save_checkpoint(model, trial)
            fault_during_save(step)
        except Exception as exc:  # noqa: BLE001 - the staged copy goes whatever failed; non-disk errors re-raised
            self._drop_staged(staged, exc, f"saving checkpoint {step}")
        finally:
            self._staging_root = None
        # With several processes (DeepSpeed/FSDP shards), every one must have written its part before the
        # checkpoint is published, and none may start the next save before the staging folder is gone.
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            try:
                final = checkpoints.publish(staged, output_dir)  # fsync can be where a full disk shows
            except OSError as exc:
                self._drop_staged(staged, exc, f"saving checkpoint {step}")
            shutil.rmtree(staging, ignore_errors=True)
            checkpoints.rotate(output_dir, self.args.save_total_limit, newest=final)
        self.accelerator.wait_for_everyone()
        self.last_checkpoint = output_dir / f"{checkpoints.PREFIX}{step}"

    def _checkpoint_states(self) -> list[checkpoints.CheckpointState]:
        return [cb for cb in self.callback_handler.callbacks if isinstance(cb, checkpoints.CheckpointState)]

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        for part in self._checkpoint_states():
            part.restore(Path(resume_from_checkpoint))

    def _drop_staged(self, staged: Path, exc: Exception, what: str) -> None:
        """Remove a checkpoint that failed half-way at once (not at the next start), then raise: a
        `CheckpointError` when the disk filled up (torch's, safetensors' or Python's way of saying so), else
        `exc` itself, a bug to be seen."""
        shutil.rmtree(staged, ignore_errors=True)
        if staged.parent.is_dir() and not any(staged.parent.iterdir()):
            staged.parent.rmdir()
        reason = write_failure(exc)
        if reason is None:
            raise exc
        raise checkpoints.write_error(Path(self.args.output_dir), what, reason) from None

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """transformers' save; for the final save (not a checkpoint's, which is staged) a full disk is a
        `CheckpointError` and the files this save created or rewrote are removed, so no half-written weights
        file remains in the run folder."""
        if _internal_call:
            return super().save_model(output_dir, _internal_call)
        target = Path(output_dir or self.args.output_dir)
        before = _stamps(target)
        try:
            return super().save_model(output_dir, _internal_call)
        except Exception as exc:  # only a full disk becomes an error; anything else is re-raised as it is
            reason = write_failure(exc)
            if reason is None:
                raise
            changed = [path for path, stamp in _stamps(target).items() if before.get(path) != stamp]
            for path in changed:
                path.unlink(missing_ok=True)
            raise checkpoints.write_error(target, "saving the trained model", reason) from None


class AxoTrainer(AxoTrainerMixin, Trainer):
    """transformers' Trainer with axo's behaviour: the SFT and classification trainer."""


def trained_count(inputs: dict[str, Any]) -> Any:
    """The tokens of a batch that carry loss (a device tensor, or None when the batch says nothing): label
    tokens for SFT; one per row for classification; completion tokens for DPO/IPO/ORPO/SimPO/KTO (TRL's
    `completion_mask`, or its `*_labels`); one per scored sequence for reward models."""
    labels = inputs.get("labels")
    if labels is not None:
        return (labels != IGNORE_INDEX).sum() if labels.dim() > 1 else labels.numel()
    if "completion_mask" in inputs:
        return inputs["completion_mask"].sum()
    if "chosen_labels" in inputs:
        return (inputs["chosen_labels"] != IGNORE_INDEX).sum() + (inputs["rejected_labels"] != IGNORE_INDEX).sum()
    if "completion_labels" in inputs:
        return (inputs["completion_labels"] != IGNORE_INDEX).sum()
    if "input_ids" in inputs:  # a reward model's batch: chosen and rejected sequences, each scored once
        return inputs["input_ids"].shape[0]
    return None


def seen_count(inputs: dict[str, Any]) -> Any:
    """The non-padding tokens of a batch without `input_ids` (TRL's ORPO/CPO batches: prompt+chosen and
    prompt+rejected sequences), as a device tensor; None when there is no attention mask to count."""
    masks = [inputs[key] for key in ("chosen_attention_mask", "rejected_attention_mask") if key in inputs]
    if not masks:
        return None
    return sum(mask.sum() for mask in masks).reshape(1)


def _stamps(folder: Path) -> dict[Path, tuple[int, int, int]]:
    """The files directly in `folder`, each with what changes when it is written (mtime, size, inode)."""
    if not folder.is_dir():
        return {}
    return {p: (s.st_mtime_ns, s.st_size, s.st_ino) for p in folder.iterdir() if p.is_file() and (s := p.stat())}
