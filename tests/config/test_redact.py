"""Secrets never reach a message, a log or a printed config (config/redact.py), and `trust_remote_code: true`
never passes unnoticed (config/rules.py)."""

from __future__ import annotations

import logging
import sys

import pytest
from config_helpers import BASE, find, load
from typer.testing import CliRunner

from axo.cli.main import app
from axo.cli.report import config_as_yaml
from axo.config.problems import Kind, Problem, Severity
from axo.config.redact import install_redaction, redact_argv, redact_text

PASSWORD = "Pa55w0rd-XYZ-987"
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"  # the shape of a Hugging Face token; never valid


@pytest.mark.parametrize("text, shown", [
    (f"http://axo:{PASSWORD}@127.0.0.1:9/api", "http://***@127.0.0.1:9/api"),
    (f"see 'https://me:{PASSWORD}@host/x.jsonl'", "see 'https://***@host/x.jsonl'"),
    (f"https://host/d.jsonl?token={PASSWORD}&split=train", "https://host/d.jsonl?token=***&split=train"),
    (f"https://host/x?api_key={PASSWORD}", "https://host/x?api_key=***"),
    (f"https://b.s3.amazonaws.com/x?X-Amz-Signature={PASSWORD}&X-Amz-Expires=60",
     "https://b.s3.amazonaws.com/x?X-Amz-Signature=***&X-Amz-Expires=60"),
    (f"token {HF} pasted", "token *** pasted"),
])
def test_credentials_in_text_are_redacted(text, shown):
    assert redact_text(text) == shown


@pytest.mark.parametrize("text", [
    "eos_token: </s>", "trained 1,234 tokens", "https://huggingface.co/org/model?revision=main",
    "hf_token: is not implemented yet", "file:./mlruns", "tokenizer_config: ./tok",
])
def test_ordinary_text_is_left_alone(text):
    assert redact_text(text) == text


def test_secrets_from_the_environment_and_the_command_line_are_redacted_anywhere(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "env-token-value-123")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # not a secret: its name only starts with TOKEN
    monkeypatch.setattr(sys, "argv", ["axo", "train", "c.yml", "--wandb-api-key=cli-key-value-456"])
    text = f"a env-token-value-123 b {PASSWORD} c cli-key-value-456 d false"
    assert redact_text(text) == "a *** b *** c *** d false"


def test_argv_as_a_tracker_may_record_it():
    argv = ["axo", "train", "c.yml", "--hf_token", HF, "--wandb-api-key=abcdef123456", "--x.comet_api_key", "k1",
            "--datasets.0.path", f"https://u:{PASSWORD}@h/d.jsonl", "--learning_rate", "1e-4", "--eos_token", "</s>"]
    assert redact_argv(argv) == ["axo", "train", "c.yml", "--hf_token", "***", "--wandb-api-key=***",
                                 "--x.comet_api_key", "***", "--datasets.0.path", "https://***@h/d.jsonl",
                                 "--learning_rate", "1e-4", "--eos_token", "</s>"]


def test_every_problem_is_redacted_where_it_is_made():
    problem = Problem(Severity.ERROR, Kind.MISSING_RESOURCE, "path", f"'https://u:{PASSWORD}@h/x' not found.",
                      f"Try https://h/x?token={PASSWORD}", origin=f"https://u:{PASSWORD}@h/x")
    assert PASSWORD not in problem.render() and "https://***@h/x" in problem.render()


def test_query_tokens_are_redacted_from_the_printed_config():
    loaded = load(BASE + f"use_mlflow: true\nmlflow_tracking_uri: https://h/?token={PASSWORD}\n")
    shown = config_as_yaml(loaded.require())
    assert PASSWORD not in shown and "https://h/?token=***" in shown


def test_log_records_and_uncaught_tracebacks_are_redacted(monkeypatch, capsys, caplog):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    factory = logging.getLogRecordFactory()
    try:
        install_redaction()
        install_redaction()  # a second call adds nothing
        logger = logging.getLogger("some.library")
        with caplog.at_level(logging.WARNING, logger="some.library"):
            logger.warning("API request to %s failed", f"http://u:{PASSWORD}@127.0.0.1:9/api")
            try:
                raise ConnectionError(f"cannot reach http://u:{PASSWORD}@127.0.0.1:9")
            except ConnectionError:
                logger.exception("tracker failed")
        assert "http://***@127.0.0.1:9/api" in caplog.text and PASSWORD not in caplog.text
        try:
            raise RuntimeError(f"https://h/?api_key={PASSWORD}")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
        err = capsys.readouterr().err
        assert "Traceback" in err and "api_key=***" in err and PASSWORD not in err
    finally:
        logging.setLogRecordFactory(factory)


def test_debug_output_carries_no_secret(tmp_path, monkeypatch, tiny_llama_dir):
    """`axo --debug` shows tracebacks: none of what it prints holds a secret."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AXO_DEBUG", "")  # --debug sets it for the process; restored after the test
    (tmp_path / "cfg.yml").write_text(BASE.replace("./m", str(tiny_llama_dir))
                                      .replace("data.jsonl", f"https://u:{PASSWORD}@h/d.jsonl"))
    result = CliRunner().invoke(app, ["--debug", "preprocess", "cfg.yml", "--hf_token", HF])
    shown = result.stdout + result.stderr + str(result.exception or "")
    assert result.exit_code != 0 and "https://***@h/d.jsonl" in shown
    assert PASSWORD not in shown and HF not in shown


def test_trust_remote_code_is_a_warning_naming_what_will_run():
    loaded = load(BASE.replace("./m", "org/custom-model") + "trust_remote_code: true\n"
                  "test_datasets:\n  - path: org/scripted\n    type: alpaca\n    trust_remote_code: true\n")
    model = find(loaded, "trust_remote_code", Kind.REMOTE_CODE)
    assert model.severity is Severity.WARNING and "'org/custom-model'" in model.message
    assert "will run on this machine" in model.message and "revision_of_model" in model.hint
    dataset = find(loaded, "test_datasets[0].trust_remote_code", Kind.REMOTE_CODE)
    assert "'org/scripted'" in dataset.message
    pinned = load(BASE + "trust_remote_code: true\nrevision_of_model: 0123abc\n")
    assert "revision_of_model" not in find(pinned, "trust_remote_code", Kind.REMOTE_CODE).hint
    assert not [p for p in load(BASE).problems if p.kind is Kind.REMOTE_CODE]


def test_validate_shows_the_remote_code_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yml").write_text(BASE + "trust_remote_code: true\n")
    result = CliRunner().invoke(app, ["validate", "cfg.yml"])
    assert result.exit_code == 0, result.output
    assert "trust_remote_code" in result.stdout + result.stderr and "'./m'" in result.stdout + result.stderr
