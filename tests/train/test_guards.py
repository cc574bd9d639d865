"""Failure diagnosis: diverging loss, full disks, out-of-memory advice, pickle weights, secrets."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from config_helpers import load

from axo.config.problems import ConfigError
from axo.train import checkpoints
from axo.train.guards import TrainingDiverged
from axo.train.run import _out_of_memory, train


def _cfg(model_dir: Path, extra: str = ""):
    return load(f"base_model: {model_dir}\nlearning_rate: 1e-3\nadapter: lora\nlora_r: 4\ndatasets:\n"
                "  - path: data.jsonl\n    type: alpaca\nmicro_batch_size: 2\nmax_steps: 3\nlogging_steps: 1\n"
                "output_dir: out\ndataset_prepared_path: prepared\nsave_strategy: 'no'\n" + extra).require()


def test_nan_loss_stops_with_the_step_and_a_hint(workspace, tiny_llama_dir):
    # A full fine-tune at a learning rate of 1e30 overflows the embeddings: a real NaN loss by step 2.
    cfg = _cfg(tiny_llama_dir, "max_grad_norm: 0\nmax_steps: 6\n").model_copy(
        update={"learning_rate": 1e30, "adapter": None})
    with pytest.raises(TrainingDiverged) as info:
        train(cfg, progress=False)
    problem = info.value.problems[0]
    assert "at step" in problem.message and "learning_rate" in problem.hint


def test_loss_above_the_watchdog_threshold_stops(workspace, tiny_llama_dir):
    with pytest.raises(TrainingDiverged, match="stayed above 0.5 for 2 logs"):
        train(_cfg(tiny_llama_dir, "loss_watchdog_threshold: 0.5\nloss_watchdog_patience: 2\n"), progress=False)


def test_full_disk_before_a_save_keeps_the_last_good_checkpoint(workspace, tiny_llama_dir, monkeypatch):
    cfg = _cfg(tiny_llama_dir, "save_strategy: steps\nsave_steps: 1\nmax_steps: 3\n")
    real = checkpoints.shutil.disk_usage

    def filling_up(path):
        usage = real(path)
        saved = len(checkpoints.valid_checkpoints(Path("out")))
        return usage._replace(free=usage.free if saved < 2 else 1024)  # room for two checkpoints only

    monkeypatch.setattr(checkpoints.shutil, "disk_usage", filling_up)
    with pytest.raises(checkpoints.CheckpointError, match="not enough disk space"):
        train(cfg, progress=False)
    assert [p.name for p in checkpoints.valid_checkpoints(Path("out"))] == ["checkpoint-1", "checkpoint-2"]
    assert not (Path("out") / checkpoints.STAGING).exists() or not any((Path("out") / checkpoints.STAGING).iterdir())


def test_disk_full_during_a_save_removes_the_partial_copy(workspace, tiny_llama_dir, monkeypatch):
    from transformers import Trainer

    cfg = _cfg(tiny_llama_dir, "save_strategy: steps\nsave_steps: 1\nmax_steps: 2\n")
    real = Trainer._save_optimizer_and_scheduler
    calls = []

    def disk_fills(self, output_dir):
        calls.append(output_dir)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", disk_fills)
    with pytest.raises(checkpoints.CheckpointError, match="saving checkpoint 2 in .*out failed: No space left on device"):
        train(cfg, progress=False)
    assert [p.name for p in checkpoints.valid_checkpoints(Path("out"))] == ["checkpoint-1"]
    assert not (Path("out") / checkpoints.STAGING / "checkpoint-2").exists()


def test_out_of_memory_advice_names_sizes_and_fixes(tiny_llama_dir):
    problem = _out_of_memory(_cfg(tiny_llama_dir, "micro_batch_size: 8\n"), RuntimeError("CUDA out of memory")).problems[0]
    assert "micro_batch_size 8 × sequence_len 512" in problem.message
    assert "gradient_checkpointing: true" in problem.hint and "micro_batch_size 8 -> 4" in problem.hint


def test_pickle_weights_need_an_explicit_opt_in(workspace, tiny_llama_dir, tmp_path_factory):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("pickle-model")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # an old-style pickle checkpoint
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(folder)
    with pytest.raises(ConfigError, match="load_pickle_weights"):
        train(_cfg(folder), progress=False)
    assert train(_cfg(folder, "load_pickle_weights: true\n"), progress=False).steps == 3


def test_no_secret_from_the_environment_or_config_reaches_any_file_or_log(workspace, tiny_llama_dir, monkeypatch, capfd):
    secrets = {"HF_TOKEN": "hf_ENVSECRET123", "WANDB_API_KEY": "wandbENVSECRET456"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    train(_cfg(tiny_llama_dir, "hf_token: hf_CONFIGSECRET789\nmlflow_tracking_uri: https://me:PASSWORD0@x.example\n"),
          progress=True)
    captured = capfd.readouterr()
    needles = [*secrets.values(), "hf_CONFIGSECRET789", "PASSWORD0"]
    for file in Path("out").rglob("*"):
        if file.is_file():
            content = file.read_bytes()
            assert not any(n.encode() in content for n in needles), file
    assert not any(n in captured.out + captured.err for n in needles)


def test_out_of_memory_advice_at_micro_batch_1_under_a_cap(tiny_llama_dir):
    """Seen on the H200 (8B QLoRA, 98,304 tokens, 24 GiB cap): no "micro_batch_size 1 -> 1", the cap named."""
    problem = _out_of_memory(_cfg(tiny_llama_dir, "micro_batch_size: 1\ngpu_memory_limit: 24\n"),
                             RuntimeError("CUDA out of memory")).problems[0]
    assert "under the 24 GiB cap" in problem.message and "micro_batch_size 1 ->" not in problem.hint
    assert problem.hint.startswith("Try: sequence_len 512 -> smaller")
