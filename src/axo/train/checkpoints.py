"""Checkpoints that are never corrupt: staged, synced, renamed; found again after any crash.

A checkpoint is written under `output_dir/.staging/checkpoint-N`, every file fsynced, then renamed to
`output_dir/checkpoint-N` (one atomic rename on the same file system), so a `checkpoint-N` folder is
always complete. A staging folder left by a kill is removed, with a message, at the next start. Rotation
keeps `save_total_limit` checkpoints and never deletes the newest. Free space is checked before saving.

A published checkpoint can still be damaged later (a file truncated by a copy, a shard deleted by hand), so
resuming verifies before it trusts one (`problems`): every file it needs is there, every safetensors header
parses and matches the file's length, the shards of an index are all present, trainer_state.json is JSON with
a global_step, and the optimizer/scheduler/RNG files (zip archives) are whole. Damaged checkpoints are skipped,
with the reason, in favour of the newest one that verifies; nothing is deleted.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.data.cache import fsync as _fsync
from axo.storage import free_space, json_problem, safetensors_names, safetensors_problem, torch_file_problem

STAGING = ".staging"
PREFIX = "checkpoint-"
_CHECKPOINT = re.compile(rf"^{PREFIX}(\d+)$")
_WEIGHTS = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
            "adapter_model.bin")
_PICKLED = (".pt", ".pth", ".bin")  # torch.save archives


class CheckpointState:
    """A part of a run's state that transformers' checkpoints do not hold (AdaLoRA's rank allocator). A
    TrainerCallback deriving from this adds its files to each checkpoint while it is staged (so they are
    published, or dropped, with it) and reads them back when the run resumes, after the Trainer has loaded the
    weights (`AxoTrainerMixin`)."""

    def saving(self, folder: Path | None) -> AbstractContextManager:
        """Entered around the Trainer's save of a checkpoint into `folder` (None on processes that do not
        write); on a clean exit the part's files are in `folder`."""
        return nullcontext()

    def restore(self, folder: Path) -> None:
        """Read the part back from checkpoint `folder`."""


class CheckpointError(ConfigError):
    """A checkpoint cannot be written or read (disk full, nothing to resume from)."""


def _error(key: str, message: str, hint: str) -> CheckpointError:
    return CheckpointError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, key, message, hint)])


def step_of(folder: Path) -> int | None:
    match = _CHECKPOINT.match(folder.name)
    return int(match.group(1)) if match else None


def is_valid(folder: Path) -> bool:
    """A folder shaped like a complete checkpoint: trainer state and weights present (cheap; `problems`
    verifies the files before a resume trusts them)."""
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
    """Remove what a killed run left in the staging folder (half-written checkpoints, checkpoints being
    deleted by rotation); returns what was removed. Published `checkpoint-N` folders are never deleted
    here: one that is incomplete was damaged after publishing, and resume skips it with the reason."""
    removed = []
    staging = output_dir / STAGING
    if staging.is_dir():
        for leftover in staging.iterdir():
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
            removed.append(leftover)
        staging.rmdir()
    return removed


def _weight_problems(folder: Path) -> list[str]:
    if not any((folder / name).is_file() for name in _WEIGHTS):
        return ["no weights are in it (adapter_model.safetensors or model.safetensors is missing)"]
    found = [problem for file in sorted(folder.glob("*.safetensors")) if (problem := safetensors_problem(file))]
    for index in sorted(folder.glob("*.safetensors.index.json")):
        problem = json_problem(index)
        weight_map = json.loads(index.read_text()).get("weight_map") if problem is None else None
        if not isinstance(weight_map, dict):
            found.append(problem or f"{index.name} has no weight_map")
            continue
        shards: dict[str, set[str]] = {}
        for name, shard in weight_map.items():
            shards.setdefault(str(shard), set()).add(name)
        for shard, names in sorted(shards.items()):
            if not (folder / shard).is_file():
                found.append(f"{shard}, listed in {index.name}, is missing")
            elif safetensors_problem(folder / shard) is None:  # a damaged shard is reported above
                absent = names - safetensors_names(folder / shard)
                if absent:
                    found.append(f"{shard} lacks {len(absent)} tensor(s) {index.name} places there (e.g. {min(absent)})")
    return found


