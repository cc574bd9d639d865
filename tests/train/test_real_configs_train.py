"""Every config in tests/fixtures/configs/ trains 3 steps on CPU through `axo train`, with its base model and
data swapped by CLI overrides (and the 4-bit part turned off, since there is no CUDA here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from axo.cli.main import app

REAL_CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
COMMON = ["--max_steps", "3", "--sequence_len", "256", "--save_strategy", "no", "--logging_steps", "1"]
CASES = {
    "llama31-8b-qlora-distill.yml": ["--adapter", "lora", "--load_in_4bit", "false", "--model_type", "AutoModelForCausalLM",
                                     "--tokenizer_type", "AutoTokenizer", "--special_tokens.eos_token", "</s>",
                                     "--special_tokens.pad_token", "<pad>", "--datasets.0.path", "{alpaca}"],
    "qwen25-coder-7b-qlora-completion.yml": ["--load_in_4bit", "false", "--optimizer", "adamw_torch",
                                             "--datasets.0.path", "{text}", "--test_datasets.0.path", "{text}",
                                             "--wandb_mode", "offline"],  # no network here
    "code-modifier-from-template.yml": ["--datasets.0.path", "{alpaca}"],
    "axolotl-rs-nested.yml": ["--model.name", "{model}", "--model.dtype", "float32", "--dataset.path", "{alpaca}"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_config_trains_three_steps(name, tmp_path, tiny_llama_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "alpaca.jsonl").open("w") as handle:
        for i in range(12):
            handle.write(json.dumps({"instruction": f"Rewrite line {i}.", "input": "x = 1", "output": f"x = {i}"}) + "\n")
    with (tmp_path / "text.jsonl").open("w") as handle:
        for i in range(12):
            handle.write(json.dumps({"text": f"def add_{i}(a, b):\n    return a + b + {i}\n"}) + "\n")
    paths = {"alpaca": str(tmp_path / "alpaca.jsonl"), "text": str(tmp_path / "text.jsonl"), "model": str(tiny_llama_dir)}
    overrides = [arg.format(**paths) for arg in CASES[name]]
    if name != "axolotl-rs-nested.yml":
        overrides += ["--base_model", str(tiny_llama_dir)]
    args = ["train", str(REAL_CONFIGS / name), *overrides, *COMMON, "--output_dir", str(tmp_path / "out"),
            "--dataset_prepared_path", str(tmp_path / "prepared")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["steps"] == 3
