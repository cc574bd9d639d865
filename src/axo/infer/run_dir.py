"""Find what a command needs from a run directory (or a config): the config, the adapter, the base model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from axo.config.load import load_config
from axo.config.overrides import Override
from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig

# What `axo train` saves last (peft's adapter or transformers' model, single file or sharded).
FINAL_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json",
                 "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass
class Run:
    """A trained run: its config, where its adapter (or full model) is, and where its base model is."""

    cfg: AxoConfig
    output_dir: Path
    base_model: str  # a local path when one was recorded or found, else the hub id or GGUF path as written

    @property
    def is_adapter(self) -> bool:
        return (self.output_dir / "adapter_config.json").is_file()


def _error(message: str, hint: str, key: str = "") -> ConfigError:
    return ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, key, message, hint)])


def open_run(target: str | Path, overrides: list[Override] | None = None, *, finished: bool = True,
             command: str = "inference") -> Run:
    """A run from a run directory (holding axo_config.yml) or from a config file (its output_dir).

    With `finished` (the default), the run must hold a trained result (see `require_finished`); pass False
    where the base model alone is wanted on purpose. `command` is the `axo` command the messages suggest.

    Raises:
        ConfigError: when the target is neither, its config does not validate, or (with `finished`) its
            training never finished.
    """
    target = Path(target)
    if target.is_dir():
        config_file = target / "axo_config.yml"
        if not config_file.is_file():
            raise _error(f"{target} is not an axo run directory (no axo_config.yml).",
                         "Point at the output_dir of an `axo train` run, or at its config file.")
        output_dir = target
    elif target.is_file():
        config_file = target
        output_dir = None
    else:
        raise _error(f"{target} does not exist.", "Give a run directory or a config file.")
    loaded = load_config(config_file, overrides)
    cfg = loaded.require()
    output_dir = output_dir or Path(cfg.output_dir)
    run = Run(cfg, output_dir, _base_model(cfg, output_dir, config_file.resolve().parent))
    if finished:
        require_finished(run, target, command)
    return run


def _has_final_weights(folder: Path) -> bool:
    return any((folder / name).is_file() for name in FINAL_WEIGHTS)


def run_state(output_dir: Path) -> str:
    """"finished" when the folder holds a trained result, "training" when a run started and never finished,
    "empty" when nothing was ever trained into it. Folders from axo versions before RUN_STATE count as
    finished when they hold final weights and provenance.json (written after the weights)."""
    from axo.train.outputs import RUN_STATE

    try:
        state = json.loads((output_dir / RUN_STATE).read_text()).get("state")
    except (OSError, ValueError, AttributeError):
        state = None
    if state in ("finished", "training"):
        return state
    if _has_final_weights(output_dir) and (output_dir / "provenance.json").is_file():
        return "finished"
    return "training" if (output_dir / "axo_config.yml").is_file() else "empty"


def require_finished(run: Run, target: Path, command: str) -> None:
    """Refuse a run folder whose training never finished (it would silently run the untrained base model),
    saying what the folder holds, how to finish the run, and how to use the base model on purpose.

    Raises:
        ConfigError: unless `run_state` is "finished".
    """
    folder = run.output_dir
    state = run_state(folder) if folder.is_dir() else "empty"
    if state == "finished":
        return
    config = target if target.is_file() else "CONFIG"  # the config the run was started with; not recorded
    checkpoints = sorted((p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()),
                         key=lambda p: int(p.name[11:])) if folder.is_dir() else []
    base = {"inference": f"`axo inference {target} --base-only`", "evaluate": f"`axo evaluate {target} --base-only`",
            "serve": f"`axo serve {run.base_model}`" if Path(run.base_model).is_dir() else None}.get(command)
    on_purpose = f" To use the base model without fine-tuning, on purpose: {base}." if base else ""
    if not folder.is_dir() or state == "empty":
        raise _error(f"{folder} holds no trained run: `axo train` has not written a result there.",
                     f"Train first: `axo train {config}`.{on_purpose}", "output_dir")
    held = ", ".join(sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))[:8]) or "nothing"
    if checkpoints:
        how = f"Continue it from {checkpoints[-1].name} with `axo train {config} --resume`"
    else:
        how = f"No checkpoint was saved: train again with `axo train {config}`"
    how += " (CONFIG: the config file you trained with)." if config == "CONFIG" else "."
    weights = " (the weights in it are not from a finished run)" if _has_final_weights(folder) else ""
    raise _error(f"training never finished in {folder}{weights}; it holds {held}.", how + on_purpose, "output_dir")


def _base_model(cfg: AxoConfig, output_dir: Path, config_dir: Path) -> str:
    from axo.config.paths import resolve_local_path

    found = resolve_local_path(cfg.base_model, config_dir)
    if found is not None:
        return str(found)
    provenance = output_dir / "provenance.json"
    if provenance.is_file():
        recorded = json.loads(provenance.read_text()).get("base_model_path")
        if recorded and Path(recorded).exists():
            return recorded
    return cfg.base_model
