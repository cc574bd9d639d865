"""Find what a command needs from a run directory (or a config): the config, the adapter, the base model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from axo.config.load import load_config
from axo.config.overrides import Override
from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig


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


def open_run(target: str | Path, overrides: list[Override] | None = None) -> Run:
    """A run from a run directory (holding axo_config.yml) or from a config file (its output_dir).

    Raises:
        ConfigError: when the target is neither, or its config does not validate.
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
    return Run(cfg, output_dir, _base_model(cfg, output_dir, config_file.resolve().parent))


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
