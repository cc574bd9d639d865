"""Secrets never reach printed configs; paths are looked up where users expect them."""

from __future__ import annotations

from config_helpers import BASE, find, load

from axo.cli.report import config_as_yaml
from axo.config.paths import resolve_local_path
from axo.config.problems import Kind, Severity
from axo.config.redact import redact


def test_secrets_are_redacted_from_the_resolved_config():
    text = BASE + "hf_token: hf_SECRET123\nmlflow_tracking_uri: https://me:pa55@mlflow.example.com\n"
    shown = config_as_yaml(load(text).require())
    assert "hf_SECRET123" not in shown and "pa55" not in shown
    assert "mlflow.example.com" in shown


def test_token_names_are_not_secrets():
    assert redact({"eos_token": "</s>", "tokenizer_config": "x", "wandb_api_key": "k"}) == {
        "eos_token": "</s>", "tokenizer_config": "x", "wandb_api_key": "***"}


def test_missing_local_dataset_is_a_warning_and_hub_ids_a_note(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loaded = load(BASE + "  - path: org/some-dataset\n")
    missing = find(loaded, "datasets[0].path", Kind.MISSING_RESOURCE)
    assert missing.severity is Severity.WARNING and "data.jsonl" in missing.message
    assert find(loaded, "datasets[1].path", Kind.MISSING_RESOURCE).severity is Severity.NOTE


def test_existing_local_files_raise_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text("{}\n")
    (tmp_path / "m").mkdir()
    loaded = load(BASE)
    assert not [p for p in loaded.problems if p.kind is Kind.MISSING_RESOURCE]


def test_relative_paths_fall_back_to_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "cfgdir").mkdir()
    (tmp_path / "cfgdir" / "data.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_local_path("data.jsonl", tmp_path / "cfgdir") == tmp_path / "cfgdir" / "data.jsonl"
    assert resolve_local_path("data.jsonl", None) is None
