"""W&B (offline), TensorBoard and MLflow (file store) through their real libraries, and no secret in
anything they or axo write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from config_helpers import load

from axo.train.run import train

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # the shape of a W&B key; never valid


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    with (tmp_path / "data.jsonl").open("w") as handle:
        for i in range(8):
            handle.write(json.dumps({"instruction": f"Tip {i}?", "input": "", "output": f"Drink water {i}."}) + "\n")
    return tmp_path


def _cfg(model_dir: Path, extra: str):
    return load(f"base_model: {model_dir}\nlearning_rate: 1e-3\nadapter: lora\nlora_r: 4\ndatasets:\n"
                "  - path: data.jsonl\n    type: alpaca\nmicro_batch_size: 2\nmax_steps: 2\nlogging_steps: 1\n"
                "output_dir: out\ndataset_prepared_path: prepared\nsave_strategy: 'no'\n" + extra).require()


def _no_secret_under(*folders: Path) -> None:
    for folder in folders:
        for file in folder.rglob("*"):
            if file.is_file():
                assert FAKE_KEY.encode() not in file.read_bytes(), file


def test_wandb_offline_run_is_written_with_the_config_names(workspace, tiny_llama_dir):
    train(_cfg(tiny_llama_dir, "wandb_project: axo-test\nwandb_mode: offline\nwandb_name: tiny-run\n"), progress=False)
    runs = list((workspace / "out" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert any(f.suffix == ".wandb" for f in runs[0].iterdir())
    assert "WANDB_PROJECT" not in os.environ  # restored after the run
    _no_secret_under(workspace / "out")


def test_tensorboard_event_file(workspace, tiny_llama_dir):
    train(_cfg(tiny_llama_dir, "use_tensorboard: true\n"), progress=False)
    events = list((workspace / "out" / "runs").rglob("events.out.tfevents.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert "train/loss" in accumulator.Tags()["scalars"]


def test_mlflow_file_store(workspace, tiny_llama_dir):
    store = workspace / "mlruns"
    train(_cfg(tiny_llama_dir, f"use_mlflow: true\nmlflow_tracking_uri: file:{store}\nmlflow_experiment_name: axo\n"),
          progress=False)
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=f"file:{store}")
    experiment = client.get_experiment_by_name("axo")
    [run] = client.search_runs([experiment.experiment_id])
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")]
    _no_secret_under(workspace / "out", store)


def test_wandb_online_without_a_key_fails_before_loading_the_model(workspace, tiny_llama_dir, monkeypatch):
    from axo.config.problems import ConfigError

    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("NETRC", str(workspace / "no-netrc"))
    with pytest.raises(ConfigError, match="WANDB_API_KEY"):
        train(_cfg(tiny_llama_dir, "wandb_project: axo-test\n"), progress=False)


def test_missing_tracker_package_names_the_extra(workspace, tiny_llama_dir, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    from axo.config.problems import ConfigError

    with pytest.raises(ConfigError, match=r"axo\[mlflow\]"):
        train(_cfg(tiny_llama_dir, "use_mlflow: true\n"), progress=False)
