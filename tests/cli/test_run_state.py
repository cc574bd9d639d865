"""A run folder says whether it holds a trained result: `axo train` marks it finished only after the final
save, and `inference` / `evaluate` / `serve` / `merge-lora` refuse a folder whose training never finished,
while folders of older axo versions (final weights and provenance.json, no marker) keep working."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from axo.cli.main import app
from axo.infer.run_dir import run_state
from axo.train.outputs import RUN_STATE

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_llama_dir) -> Path:
    """A finished two-step LoRA run on the tiny model; returns the folder holding cfg.yml, q.jsonl and run/."""
    from train_helpers import tiny_lora_config

    folder = tmp_path_factory.mktemp("run-state")
    (folder / "cfg.yml").write_text(tiny_lora_config(folder, tiny_llama_dir, "run", steps="max_steps: 2"))
    (folder / "q.jsonl").write_text(json.dumps({"instruction": "Tip 1?"}) + "\n")
    result = runner.invoke(app, ["train", str(folder / "cfg.yml")])  # every path in the config is absolute
    assert result.exit_code == 0, result.output
    return folder


def _infer(run: Path, *extra: str):
    return runner.invoke(app, ["inference", str(run), "-i", str(run.parent / "q.jsonl"), "-o",
                               str(run.parent / f"{run.name}-answers.jsonl"), "--max-new-tokens", "2", *extra])


def test_a_finished_run_is_marked_after_its_final_save_and_generates(trained):
    run = trained / "run"
    record = json.loads((run / RUN_STATE).read_text())
    assert record["state"] == "finished" and record["steps"] == 2 and record["finished"] >= record["started"]
    # written last: nothing the run saves is newer than the marker
    newest = max(p.stat().st_mtime_ns for p in run.iterdir() if p.is_file() and p.name != RUN_STATE)
    assert (run / RUN_STATE).stat().st_mtime_ns >= newest
    assert not list(run.glob(f".{RUN_STATE}*"))  # the temporary file was renamed, not left
    assert _infer(run).exit_code == 0


def test_a_run_folder_of_an_older_axo_without_the_marker_still_works(trained):
    legacy = trained / "legacy"
    shutil.copytree(trained / "run", legacy)
    (legacy / RUN_STATE).unlink()
    assert run_state(legacy) == "finished"
    result = _infer(legacy)
    assert result.exit_code == 0, result.output


def test_a_failed_rerun_over_a_finished_folder_is_refused_not_served_with_stale_weights(trained):
    rerun = trained / "rerun"
    shutil.copytree(trained / "run", rerun)
    config = (trained / "cfg.yml").read_text().replace(f"output_dir: {trained / 'run'}", f"output_dir: {rerun}")
    (trained / "rerun.yml").write_text(config)
    # fails reading its data: after the run marked the folder, before anything trained
    failed = runner.invoke(app, ["train", str(trained / "rerun.yml"), "--datasets.0.path", str(trained / "gone.jsonl")])
    assert failed.exit_code == 1 and "gone.jsonl" in failed.output
    assert run_state(rerun) == "training"
    refused = _infer(rerun)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "training never finished" in refused.output and "not from a finished run" in refused.output
    assert f"axo inference {rerun} --base-only" in refused.output
    assert _infer(rerun, "--base-only").exit_code == 0  # the base model, on purpose
    (trained / "refs.jsonl").write_text(json.dumps({"instruction": "Tip 1?", "output": "Drink water 1 times."}) + "\n")
    evaluated = runner.invoke(app, ["evaluate", str(rerun), "--base-only", "-r", str(trained / "refs.jsonl"),
                                    "--max-new-tokens", "2", "-o", str(trained / "base-eval.json")])
    assert evaluated.exit_code == 0, evaluated.output
    assert list(json.loads((trained / "base-eval.json").read_text())) == ["base"]


def test_run_state_reads_the_marker_first_then_the_legacy_signs(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    assert run_state(folder) == "empty"
    (folder / "axo_config.yml").write_text("base_model: m\n")
    assert run_state(folder) == "training"  # a failed run's stub
    (folder / "adapter_model.safetensors").write_bytes(b"")
    assert run_state(folder) == "training"  # weights without provenance: the final save did not finish
    (folder / "provenance.json").write_text("{}")
    assert run_state(folder) == "finished"  # an older axo's finished run
    (folder / RUN_STATE).write_text(json.dumps({"state": "training"}))
    assert run_state(folder) == "training"  # a new run started over it
    (folder / RUN_STATE).write_text("{broken")
    assert run_state(folder) == "finished"  # an unreadable marker falls back to what the folder holds
