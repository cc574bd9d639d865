"""Experiment trackers (W&B, TensorBoard, MLflow) through transformers' own integrations.

transformers' callbacks read their settings from environment variables; we set those from the config for
the duration of the run and restore the previous environment afterwards. API keys are never taken from
the config file: W&B and MLflow read theirs from the environment (WANDB_API_KEY, MLFLOW_TRACKING_TOKEN),
and nothing axo writes contains them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.schema import AxoConfig

_PACKAGES = {"wandb": ("wandb", "wandb"), "tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def report_to(cfg: AxoConfig) -> list[str]:
    """The trackers the config turns on (transformers' `report_to` names)."""
    targets = []
    if (cfg.wandb_project or cfg.wandb_mode in ("online", "offline")) and cfg.wandb_mode != "disabled":
        targets.append("wandb")
    if cfg.use_tensorboard:
        targets.append("tensorboard")
    if cfg.use_mlflow:
        targets.append("mlflow")
    for target in targets:
        module, extra = _PACKAGES[target]
        if importlib.util.find_spec(module) is None:
            raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, target,
                                       f"logging to {target} needs the `{module}` package.",
                                       f"pip install 'axo[{extra}]'")])
    if "wandb" in targets and cfg.wandb_mode != "offline" and not _wandb_logged_in():
        # Found now, not after the model has loaded: wandb would stop the run at its first log.
        raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "wandb_project",
                                   "W&B logging is on, but no W&B API key is set on this machine.",
                                   "Set WANDB_API_KEY (or run `wandb login`), or set `wandb_mode: offline` "
                                   "(sync later with `wandb sync`).")])
    return targets


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def tracker_environment(cfg: AxoConfig) -> dict[str, str]:
    """The environment variables transformers' tracker callbacks read, from the config."""
    values = {
        "WANDB_PROJECT": cfg.wandb_project,
        "WANDB_ENTITY": cfg.wandb_entity,
        "WANDB_MODE": cfg.wandb_mode,
        "WANDB_RUN_ID": cfg.wandb_run_id,
        "WANDB_WATCH": cfg.wandb_watch,
        "WANDB_LOG_MODEL": cfg.wandb_log_model,
        "WANDB_NAME": cfg.wandb_name or cfg.wandb_run_name,
        "MLFLOW_TRACKING_URI": cfg.mlflow_tracking_uri,
        "MLFLOW_EXPERIMENT_NAME": cfg.mlflow_experiment_name,
        "MLFLOW_RUN_NAME": cfg.mlflow_run_name,
    }
    uri = cfg.mlflow_tracking_uri or ""
    if uri.startswith("file:") or (uri and "://" not in uri and ":" not in uri.split("/")[0]):
        # MLflow 3 refuses file stores unless asked; naming a file URI in the config is that request.
        values["MLFLOW_ALLOW_FILE_STORE"] = "true"
    if "wandb" in report_to(cfg) and not os.environ.get("WANDB_DIR"):
        values["WANDB_DIR"] = str(Path(cfg.output_dir))  # keep W&B's files with the run, not in the cwd
    return {key: str(value) for key, value in values.items() if value is not None}


@contextmanager
def tracker_env(cfg: AxoConfig) -> Iterator[None]:
    """Set the trackers' environment for the duration of a run, then restore it."""
    wanted = tracker_environment(cfg)
    previous = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        if "wandb" in report_to(cfg):
            import wandb

            wandb.finish()
            wandb.teardown()  # wandb keeps process-wide settings; a second run in this process must re-read them
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
