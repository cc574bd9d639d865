"""Secrets given to `axo train` reach no file and no message: a real tiny run with W&B (offline), TensorBoard
and MLflow (file store) on and secrets on the command line and in the environment, then every byte of every
file it wrote searched; and MLflow servers that cannot be used are refused before the run, URL redacted."""

from __future__ import annotations

import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from config_helpers import load
from typer.testing import CliRunner

from axo.cli.main import app
from axo.config.problems import ConfigError
from axo.train.trackers import report_to, tracker_env

HF_CLI = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"  # shapes of real secrets; none is valid anywhere
WANDB_CLI = "0123456789abcdef0123456789abcdef0123cafe"
COMET_CLI = "comet-cli-secret-4711"
HF_ENV = "hf_EnvEnvEnvEnvEnvEnvEnvEnvEnvEnvEnv12"
WANDB_ENV = "fedcba9876543210fedcba9876543210fedcba98"
MLFLOW_ENV = "mlflow-env-password-0815"
SECRETS = (HF_CLI, WANDB_CLI, COMET_CLI, HF_ENV, WANDB_ENV, MLFLOW_ENV)
PASSWORD = "Pa55w0rd-XYZ-987"


def _files_holding_a_secret(root: Path) -> list[str]:
    return [f"{file}: {secret}" for file in root.rglob("*") if file.is_file()
            for secret in SECRETS if secret.encode() in file.read_bytes()]


def test_cli_and_environment_secrets_reach_no_file_of_a_run_with_every_tracker(tmp_path, tiny_llama_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, value in (("HF_TOKEN", HF_ENV), ("WANDB_API_KEY", WANDB_ENV), ("MLFLOW_TRACKING_PASSWORD", MLFLOW_ENV),
                        ("WANDB_SILENT", "true")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    (tmp_path / "data.jsonl").write_text("".join(
        json.dumps({"instruction": f"Tip {i}?", "input": "", "output": f"Drink water {i}."}) + "\n" for i in range(8)))
    (tmp_path / "cfg.yml").write_text(
        f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-3\nadapter: lora\nlora_r: 4\ndatasets:\n"
        "  - path: data.jsonl\n    type: alpaca\nmicro_batch_size: 2\nmax_steps: 2\nsave_steps: 2\nlogging_steps: 1\n"
        "output_dir: out\ndataset_prepared_path: prepared\nwandb_project: axo-secrets\nwandb_mode: offline\n"
        f"use_tensorboard: true\nuse_mlflow: true\nmlflow_tracking_uri: file:{tmp_path / 'mlruns'}\n"
        "mlflow_experiment_name: axo-secrets\n")
    args = ["train", "cfg.yml", "--hf_token", HF_CLI, "--wandb_api_key", WANDB_CLI, f"--comet-api-key={COMET_CLI}"]
    argv = ["axo", *args]
    monkeypatch.setattr(sys, "argv", argv)  # what W&B records: the command line `axo train …` was given
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert sys.argv is argv and HF_CLI in sys.argv  # the process's own argv is back after the run
    out = tmp_path / "out"
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    assert (out / "checkpoint-2" / "training_args.bin").is_file()
    assert list((tmp_path / "mlruns").rglob("meta.yaml")) and list((out / "runs").rglob("events.out.tfevents.*"))
    [run_file] = (out / "wandb").glob("offline-run-*/run-*.wandb")  # offline, W&B keeps its run metadata here
    assert b"--hf_token" in run_file.read_bytes() and b"--comet-api-key=***" in run_file.read_bytes()  # argv, redacted
    assert not _files_holding_a_secret(tmp_path)
    assert not [s for s in SECRETS if s in result.stdout + result.stderr]


class _MlflowServer(BaseHTTPRequestHandler):
    """Just enough of an MLflow tracking server for the probe: experiments/search, behind basic auth."""

    def do_GET(self):  # http.server's name for it
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
        expected = "Basic " + base64.b64encode(f"axo:{PASSWORD}".encode()).decode()
        ok = self.headers.get("Authorization") == expected and "/experiments/search" in self.path
        body = b'{"experiments": []}' if ok else b'{"error_code": "UNAUTHENTICATED", "message": "no"}'
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # MLflow 3 searches with POST

    def log_message(self, *args):  # keep the test's output quiet
        pass


@pytest.fixture
def mlflow_server():
    server = HTTPServer(("127.0.0.1", 0), _MlflowServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def _mlflow_cfg(uri: str | None):
    text = "base_model: ./m\nlearning_rate: 2e-4\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nuse_mlflow: true\n"
    return load(text + (f"mlflow_tracking_uri: {uri}\n" if uri else "")).require()


def test_an_mlflow_server_is_asked_once_before_the_run_with_the_urls_credentials(mlflow_server):
    assert report_to(_mlflow_cfg(f"http://axo:{PASSWORD}@127.0.0.1:{mlflow_server}")) == ["mlflow"]
    with pytest.raises(ConfigError) as refused:
        report_to(_mlflow_cfg(f"http://axo:wrong-password@127.0.0.1:{mlflow_server}/"))
    message = str(refused.value)
    assert "cannot be used: UNAUTHENTICATED" in message and "http://***@127.0.0.1" in message
    assert "wrong-password" not in message


def test_an_mlflow_uri_from_the_environment_is_checked_and_redacted(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://axo:{PASSWORD}@127.0.0.1:9")
    with pytest.raises(ConfigError) as refused:
        report_to(_mlflow_cfg(None))
    assert "http://***@127.0.0.1:9" in str(refused.value) and PASSWORD not in str(refused.value)


def test_a_tracker_failing_during_the_run_is_a_clear_error_without_the_password(tmp_path):
    from mlflow.exceptions import MlflowException

    cfg = _mlflow_cfg(f"file:{tmp_path / 'mlruns'}")
    with pytest.raises(ConfigError) as failed, tracker_env(cfg):
        raise MlflowException(f"API request to http://axo:{PASSWORD}@127.0.0.1:9/api/2.0/mlflow/runs/log-batch "
                              "failed with exception HTTPConnectionPool(host='127.0.0.1', port=9): Max retries "
                              "exceeded (Caused by NewConnectionError('[Errno 111] Connection refused'))")
    assert "logging to MLflow failed during the run: Connection refused" in str(failed.value)
    assert PASSWORD not in str(failed.value)
    with pytest.raises(ValueError), tracker_env(cfg):  # anything else is not the tracker's: it stays as it is
        raise ValueError(f"http://axo:{PASSWORD}@h")
