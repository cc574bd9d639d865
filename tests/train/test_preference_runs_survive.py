"""A DPO run survives like an SFT run: killed with SIGKILL after a step, resumed with `--resume`, it ends with the
adapter an uninterrupted run trains (TRL's trainer under axo's checkpointing mixin); and full fine-tunes load a
frozen reference copy only for the methods that compare against one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from config_helpers import load
from safetensors.torch import load_file

from axo.train.modes import mode_for
from axo.train.run import train

STEPS = 4


def _workspace(root: Path, model_dir: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "pairs.jsonl").write_text("".join(json.dumps({"question": f"What is {i} plus {i}?", "chosen":
                                                            f"It is {2 * i}.", "rejected": f"Maybe {i}."}) + "\n"
                                                for i in range(16)))
    (folder / "cfg.yml").write_text(
        f"base_model: {model_dir}\nrl: dpo\nlearning_rate: 5e-3\nadapter: lora\nlora_r: 4\nlora_target_linear: true\n"
        "datasets:\n  - path: pairs.jsonl\n    type: chatml.intel\nmicro_batch_size: 2\ngradient_accumulation_steps: 2\n"
        f"max_steps: {STEPS}\nlogging_steps: 1\nsave_strategy: steps\nsave_steps: 1\nsave_total_limit: 2\n"
        "output_dir: out\ndataset_prepared_path: prepared\n")
    return folder


def _axo(folder: Path, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "AXO_FAULT"}
    env["PYTHONUNBUFFERED"] = "1"
    if fault:
        env["AXO_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "axo", "train", "cfg.yml", *extra], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)


def test_killed_dpo_run_resumes_to_the_uninterrupted_adapter(tmp_path, tiny_llama_dir):
    whole = _workspace(tmp_path, tiny_llama_dir, "whole")
    assert (done := _axo(whole)).returncode == 0, done.stdout + done.stderr
    folder = _workspace(tmp_path, tiny_llama_dir, "killed")
    killed = _axo(folder, fault="kill_after_step:2")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    resumed = _axo(folder, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from" in resumed.stdout and not (folder / "out" / "ref").exists()
    expected, got = load_file(whole / "out" / "adapter_model.safetensors"), load_file(
        folder / "out" / "adapter_model.safetensors")
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.allclose(got[name], expected[name], atol=1e-5), name


@pytest.mark.parametrize(("method", "copies"), [("dpo", True), ("orpo", False)])
def test_full_fine_tunes_load_a_reference_only_when_the_method_compares_with_one(method, copies, tmp_path,
                                                                                    tiny_llama_dir, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"chosen": [{"role": "user", "content": f"Hi {i}"},
                                                    {"role": "assistant", "content": f"Hello {i}."}],
                                         "rejected": [{"role": "user", "content": f"Hi {i}"},
                                                      {"role": "assistant", "content": "Go away."}]}) + "\n"
                             for i in range(4)))
    kind = "chat_template.argilla" if method == "orpo" else "chatml.argilla_chat"
    cfg = load(f"base_model: {tiny_llama_dir}\nrl: {method}\nchat_template: chatml\nlearning_rate: 1e-4\n"
               f"datasets:\n  - path: {pairs}\n    type: {kind}\nmicro_batch_size: 2\nmax_steps: 1\n"
               f"output_dir: {tmp_path / 'out'}\ndataset_prepared_path: {tmp_path / 'prepared'}\nsave_strategy: 'no'\n"
               "loss_watchdog_threshold: 100\n").require()
    assert mode_for(cfg).needs_reference_copy() is copies
    result = train(cfg, progress=False)
    assert result.steps == 1 and (tmp_path / "out" / "model.safetensors").is_file()
    assert ("reference model: a frozen copy of the base" in capsys.readouterr().out) is copies
