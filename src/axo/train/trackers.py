"""Experiment trackers (W&B, TensorBoard, MLflow) through transformers' own integrations.

transformers' callbacks read their settings from environment variables; we set those from the config for
the duration of the run and restore the previous environment afterwards. API keys are never taken from
the config file: W&B and MLflow read theirs from the environment (WANDB_API_KEY, MLFLOW_TRACKING_TOKEN),
and nothing axo writes contains them.

Secrets given on the command line (`axo train cfg.yml --hf_token …`) must not reach the trackers' files either:
W&B records the process's argv (`sys.argv[1:]`, its `_args` setting, which no setting of wandb 0.31 turns
off short of `x_disable_meta`, which drops all run metadata), so for the run `sys.argv` is the redacted copy
(config/redact.py `redact_argv`). An MLflow server given by URL is asked once before the model loads; its
failures, then or during the run, are a `ConfigError` with the URL's credentials redacted.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from axo.config.problems import ConfigError, Kind, Problem, Severity
from axo.config.redact import install_redaction, redact_argv, redact_text
from axo.config.schema import AxoConfig

_PACKAGES = {"wandb": ("wandb", "wandb"), "tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def report_to(cfg: AxoConfig) -> list[str]:
    """The trackers the config turns on (transformers' `report_to` names)."""
    targets = []
    mode = wandb_mode(cfg)
    if (cfg.wandb_project or cfg.wandb_mode in ("online", "offline")) and mode != "disabled":
        targets.append("wandb")
    if cfg.use_tensorboard:
        targets.append("tensorboard")
    if cfg.use_mlflow or cfg.mlflow_experiment_name:  # Axolotl turns MLflow on for an experiment name alone
        targets.append("mlflow")
    for target in targets:
        module, extra = _PACKAGES[target]
        if importlib.util.find_spec(module) is None:
            raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, target,
                                       f"logging to {target} needs the `{module}` package.",
                                       f"pip install 'axo[{extra}]'")])
    if "wandb" in targets and mode != "offline" and not _wandb_logged_in():
        # Found now, not after the model has loaded: wandb would stop the run at its first log.
        raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "wandb_project",
                                   "W&B logging is on, but no W&B API key is set on this machine.",
                                   "Set WANDB_API_KEY in the environment (axo never reads keys from the config "
                                   "or the command line) or run `wandb login`; or set `wandb_mode: offline` "
                                   "(sync later with `wandb sync`).")])
    if "mlflow" in targets:
        check_mlflow_server(cfg.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", ""))
    return targets


def wandb_mode(cfg: AxoConfig) -> str | None:
    """W&B's mode: the config's `wandb_mode`, else what the environment tells wandb itself (WANDB_MODE,
    or WANDB_DISABLED=true, which transformers also reads), as users of Axolotl and wandb are used to."""
    if cfg.wandb_mode:
        return cfg.wandb_mode
    if os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1", "yes"):
        return "disabled"
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    return {"dryrun": "offline"}.get(mode, mode) or None


_ANSWERED: set[str] = set()  # MLflow servers that answered in this process: asked once, not at every report_to
_MLFLOW_PROBE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
_MLFLOW_HINT = ("Start the server or fix `mlflow_tracking_uri` (a user name and password are better given as "
                "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD than inside the URI); or log to a local store "
                "with `mlflow_tracking_uri: file:./mlruns`, or turn MLflow off with `use_mlflow: false`.")


def _reason(exc: BaseException) -> str:
    """A library error in a few words, credentials redacted: the OS's reason for a failed connection
    ("Connection refused"), else the error's first line."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    reason = errno.group(1).strip() if errno else (text.splitlines() or [type(exc).__name__])[0][:300]
    return redact_text(reason.rstrip("."))


def check_mlflow_server(uri: str) -> None:
    """An http(s) MLflow tracking server must answer one request (no retries, 10 s timeout) before any data or
    model work: otherwise MLflow retries for minutes at the run's start and ends in a traceback whose message
    holds the URL, password included. Other URIs (`file:`, databricks, …) are left to MLflow.

    Raises:
        ConfigError: naming the server (credentials redacted) and why it cannot be used.
    """
    if urlsplit(uri).scheme.lower() not in ("http", "https") or uri in _ANSWERED:
        return
    from mlflow.tracking import MlflowClient

    previous = {key: os.environ.get(key) for key in _MLFLOW_PROBE}
    os.environ.update(_MLFLOW_PROBE)
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - MlflowException wraps connection, TLS and HTTP errors alike
        raise ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "mlflow_tracking_uri",
                                   f"the MLflow tracking server {redact_text(uri)} cannot be used: {_reason(exc)}.",
                                   _MLFLOW_HINT)]) from None
    finally:
        _restore(previous)
    _ANSWERED.add(uri)


def _restore(previous: dict[str, str | None]) -> None:
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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


def _tracker_failed(exc: BaseException) -> ConfigError | None:
    """A tracker's own error during the run (MLflow's server went away, W&B refused a request) as a
    `ConfigError` with credentials redacted; None for anything else, which stays as it is."""
    package = type(exc).__module__.split(".")[0]
    if package not in ("mlflow", "wandb"):
        return None
    name = {"mlflow": "MLflow", "wandb": "W&B"}[package]
    return ConfigError([Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "mlflow_tracking_uri" if package == "mlflow"
                                else "wandb_project", f"logging to {name} failed during the run: {_reason(exc)}.",
                                "Fix the tracker or turn it off, then run again (`axo train CONFIG --resume` "
                                "continues from the last checkpoint, if one was saved).")])


@contextmanager
def tracker_env(cfg: AxoConfig) -> Iterator[None]:
    """For the duration of a run: the trackers' environment set and `sys.argv` redacted (W&B records it), both
    restored afterwards; log records and uncaught tracebacks are redacted from then on (`install_redaction`).

    Raises:
        ConfigError: when a tracker's own call fails during the run (`_tracker_failed`).
    """
    wanted = tracker_environment(cfg)
    previous = {key: os.environ.get(key) for key in wanted}
    argv = sys.argv
    install_redaction()
    os.environ.update(wanted)
    sys.argv = redact_argv(argv)
    try:
        yield
    except Exception as exc:
        failed = _tracker_failed(exc)
        if failed is None:
            raise
        raise failed from None
    finally:
        try:
            if "wandb" in report_to(cfg):
                import wandb

                wandb.finish()
                wandb.teardown()  # wandb keeps process-wide settings; a second run in this process must re-read them
        finally:
            sys.argv = argv
            _restore(previous)
