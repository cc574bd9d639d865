"""The `axo` command line: every command's help, exit codes, output formats and overrides."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from axo.cli.main import app

runner = CliRunner()
COMMANDS = ["validate", "init", "config-schema", "preprocess", "train", "merge-lora", "inference", "evaluate", "serve",
            "export"]
CONFIG = "base_model: ./m\nlearning_rate: 2e-4\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.yml"
    path.write_text(CONFIG)
    return path


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_top_level_help_lists_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    assert all(command in result.output for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.output


def test_validate_help_explains_overrides():
    assert "--learning-rate" in invoke("validate", "--help").output


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("axo ")


def test_valid_config_exits_zero_and_prints_resolved_yaml(config_file):
    result = invoke("validate", str(config_file))
    assert result.exit_code == 0
    resolved = yaml.safe_load(result.stdout)
    assert resolved["seed"] == 42 and resolved["learning_rate"] == 2e-4
    assert "valid" in result.stderr


def test_invalid_config_exits_one_and_names_the_key(config_file):
    config_file.write_text(CONFIG + "micro_batch_size: lots\n")
    result = invoke("validate", str(config_file))
    assert result.exit_code == 1
    assert "micro_batch_size" in result.stderr and "line 6" in result.stderr and "INVALID" in result.stderr
    assert "Traceback" not in result.output


def test_typo_warning_and_strict_flag(config_file):
    config_file.write_text(CONFIG + "learning_rte: 1e-4\n")
    relaxed = invoke("validate", str(config_file), "-q")
    assert relaxed.exit_code == 0 and "did you mean 'learning_rate'" in relaxed.stderr
    assert invoke("validate", str(config_file), "--strict").exit_code == 1


def test_overrides_from_the_command_line(config_file):
    result = invoke("validate", str(config_file), "--learning-rate", "5e-5", "--datasets.0.type", "completion",
                    "--json")
    payload = json.loads(result.stdout)
    assert result.exit_code == 0 and payload["valid"]
    assert payload["config"]["learning_rate"] == 5e-5
    assert payload["config"]["datasets"][0]["type"] == "completion"


def test_bad_override_is_a_clear_error(config_file):
    result = invoke("validate", str(config_file), "stray")
    assert result.exit_code == 1 and "not an option" in result.stderr


def test_json_output_lists_problems(config_file):
    config_file.write_text(CONFIG + "adapter: qlora\n")
    result = invoke("validate", str(config_file), "--json")
    payload = json.loads(result.stdout)
    assert result.exit_code == 1 and payload["valid"] is False and payload["config"] is None
    [conflict] = [p for p in payload["problems"] if p["kind"] == "conflict"]
    assert conflict["key"] == "adapter" and "load_in_4bit" in conflict["hint"]


def test_missing_config_file_is_a_clear_error(tmp_path):
    result = invoke("validate", str(tmp_path / "none.yml"))
    assert result.exit_code == 1 and "no such file" in result.stderr and "axo init" in result.stderr


def test_init_writes_a_valid_config_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "new" / "config.yml"
    result = invoke("init", "--preset", "llama-3.1-8b-qlora", "-o", str(target))
    assert result.exit_code == 0 and target.exists()
    assert target.read_text().startswith("# axo config:")
    assert invoke("validate", str(target)).exit_code == 0
    again = invoke("init", "-o", str(target))
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert invoke("init", "-o", str(target), "--force").exit_code == 0


def test_init_writes_a_deepspeed_config_beside_the_config(tmp_path):
    from axo.config.load import load_config
    from axo.train.distributed import deepspeed_config, zero_stage

    target = tmp_path / "run" / "c.yml"
    assert invoke("init", "-p", "llama-3.1-8b-lora", "-o", str(target), "--deepspeed", "zero3").exit_code == 0
    written = json.loads((tmp_path / "run" / "deepspeed_configs" / "zero3.json").read_text())
    cfg = load_config(target).require()
    assert cfg.deepspeed == "deepspeed_configs/zero3.json"
    assert deepspeed_config(cfg, target.parent) == written and zero_stage(written) == 3
    wrong = invoke("init", "-o", str(tmp_path / "d.yml"), "--deepspeed", "zero4")
    assert wrong.exit_code == 1 and "did you mean" in wrong.output and not (tmp_path / "d.yml").exists()


def test_init_unknown_preset_suggests_one(tmp_path):
    result = invoke("init", "--preset", "llama-3.1-8b-qlor", "-o", str(tmp_path / "c.yml"))
    assert result.exit_code == 1 and "did you mean 'llama-3.1-8b-qlora'" in result.stderr
    assert not (tmp_path / "c.yml").exists()


def test_init_lists_presets():
    result = invoke("init", "--list")
    assert result.exit_code == 0 and "mistral-7b-qlora" in result.output


def test_config_schema_prints_json_schema_with_descriptions():
    schema = json.loads(invoke("config-schema").stdout)
    assert "learning_rate" in schema["required"]
    assert schema["properties"]["model_config"]["description"].startswith("Values that override")


def test_config_schema_explains_one_key():
    result = invoke("config-schema", "learning-rate")
    assert result.exit_code == 0 and "Peak learning rate" in result.output and "required" in result.output
    unknown = invoke("config-schema", "learning_rte")
    assert unknown.exit_code == 1 and "did you mean 'learning_rate'" in unknown.stderr


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_console_script_and_python_m_agree(config_file):
    script = _run(str(Path(sys.executable).parent / "axo"), "validate", str(config_file), "-q")  # this venv's
    module = _run(sys.executable, "-m", "axo", "validate", str(config_file), "-q")
    assert script.returncode == module.returncode == 0
    assert script.stderr == module.stderr


def test_validate_never_imports_torch_or_transformers(config_file):
    # `axo validate` must answer fast; torch alone takes ~2 s to import. Measured in docs/BENCHMARKS.md.
    code = (
        "import sys\nfrom axo.cli.main import app\n"
        f"try:\n    app(['validate', {str(config_file)!r}, '-q'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = _run(sys.executable, "-c", code)
    assert "HEAVY=\n" in result.stdout, result.stdout + result.stderr


def test_unexpected_user_error_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("base_model: [unclosed\n")
    result = _run(sys.executable, "-m", "axo", "validate", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr and "line" in result.stderr


@pytest.mark.parametrize("key, fragment", [("datasets.0.type", "Prompt format"), ("type", "Prompt format"),
                                            ("special_tokens.pad_token", "Padding token")])
def test_config_schema_explains_nested_keys(key, fragment):
    result = invoke("config-schema", key)
    assert result.exit_code == 0 and fragment in result.output


def test_config_schema_points_old_spellings_at_the_new_key():
    result = invoke("config-schema", "flash_attention")
    assert result.exit_code == 1 and "attn_implementation" in result.stderr


_GUARD = """
import sys
from axo.cli.main import app, main
from axo.config.problems import ConfigError, Kind, Problem, Severity


