"""Checkpoints that are never corrupt: staged, synced, renamed; found again after any crash.

A checkpoint is written under `output_dir/.staging/checkpoint-N`, every file fsynced, then renamed to
`output_dir/checkpoint-N` (one atomic rename on the same file system), so a `checkpoint-N` folder is
always complete. A staging folder left by a kill is removed, with a message, at the next start. Rotation
keeps `save_total_limit` checkpoints and never deletes the newest. Free space is checked before saving.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.data.cache import fsync as _fsync

STAGING = ".staging"
PREFIX = "checkpoint-"
_CHECKPOINT = re.compile(rf"^{PREFIX}(\d+)$")
_WEIGHTS = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
            "adapter_model.bin")


class CheckpointError(ConfigError):
    """A checkpoint cannot be written or read (disk full, nothing to resume from)."""


def _error(key: str, message: str, hint: str) -> CheckpointError:
    return CheckpointError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, key, message, hint)])


def step_of(folder: Path) -> int | None:
    match = _CHECKPOINT.match(folder.name)
    return int(match.group(1)) if match else None


def is_valid(folder: Path) -> bool:
    """A checkpoint the Trainer can resume from: trainer state and weights present."""
    return (folder.is_dir() and step_of(folder) is not None and (folder / "trainer_state.json").is_file()
            and any((folder / name).is_file() for name in _WEIGHTS))


def valid_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in `output_dir`, oldest first."""
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.iterdir() if is_valid(p)]
    return sorted(found, key=lambda p: step_of(p) or 0)


def latest_checkpoint(output_dir: Path) -> Path | None:
    checkpoints = valid_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def clean_partial(output_dir: Path) -> list[Path]:
    """Remove checkpoints a killed run left half-written; returns what was removed."""
    removed = []
    staging = output_dir / STAGING
    if staging.is_dir():
        for leftover in staging.iterdir():
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
            removed.append(leftover)
        staging.rmdir()
    if output_dir.is_dir():  # checkpoint-N folders without their files (written by tools that do not stage)
        for folder in output_dir.iterdir():
            if step_of(folder) is not None and folder.is_dir() and not is_valid(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def resume_point(output_dir: Path, resume_from: str | None, auto: bool) -> Path | None:
    """The checkpoint to resume from: the one named, the newest valid one when `auto`, or None.

    Raises:
        CheckpointError: when the named path is not a complete checkpoint.
    """
    if resume_from:
        folder = Path(resume_from)
        if not is_valid(folder):
            newest = latest_checkpoint(output_dir)
            raise _error("resume_from_checkpoint", f"{folder} is not a complete checkpoint (it needs "
                         "trainer_state.json and the weights).",
                         f"Use {newest}" if newest else "Remove resume_from_checkpoint to start from the beginning.")
        return folder
    return latest_checkpoint(output_dir) if auto else None


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def check_free_space(output_dir: Path, expected: int) -> None:
    """Refuse to start a save that cannot fit, so the last good checkpoint stays the last thing written."""
    free = shutil.disk_usage(output_dir).free
    if free < expected * 1.1:
        raise _error("output_dir", f"not enough disk space for a checkpoint: {free / 2**30:.2f} GiB free in "
                     f"{output_dir}, about {expected / 2**30:.2f} GiB needed. The last good checkpoint is kept.",
                     "Free space, lower save_total_limit, or set save_only_model: true (no optimizer state).")


def fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        _fsync(path)
    _fsync(folder)


def publish(staged: Path, output_dir: Path) -> Path:
    """Make a fully written staged checkpoint visible under its final name."""
    fsync_tree(staged)
    final = output_dir / staged.name
    if final.exists():  # the same step saved again (e.g. the final save after a signal-triggered one)
        shutil.rmtree(final)
    staged.rename(final)
    _fsync(output_dir)
    return final


@dataclass
class Rotation:
    kept: list[Path]
    deleted: list[Path]


def rotate(output_dir: Path, limit: int | None) -> Rotation:
    """Keep the newest `limit` complete checkpoints (never fewer than one)."""
    checkpoints = valid_checkpoints(output_dir)
    if not limit or len(checkpoints) <= limit:
        return Rotation(checkpoints, [])
    keep = max(limit, 1)
    doomed, kept = checkpoints[:-keep], checkpoints[-keep:]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return Rotation(kept, doomed)


def expected_checkpoint_size(output_dir: Path, model, deepspeed: bool = False) -> int:
    """Bytes the next checkpoint will take: the last one's size, or weights + optimizer state estimated
    (`deepspeed`: the optimizer state also holds fp32 master weights)."""
    last = latest_checkpoint(output_dir)
    if last is not None:
        return _size(last)
    # ZeRO-3 leaves each rank an empty slice of every parameter; `ds_numel` is the full count.
    sizes = [(getattr(p, "ds_numel", p.numel()), p.element_size()) for p in model.parameters() if p.requires_grad]
    count = sum(n for n, _ in sizes)
    weights = sum(n * size for n, size in sizes)
    # Adam's two moments; DeepSpeed also keeps an fp32 master copy of the weights in its checkpoint.
    optimizer = 12 * count if deepspeed else 2 * weights
    return weights + optimizer + 16 * 2**20  # + trainer and RNG state
