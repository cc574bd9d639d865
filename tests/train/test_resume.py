"""Runs that survive: killed with SIGKILL at two points (after step 5, and while checkpoint 3 is written), resumed,
and compared with an uninterrupted run; SIGTERM saves and stops cleanly. Real `axo train` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from axo.train import checkpoints

STEPS = 8


def _workspace(root: Path, model_dir: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    with (folder / "data.jsonl").open("w") as handle:
        for i in range(24):
            handle.write(json.dumps({"instruction": f"Tip {i}?", "input": "", "output": f"Drink water, {i} times."}) + "\n")
    (folder / "cfg.yml").write_text(
        f"base_model: {model_dir}\nlearning_rate: 5e-3\nadapter: lora\nlora_r: 4\nlora_dropout: 0.1\n"
        "lora_target_linear: true\ndatasets:\n  - path: data.jsonl\n    type: alpaca\nmicro_batch_size: 2\n"
        f"gradient_accumulation_steps: 2\nmax_steps: {STEPS}\nlogging_steps: 1\nsave_strategy: steps\nsave_steps: 1\n"
        "save_total_limit: 2\noutput_dir: out\ndataset_prepared_path: prepared\n")
    return folder


def _axo(folder: Path, *extra: str, fault: str | None = None, wait: bool = True):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("AXO_FAULT", None)
    if fault:
        env["AXO_FAULT"] = fault
    command = [sys.executable, "-m", "axo", "train", "cfg.yml", *extra]
    if not wait:
        return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def _adapter(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "out" / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_llama_dir):
    folder = _workspace(tmp_path_factory.mktemp("resume"), tiny_llama_dir, "uninterrupted")
    result = _axo(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return _adapter(folder), tiny_llama_dir, folder.parent


@pytest.mark.parametrize("fault", ["kill_after_step:5", "kill_during_save:3"])
def test_killed_and_resumed_equals_uninterrupted(reference, fault):
    expected, model_dir, root = reference
    folder = _workspace(root, model_dir, fault.replace(":", "-"))
    killed = _axo(folder, fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    step = int(fault.split(":")[1])
    out = folder / "out"
    if fault.startswith("kill_during_save"):
        assert (out / checkpoints.STAGING / f"checkpoint-{step}").exists()  # half-written, never published
    # Killed after step N's update but before (or while) its checkpoint was written: N-1 is the newest.
    assert checkpoints.step_of(checkpoints.latest_checkpoint(out)) == step - 1
    assert not (out / "adapter_model.safetensors").exists()
    resumed = _axo(folder, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from" in resumed.stdout
    if fault.startswith("kill_during_save"):
        assert "removed a half-written checkpoint" in resumed.stdout
    got = _adapter(folder)
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.allclose(got[name], expected[name], atol=1e-5), name
    assert [p.name for p in checkpoints.valid_checkpoints(out)] == [f"checkpoint-{STEPS - 1}", f"checkpoint-{STEPS}"]


def test_sigterm_saves_stops_and_resumes(reference):
    expected, model_dir, root = reference
    folder = _workspace(root, model_dir, "sigterm")
    (folder / "cfg.yml").write_text((folder / "cfg.yml").read_text().replace("save_steps: 1", "save_steps: 100"))
    process = _axo(folder, wait=False)
    metrics = folder / "out" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if metrics.exists() and sum(1 for line in metrics.read_text().splitlines() if '"loss"' in line) >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 128 + signal.SIGTERM, output
    assert "SIGTERM received" in output and "--resume" in output
    saved = checkpoints.latest_checkpoint(folder / "out")
    assert saved is not None and 2 <= checkpoints.step_of(saved) < STEPS  # saved at a step boundary, off-schedule
    resumed = _axo(folder, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    got = _adapter(folder)
    assert all(torch.allclose(got[name], expected[name], atol=1e-5) for name in expected)


def test_resume_path_without_a_checkpoint_is_a_clear_error(tmp_path, tiny_llama_dir, monkeypatch):
    from typer.testing import CliRunner

    from axo.cli.main import app

    folder = _workspace(tmp_path, tiny_llama_dir, "bad-resume")
    (folder / "cfg.yml").write_text((folder / "cfg.yml").read_text() + "resume_from_checkpoint: out/checkpoint-9\n")
    monkeypatch.chdir(folder)  # in this process: the same command, without a second interpreter's start-up
    result = CliRunner().invoke(app, ["train", "cfg.yml"])
    assert result.exit_code == 1 and "not a complete checkpoint" in result.output and "Traceback" not in result.output


def test_full_fine_tune_killed_and_resumed_equals_uninterrupted(tmp_path, tiny_model_dirs):
    def full(folder: Path) -> Path:
        text = (folder / "cfg.yml").read_text().replace("adapter: lora\n", "").replace("lora_dropout: 0.1\n", "")
        (folder / "cfg.yml").write_text(text.replace("lora_r: 4\n", "").replace("lora_target_linear: true\n", ""))
        return folder

    reference_dir = full(_workspace(tmp_path, tiny_model_dirs["qwen2"], "full-reference"))
    assert _axo(reference_dir).returncode == 0
    folder = full(_workspace(tmp_path, tiny_model_dirs["qwen2"], "full-killed"))
    assert _axo(folder, fault="kill_after_step:4").returncode == -signal.SIGKILL
    resumed = _axo(folder, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    expected = load_file(reference_dir / "out" / "model.safetensors")
    got = load_file(folder / "out" / "model.safetensors")
    assert all(torch.allclose(got[name], expected[name], atol=1e-5) for name in expected)


def test_a_second_signal_exits_at_once(tmp_path, tiny_llama_dir):
    folder = _workspace(tmp_path, tiny_llama_dir, "double-signal")
    (folder / "cfg.yml").write_text((folder / "cfg.yml").read_text().replace(f"max_steps: {STEPS}", "max_steps: 400"))
    process = _axo(folder, wait=False)
    metrics = folder / "out" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.exists() and '"loss"' in metrics.read_text()):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, output
    assert "exiting now without saving" in output


def test_first_checkpoint_size_estimate_counts_zero3_partitions_and_master_weights(tmp_path):
    layer = torch.nn.Linear(100, 10, bias=False).to(torch.bfloat16)  # 1,000 trainable bf16 weights
    plain = checkpoints.expected_checkpoint_size(tmp_path, layer) - 16 * 2**20
    assert plain == 2_000 * 3  # weights + two moments, in the weights' dtype
    # DeepSpeed: fp32 master weights and moments (12 bytes a weight) beside the bf16 weights; under ZeRO-3
    # each rank holds an empty slice and the full count in `ds_numel`, as DeepSpeed leaves it.
    layer.weight.ds_numel = layer.weight.numel()
    layer.weight.data = torch.empty(0, dtype=torch.bfloat16)
    sharded = checkpoints.expected_checkpoint_size(tmp_path, layer, deepspeed=True) - 16 * 2**20
    assert sharded == 2_000 + 12_000
