"""Settings users give through the environment (WANDB_MODE, WANDB_DISABLED) count as settings, and the final
train loss is recorded whatever `logging_steps` is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from config_helpers import load

from axo.config.problems import ConfigError
from axo.train.run import train
from axo.train.trackers import report_to

WANDB_CFG = ("base_model: m\nlearning_rate: 1e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\nwandb_project: axo-test\n")


@pytest.fixture
def no_wandb_login(monkeypatch, tmp_path):
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def test_without_a_key_or_mode_wandb_is_refused(no_wandb_login):
    with pytest.raises(ConfigError, match="no W&B API key"):
        report_to(load(WANDB_CFG).require())


@pytest.mark.parametrize("mode", ["offline", "dryrun", "OFFLINE"])
def test_wandb_mode_offline_in_the_environment_needs_no_key(no_wandb_login, monkeypatch, mode):
    monkeypatch.setenv("WANDB_MODE", mode)
    assert report_to(load(WANDB_CFG).require()) == ["wandb"]


@pytest.mark.parametrize(("name", "value"), [("WANDB_MODE", "disabled"), ("WANDB_DISABLED", "true")])
def test_wandb_disabled_in_the_environment_turns_wandb_off(no_wandb_login, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert report_to(load(WANDB_CFG).require()) == []


def test_the_config_wins_over_the_environment(no_wandb_login, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert report_to(load(WANDB_CFG + "wandb_mode: offline\n").require()) == ["wandb"]


def test_final_train_loss_is_recorded_when_logging_steps_exceeds_the_run(workspace: Path, tiny_llama_dir):
    cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-3\nadapter: lora\nlora_r: 4\ndatasets:\n"
               "  - path: data.jsonl\n    type: alpaca\nmicro_batch_size: 2\nmax_steps: 2\nlogging_steps: 10\n"
               "output_dir: out\ndataset_prepared_path: prepared\nsave_strategy: 'no'\n").require()
    result = train(cfg, progress=False)
    assert result.train_loss is not None and result.train_loss > 0
    provenance = json.loads((workspace / "out" / "provenance.json").read_text())
    assert provenance["train_loss"] == pytest.approx(result.train_loss)
    steps = [r["step"] for r in result.metrics if "loss" in r]
    assert steps == [2]  # one log, at the last step: the mean loss since the start


def test_an_mlflow_experiment_name_turns_mlflow_on_as_in_axolotl(tmp_path):
    cfg = load(WANDB_CFG.replace("wandb_project: axo-test\n", "") +
               f"mlflow_experiment_name: axo\nmlflow_tracking_uri: file:{tmp_path / 'mlruns'}\n").require()
    assert report_to(cfg) == ["mlflow"]