def _state_problems(folder: Path, names: set[str]) -> list[str]:
    """Optimizer, scheduler and RNG state, in the layout of the engine that wrote it."""
    if "latest" in names:  # DeepSpeed keeps its state in the folder that `latest` names
        tag = (folder / "latest").read_text().strip() if (folder / "latest").is_file() else ""
        inner = folder / tag if tag else None
        if inner is None or not inner.is_dir() or not any(inner.iterdir()):
            return [f"DeepSpeed's state folder {tag or '(named by latest)'} is missing or empty"]
        return [problem for file in sorted(inner.glob("*.pt")) if (problem := torch_file_problem(file))]
    fsdp = any(name.startswith("pytorch_model_fsdp") for name in names)
    optimizer = any(name.startswith("optimizer") for name in names) if fsdp else "optimizer.pt" in names
    scheduler, rng = "scheduler.pt" in names, any(name.startswith("rng_state") for name in names)
    if not (optimizer or scheduler or rng):
        return [("it holds no optimizer, scheduler or RNG state (saved with save_only_model: true? Then set "
                 "save_only_model: true here too to resume the weights alone)")]
    missing = {"the optimizer state (optimizer.pt)": optimizer, "scheduler.pt": scheduler,
               "the RNG state (rng_state.pth)": rng}
    return [f"{name} is missing" for name, present in missing.items() if not present]


def problems(folder: Path, model_only: bool = False) -> list[str]:
    """Why checkpoint `folder` cannot be resumed from, one phrase each; empty when it verifies. Reads headers
    and small JSON files, never the tensors. `model_only`: the run saves no optimizer state (save_only_model)."""
    if not folder.is_dir():
        return ["it does not exist" if not folder.exists() else "it is not a folder"]
    names = {path.name for path in folder.iterdir()}
    found = []
    state = json_problem(folder / "trainer_state.json")
    if state is None:
        content = json.loads((folder / "trainer_state.json").read_text())
        if not isinstance(content, dict) or not isinstance(content.get("global_step"), int):
            state = "trainer_state.json has no global_step"
    found += [state] if state else []
    found += _weight_problems(folder)
    others = sorted(n for n in names if n.endswith(".json") and n != "trainer_state.json" and ".index." not in n)
    found += [problem for name in others if (problem := json_problem(folder / name))]
    found += [problem for name in sorted(names) if name.endswith(_PICKLED) and (problem := torch_file_problem(folder / name))]
    if not model_only:
        found += _state_problems(folder, names)
    return found


def _folders(output_dir: Path) -> list[Path]:
    """Every `checkpoint-N` folder in `output_dir`, complete or not, oldest first."""
    if not output_dir.is_dir():
        return []
    return sorted((p for p in output_dir.iterdir() if p.is_dir() and step_of(p) is not None), key=lambda p: step_of(p) or 0)


def _newest_verified(output_dir: Path, model_only: bool) -> tuple[Path | None, list[tuple[Path, list[str]]]]:
    """The newest checkpoint folder in `output_dir` that verifies, and the newer ones that did not, with why."""
    checked = []
    for folder in reversed(_folders(output_dir)):
        found = problems(folder, model_only)
        if not found:
            return folder, checked
        checked.append((folder, found))
    return None, checked


