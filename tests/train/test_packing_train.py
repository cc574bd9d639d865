"""`axo train` with sample_packing and batch_flattening: steps known up front, efficiency recorded."""

from __future__ import annotations

import json
from math import ceil
from pathlib import Path

import pytest
from config_helpers import find, load

from axo.config.problems import Kind, Severity
from axo.train.run import train


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "data.jsonl").open("w") as handle:
        for i in range(40):
            handle.write(json.dumps({"instruction": f"Tip {i}?" + " more" * (i % 7), "input": "",
                                     "output": "Drink water." + " and rest" * (i % 5)}) + "\n")
    return tmp_path


def _cfg(model_dir: Path, extra: str):
    return load(f"base_model: {model_dir}\nlearning_rate: 1e-3\nadapter: lora\nlora_r: 4\ndatasets:\n"
                "  - path: data.jsonl\n    type: alpaca\nsequence_len: 128\nmicro_batch_size: 2\n"
                "gradient_accumulation_steps: 2\nlogging_steps: 1\noutput_dir: out\ndataset_prepared_path: prepared\n"
                "save_strategy: 'no'\n" + extra).require()


def test_packing_knows_its_steps_and_records_efficiency(workspace, tiny_llama_dir):
    result = train(_cfg(tiny_llama_dir, "sample_packing: true\nnum_epochs: 2\nval_set_size: 0.1\n"), progress=False)
    packing = json.loads((Path("out") / "provenance.json").read_text())["packing"]
    assert packing["capacity"] == 256 and 0.5 < packing["efficiency"] <= 1.0
    assert result.steps == ceil(sum(packing["rows_per_epoch"]) / 2)
    assert result.eval_loss is not None  # eval rows packed too (eval_sample_packing follows sample_packing)


def test_packing_with_gradient_checkpointing_and_padding_to_length(workspace, tiny_llama_dir):
    result = train(_cfg(tiny_llama_dir, "sample_packing: true\ngradient_checkpointing: true\nmax_steps: 2\n"
                                        "pad_to_sequence_len: true\n"), progress=False)
    assert result.steps == 2


def test_batch_flattening_trains(workspace, tiny_llama_dir):
    assert train(_cfg(tiny_llama_dir, "batch_flattening: true\nmax_steps: 2\n"), progress=False).steps == 2


def test_unsupported_combinations_are_errors():
    text = "base_model: ./m\nlearning_rate: 1e-4\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nsample_packing: true\n"
    assert find(load(text + "batch_flattening: true\n"), "batch_flattening", Kind.CONFLICT).severity is Severity.ERROR
    assert find(load(text + "num_labels: 2\n"), "sample_packing", Kind.CONFLICT).severity is Severity.ERROR
    assert find(load(text + "sample_packing_eff_est: 0.9\n"), "sample_packing_eff_est", Kind.DERIVED)


@pytest.mark.parametrize("architecture", ["qwen2", "mistral"])
def test_full_fine_tune_with_packing(workspace, tiny_model_dirs, architecture):
    cfg = load(f"base_model: {tiny_model_dirs[architecture]}\nlearning_rate: 1e-3\ndatasets:\n"
               "  - path: data.jsonl\n    type: alpaca\nsequence_len: 128\nmicro_batch_size: 2\nmax_steps: 2\n"
               "sample_packing: true\noutput_dir: out\ndataset_prepared_path: prepared\nsave_strategy: 'no'\n").require()
    result = train(cfg, progress=False)
    assert result.steps == 2 and (Path("out") / "model.safetensors").exists()
