"""Check that the models, data and files a config names exist, before any GPU time is spent.

Missing local files are warnings, not errors: configs are often validated on a laptop and run on a GPU
box where the data lives. Hub ids cannot be checked offline and are reported as notes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from axo.config.keys import Locator
from axo.config.paths import looks_like_hub_id, resolve_local_path
from axo.config.problems import Kind, Problem, Severity
from axo.config.redact import redact
from axo.config.schema import AxoConfig
from axo.config.yaml_io import KeyPath, format_key_path, special_file_kind


def _check(value: str | None, path: KeyPath, what: str, hub_ok: bool, locate: Locator,
           config_dir: Path | None) -> Problem | None:
    if not value:
        return None
    found = resolve_local_path(value, config_dir)
    line, origin = locate(path)
    key = format_key_path(path)
    shown = redact(value)
    if found is not None:
        mode = found.stat().st_mode
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            return None
        # A named pipe would be taken for an empty folder (or block the reader); say what it is.
        return Problem(Severity.ERROR, Kind.MISSING_RESOURCE, key, f"{what} {shown!r} is {special_file_kind(mode)}, "
                       "not a file or folder.", "Point it at a regular file (or a folder of files).", line, origin)
    if "://" in value:
        return Problem(Severity.NOTE, Kind.MISSING_RESOURCE, key, f"{shown!r} is a remote location; it is not checked "
                       "before training.", line=line, origin=origin)
    places = f"{Path.cwd()}" + (f" or {config_dir}" if config_dir and config_dir.resolve() != Path.cwd().resolve() else "")
    if hub_ok and looks_like_hub_id(value):
        return Problem(Severity.NOTE, Kind.MISSING_RESOURCE, key,
                       f"{shown!r} is not a local path here (looked in {places}); it will be loaded from the "
                       f"Hugging Face Hub as a {what} id.", line=line, origin=origin)
    return Problem(Severity.WARNING, Kind.MISSING_RESOURCE, key,
                   f"{what} {shown!r} is not on this machine (looked in {places}).",
                   "Fix the path, or copy the file here before training.", line, origin)


def check_resources(cfg: AxoConfig, locate: Locator, config_dir: Path | None) -> list[Problem]:
    """A problem for each named path or model that cannot be found."""
    checks: list[tuple[str | None, KeyPath, str, bool]] = [
        (cfg.base_model, ("base_model",), "model", True),
        (cfg.base_model_config if cfg.base_model_config != cfg.base_model else None, ("base_model_config",), "model config", True),
        (cfg.tokenizer_config if cfg.tokenizer_config not in (cfg.base_model, cfg.base_model_config) else None,
         ("tokenizer_config",), "tokenizer", True),
        (cfg.lora_model_dir, ("lora_model_dir",), "adapter", True),
        (cfg.resume_from_checkpoint, ("resume_from_checkpoint",), "checkpoint", False),
        (cfg.deepspeed if isinstance(cfg.deepspeed, str) else None, ("deepspeed",), "DeepSpeed config", False),
    ]
    for section in ("datasets", "test_datasets"):
        for index, entry in enumerate(getattr(cfg, section) or []):
            checks.append((entry.path, (section, index, "path"), "dataset", True))
    problems = []
    for value, path, what, hub_ok in checks:
        problem = _check(value, path, what, hub_ok, locate, config_dir)
        if problem is not None:
            problems.append(problem)
    for key in ("output_dir", "dataset_prepared_path"):
        problem = _folder_in_the_way(key, getattr(cfg, key), locate)
        if problem is not None:
            problems.append(problem)
    return problems


def _folder_in_the_way(key: str, value: str | None, locate: Locator) -> Problem | None:
    """An error when the folder `key` names (created on use) cannot be one: the path, or a parent of it,
    is a file or another non-folder."""
    if not value:
        return None
    target = Path(value).expanduser()
    blocker = next((p for p in (target, *target.parents) if p.exists() or p.is_symlink()), None)
    if blocker is None or blocker.is_dir():
        return None
    try:
        mode = blocker.stat().st_mode
        kind = "a file" if stat.S_ISREG(mode) else special_file_kind(mode)
    except OSError:
        kind = "a broken link"
    where = f"{value!r} is {kind}" if blocker == target else f"{value!r} cannot be created: {str(blocker)!r} is {kind}"
    line, origin = locate((key,))
    return Problem(Severity.ERROR, Kind.CONFLICT, key, f"{where}, not a folder.",
                   f"Point {key} at a folder (it is created when missing), or move the file out of the way.",
                   line, origin)


def unwritable_folders(cfg: AxoConfig, keys: tuple[str, ...]) -> list[Problem]:
    """An error for each folder among `keys` (e.g. `dataset_prepared_path`) that this process cannot create
    or write into: checked on this machine before a command writes there, not by `axo validate` (configs
    are often checked on another machine)."""
    problems = []
    for key in keys:
        value = getattr(cfg, key)
        if not value:
            continue
        target = Path(value).expanduser()
        existing = next((p for p in (target, *target.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or os.access(existing, os.W_OK | os.X_OK):
            continue
        what = "is read-only" if existing == target else f"cannot be created: {existing} is read-only"
        problems.append(Problem(Severity.ERROR, Kind.CONFLICT, key, f"{value!r} {what} for this user.",
                                f"Point {key} at a folder you can write to, or fix the folder's permissions."))
    return problems
