"""`axo preprocess`: prepares, reports, shows samples with their masks, and fails clearly on bad data."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from axo.cli.main import app

runner = CliRunner()


def _workspace(tmp_path: Path, tokenizer_dir: Path, lines: list[str]) -> Path:
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    config = tmp_path / "cfg.yml"
    config.write_text(f"base_model: {tokenizer_dir}\nlearning_rate: 1e-4\ndataset_prepared_path: {tmp_path / 'prepared'}\n"
                      f"datasets:\n  - path: {tmp_path / 'data.jsonl'}\n    type: alpaca\n")
    return config


def test_debug_shows_trained_spans_and_a_summary(tmp_path, tiny_tokenizer_dir):
    row = json.dumps({"instruction": "Say hi.", "input": "", "output": "Hello there."})
    config = _workspace(tmp_path, tiny_tokenizer_dir, [row, row.replace("hi", "bye")])
    result = runner.invoke(app, ["preprocess", str(config), "--debug", "1"])
    assert result.exit_code == 0, result.output
    assert "[[Hello there.</s>]]" in result.stdout or "[[Hello there.</s>]]" in result.stdout.replace("\n", "")
    assert "rows in" in result.stdout and "trained" in result.stdout
    again = runner.invoke(app, ["preprocess", str(config)])
    assert "from cache" in again.stdout


def test_malformed_line_names_file_and_line(tmp_path, tiny_tokenizer_dir):
    good = json.dumps({"instruction": "a", "output": "b"})
    config = _workspace(tmp_path, tiny_tokenizer_dir, [good, good, "{not json", good])
    result = runner.invoke(app, ["preprocess", str(config)])
    assert result.exit_code == 1
    assert "data.jsonl" in result.stderr and "line 3" in result.stderr and "Traceback" not in result.output
    assert not list((tmp_path / "prepared").glob("[!.]*")), "nothing half-written is left"


def test_missing_field_names_row_and_field(tmp_path, tiny_tokenizer_dir):
    config = _workspace(tmp_path, tiny_tokenizer_dir, [json.dumps({"instruction": "a", "output": "b"}),
                                                       json.dumps({"instruction": "a", "answer": "b"})])
    result = runner.invoke(app, ["preprocess", str(config)])
    assert result.exit_code == 1 and "row 2" in result.stderr and "'output'" in result.stderr