@app.command("explode")
def explode(mistake: bool = False):
    if mistake:
        raise ConfigError([Problem(Severity.ERROR, Kind.CONFLICT, "learning_rate", "is wrong.", "Fix it.")])
    {}["missing"]  # an axo bug: a KeyError deep in a command


sys.argv = ["axo", *sys.argv[1:]]
main()
"""


def test_an_axo_bug_shows_its_traceback_and_asks_for_a_report(tmp_path):
    # the real entry point in a real process; the command that fails is added by the script, not patched in axo
    from axo.cli.main import BUG_EXIT

    bug = _run(sys.executable, "-c", _GUARD, "explode", cwd=tmp_path)
    assert bug.returncode == BUG_EXIT != 1
    assert "Traceback (most recent call last)" in bug.stderr and "KeyError: 'missing'" in bug.stderr
    assert "This is a bug in axo" in bug.stderr and "`axo --version`" in bug.stderr and "issue tracker" in bug.stderr
    mistake = _run(sys.executable, "-c", _GUARD, "explode", "--mistake", cwd=tmp_path)
    assert mistake.returncode == 1 and "Traceback" not in mistake.stderr and "bug" not in mistake.stderr
    assert "error: learning_rate: is wrong. Fix it." in mistake.stderr


def test_a_read_only_prepared_path_is_refused_before_preprocessing(tmp_path, tiny_llama_dir, monkeypatch):
    # as root (CI) permissions do not stop a write, so the read-only folder is an injected answer of access(2)
    import os

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n")
    (tmp_path / "cfg.yml").write_text(CONFIG.replace("./m", str(tiny_llama_dir)) + "dataset_prepared_path: ro/cache\n")
    (tmp_path / "ro").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != Path("ro") and real_access(path, mode, **kw))
    result = invoke("preprocess", "cfg.yml")
    assert result.exit_code == 1 and (result.exception is None or isinstance(result.exception, SystemExit))
    assert "dataset_prepared_path: 'ro/cache' cannot be created: ro is read-only" in result.stderr
    assert not (tmp_path / "ro" / "cache").exists()


def test_choosing_a_training_mode_imports_no_trainer():
    # `axo preprocess` asks the mode registry how to prepare the data; importing transformers' Trainer (and the
    # mode's torch code) there made preprocessing 20k rows take 10-12 s instead of 6-8 (benchmarks/preprocess_alpaca.py).
    code = ("import sys\nimport axo.train.modes\n"
            "heavy = sorted(m for m in ('torch', 'transformers.trainer', 'trl', 'axo.train.meta_trainer', "
            "'axo.train.trainer') if m in sys.modules)\nprint('HEAVY=' + ','.join(heavy))\n")
    result = _run(sys.executable, "-c", code)
    assert "HEAVY=\n" in result.stdout, result.stdout + result.stderr