def resume_point(output_dir: Path, resume_from: str | None, auto: bool, *, model_only: bool = False,
                 say: Callable[[str], None] = print) -> Path | None:
    """The checkpoint to resume from: the one named, or when `auto` the newest in `output_dir` that verifies
    (`problems`), saying through `say` which newer ones were skipped and why; None when there is none to look
    for (not `auto`, or no checkpoint folder at all).

    Raises:
        CheckpointError: when the named checkpoint does not verify (naming the newest that does), or `auto`
            finds checkpoints and none of them verifies.
    """
    if resume_from:
        folder = Path(resume_from)
        found = problems(folder, model_only)
        if found:
            chosen, _ = _newest_verified(output_dir, model_only)
            alternative = (f"Use resume_from_checkpoint: {chosen} (the newest checkpoint that verifies), or restore "
                           "the files." if chosen else f"No checkpoint in {output_dir} verifies; remove "
                           "resume_from_checkpoint to start from the beginning.")
            raise _error("resume_from_checkpoint", f"{folder} is not a complete checkpoint: {'; '.join(found)}.",
                         alternative)
        return folder
    if not auto:
        return None
    chosen, skipped = _newest_verified(output_dir, model_only)
    if chosen is None and skipped:
        listed = " ".join(f"{folder.name}: {'; '.join(found)}." for folder, found in skipped)
        raise _error("output_dir", f"no checkpoint in {output_dir} can be resumed from. {listed}",
                     "Restore the damaged files, or move these checkpoints away and train without --resume to "
                     "start from the beginning.")
    for folder, found in skipped:
        say(f"skipping {folder.name}, damaged after it was saved: {'; '.join(found)}")
    return chosen


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def check_free_space(output_dir: Path, expected: int) -> None:
    """Refuse to start a save that cannot fit, so the last good checkpoint stays the last thing written."""
    free = shutil.disk_usage(output_dir).free
    if free < expected * 1.1:
        raise _error("output_dir", f"not enough disk space for a checkpoint: {free / 2**30:.2f} GiB free in "
                     f"{output_dir}, about {expected / 2**30:.2f} GiB needed. The last good checkpoint is kept.",
                     "Free space, lower save_total_limit, or set save_only_model: true (no optimizer state).")


def write_error(output_dir: Path, what: str, reason: str) -> CheckpointError:
    """The error for a save that failed because the disk filled up (see `axo.storage.write_failure`), once its
    half-written files are gone: what failed and why, the free space, what is intact and how to go on."""
    last = latest_checkpoint(output_dir)
    kept = f"the last good checkpoint ({last}) is intact" if last else "no earlier checkpoint was saved"
    return _error("output_dir", f"{what} in {output_dir} failed: {reason} ({free_space(output_dir)}). The "
                  f"half-written files were removed; {kept}.",
                  "Free space on that disk, lower save_total_limit (fewer checkpoints kept) or set save_only_model: "
                  "true (no optimizer state), then continue with `axo train CONFIG --resume`.")


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


def rotate(output_dir: Path, limit: int | None, newest: Path | None = None) -> Rotation:
    """Keep the newest `limit` complete checkpoints (never fewer than one, never `newest`, the one just
    written). Checkpoints of later steps than `newest` were left by the run this one resumed before (skipped
    as damaged, or passed over by an explicit resume_from_checkpoint): they go first. A doomed folder is moved
    into the staging folder before it is deleted, so a kill midway leaves nothing that looks like a checkpoint."""
    checkpoints = valid_checkpoints(output_dir)
    if newest is not None and step_of(newest) is not None:
        step = step_of(newest) or 0
        checkpoints = [p for p in checkpoints if (step_of(p) or 0) > step] + \
            [p for p in checkpoints if (step_of(p) or 0) <= step]
    if not limit or len(checkpoints) <= limit:
        return Rotation(checkpoints, [])
    keep = max(limit, 1)
    doomed, kept = checkpoints[:-keep], checkpoints[-keep:]
    staging = output_dir / STAGING
    for folder in doomed:
        staging.mkdir(exist_ok=True)
        moved = staging / f"deleting-{folder.name}"
        shutil.rmtree(moved, ignore_errors=True)
        folder.rename(moved)
        shutil.rmtree(moved, ignore_errors=True)
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
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
