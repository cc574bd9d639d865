"""Checkpoints damaged after they were saved: resume verifies each one (headers, sizes, index, trainer state,
optimizer state), skips the damaged newest with the reason and resumes from the one before, ending where an
undamaged run ends. Real in-process runs of the tiny model; the damage is done to the files on disk."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from config_helpers import load
from safetensors.torch import load_file
from train_helpers import tiny_lora_config

from axo.train import checkpoints
from axo.train.run import train


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_resume_skips_a_truncated_newest_checkpoint_and_ends_as_an_undamaged_run(tmp_path, tiny_llama_dir, capsys):
    cfg = load(tiny_lora_config(tmp_path, tiny_llama_dir, "out", "save_strategy: steps\nsave_steps: 1\nlora_dropout: 0.1\n",
                                steps="max_steps: 3")).require()
    train(cfg, progress=False)
    out = tmp_path / "out"
    expected = load_file(out / "adapter_model.safetensors")
    _cut(out / "checkpoint-3" / "adapter_model.safetensors")  # e.g. a copy of the run folder that was cut short
    assert checkpoints.problems(out / "checkpoint-3")[0].startswith("adapter_model.safetensors is truncated or damaged")
    capsys.readouterr()

    train(cfg, progress=False, resume=True)
    printed = capsys.readouterr().out
    assert "skipping checkpoint-3, damaged after it was saved: adapter_model.safetensors is truncated" in printed
    assert f"resuming from {out / 'checkpoint-2'}" in printed
    got = load_file(out / "adapter_model.safetensors")
    assert all(torch.allclose(got[name], expected[name], atol=1e-5) for name in expected)
    assert checkpoints.problems(out / "checkpoint-3") == []  # step 3 was saved again, whole


def test_a_checkpoint_whose_files_are_whole_verifies_in_each_engine_layout(tmp_path):
    plain = tmp_path / "checkpoint-4"
    plain.mkdir()
    (plain / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2, 2)}, plain / "adapter_model.safetensors")
    (plain / "adapter_config.json").write_text("{}")
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"state": torch.zeros(3)}, plain / name)
    assert checkpoints.problems(plain) == []
    assert checkpoints.problems(plain, model_only=True) == []
    # DeepSpeed: no optimizer.pt; its state is in the folder `latest` names, and must be there.
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (plain / name).unlink()
    (plain / "latest").write_text("global_step4")
    (plain / "global_step4").mkdir()
    assert checkpoints.problems(plain) == ["DeepSpeed's state folder global_step4 is missing or empty"]
    torch.save({"optimizer": torch.zeros(3)}, plain / "global_step4" / "mp_rank_00_optim_states.pt")
    assert checkpoints.problems(plain) == []
    _cut(plain / "global_step4" / "mp_rank_00_optim_states.pt")
    assert checkpoints.problems(plain) == ["mp_rank_00_optim_states.pt is truncated or damaged (not a complete torch archive)"]


def test_rotation_after_resuming_past_a_damaged_checkpoint_keeps_the_new_one(tmp_path):
    for step in (1, 2, 3):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (folder / "adapter_model.safetensors").write_bytes(b"x")
    # Resumed from 1 past a damaged 3: 2 was just written again. Keeping the two highest steps would delete it.
    rotation = checkpoints.rotate(tmp_path, 1, newest=tmp_path / "checkpoint-2")
    assert [p.name for p in rotation.kept] == ["checkpoint-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]  # and no staging folder is left
