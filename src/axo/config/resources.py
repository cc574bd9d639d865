"""Check that the models, data and files a config names exist, before any GPU time is spent.

Missing local files are warnings, not errors: configs are often validated on a laptop and run on a GPU
box where the data lives. Hub ids cannot be checked offline and are reported as notes.
"""

from __future__ import annotations

from pathlib import Path

from axo.config.keys import Locator
from axo.config.paths import looks_like_hub_id, resolve_local_path
from axo.config.problems import Kind, Problem, Severity
from axo.config.redact import redact
from axo.config.schema import AxoConfig
from axo.config.yaml_io import KeyPath, format_key_path


def _check(value: str | None, path: KeyPath, what: str, hub_ok: bool, locate: Locator,
           config_dir: Path | None) -> Problem | None:
    if not value:
        return None
    if resolve_local_path(value, config_dir) is not None:
        return None
    line, origin = locate(path)
    key = format_key_path(path)
    shown = redact(value)
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
    return problems
