"""A DPO run resumes like an SFT run: stopped at a checkpoint and resumed, it ends with the adapter an
uninterrupted run trains (TRL's trainer under axo's checkpointing mixin); and full fine-tunes load a frozen
reference copy only for the methods that compare against one."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from config_helpers import load
from safetensors.torch import load_file

from axo.train.modes import mode_for
from axo.train.run import train


def _run(root: Path, model_dir: Path, name: str, steps: int, resume: bool = False) -> Path:
    """A DPO LoRA run in `root/name` (constant learning rate, a checkpoint every 2 steps)."""
    pairs = root / "pairs.jsonl"
    if not pairs.exists():
        pairs.write_text("".join(json.dumps({"question": f"What is {i} plus {i}?", "chosen": f"It is {2 * i}.",
                                             "rejected": f"Maybe {i}."}) + "\n" for i in range(16)))
    cfg = load(f"base_model: {model_dir}\nrl: dpo\nlearning_rate: 5e-3\nlr_scheduler: constant\nadapter: lora\n"
               f"lora_r: 4\nlora_dropout: 0.1\nlora_target_linear: true\ndatasets:\n  - path: {pairs}\n"
               "    type: chatml.intel\nmicro_batch_size: 2\ngradient_accumulation_steps: 2\n"
               f"max_steps: {steps}\nlogging_steps: 1\nsave_strategy: steps\nsave_steps: 2\n"
               f"output_dir: {root / name}\ndataset_prepared_path: {root / 'prepared'}\n").require()
    train(cfg, progress=False, resume=resume)
    return root / name


def test_a_stopped_dpo_run_resumes_to_the_uninterrupted_adapter(tmp_path, tiny_llama_dir):
    """Stopped after the checkpoint at step 2 and resumed to step 4 (TRL's DPOTrainer under axo's checkpoint
    mixin: optimizer, RNG and data position restored), it ends with the adapter of a run that never stopped.
    (SIGKILL at any moment is tested on SFT runs, through the same mixin: tests/train/test_resume.py.)"""
    straight = _run(tmp_path, tiny_llama_dir, "straight", 4)
    _run(tmp_path, tiny_llama_dir, "stopped", 2)
    assert (tmp_path / "stopped" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    resumed = _run(tmp_path, tiny_llama_dir, "stopped", 4, resume=True)
    assert not (resumed / "ref").exists()  # the reference is the base, no copy of the adapter is saved
    expected, got = (load_file(folder / "adapter_model.safetensors") for folder in (straight, resumed))
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.allclose(got[name], expected[name], atol=1e-5), name


def test_full_fine_tunes_load_a_reference_only_when_the_method_compares_with_one(tmp_path, tiny_llama_dir, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"chosen": [{"role": "user", "content": f"Hi {i}"},
                                                    {"role": "assistant", "content": f"Hello {i}."}],
                                         "rejected": [{"role": "user", "content": f"Hi {i}"},
                                                      {"role": "assistant", "content": "Go away."}]}) + "\n"
                             for i in range(4)))

    def config(method: str, kind: str, extra: str = "") -> object:
        return load(f"base_model: {tiny_llama_dir}\nrl: {method}\nchat_template: chatml\nlearning_rate: 1e-4\n"
                    f"datasets:\n  - path: {pairs}\n    type: {kind}\nmicro_batch_size: 2\nmax_steps: 1\n"
                    f"output_dir: {tmp_path / 'out'}\ndataset_prepared_path: {tmp_path / 'prepared'}\n"
                    f"save_strategy: 'no'\n{extra}").require()

    assert not mode_for(config("orpo", "chat_template.argilla")).needs_reference_copy()  # no reference in ORPO
    assert not mode_for(config("dpo", "chatml.argilla_chat", "precompute_ref_log_probs: true\n")).needs_reference_copy()
    result = train(config("dpo", "chatml.argilla_chat"), progress=False)
    assert result.steps == 1 and (tmp_path / "out" / "model.safetensors").is_file()
    assert "reference model: a frozen copy of the base" in capsys.readouterr().out
