"""Axolotl's DPO, KTO, ORPO and reward-model example configs (tests/fixtures/axolotl_examples/, unchanged) validate
as written and train 3 steps on CPU through `axo train`, with a tiny local model, rows in each dataset's shape,
and CLI overrides for what needs CUDA (4-bit/8-bit bases, bitsandbytes optimizers, flash attention)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from axo.cli.main import app
from axo.config.load import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "axolotl_examples"
QUESTIONS = [(f"What is {i} plus {i}?", f"It is {2 * i}.", f"Maybe {i}.") for i in range(12)]


def _rows(shape: str) -> list[dict]:
    """Rows in the shape of each example's Hub dataset."""
    if shape == "chat_template.default":  # fozziethebeat/alpaca_messages_2k_dpo_test
        return [{"conversation": [{"role": "user", "content": q}], "chosen": {"role": "assistant", "content": c},
                 "rejected": {"role": "assistant", "content": r}} for q, c, r in QUESTIONS]
    if shape == "llama3.ultra":  # argilla/ultrafeedback-binarized-preferences-cleaned-kto
        return [{"prompt": q, "completion": c if i % 2 == 0 else r, "label": i % 2 == 0}
                for i, (q, c, r) in enumerate(QUESTIONS)]
    if shape == "chat_template.argilla":  # argilla/ultrafeedback-binarized-preferences-cleaned
        return [{"chosen": [{"role": "user", "content": q}, {"role": "assistant", "content": c}],
                 "rejected": [{"role": "user", "content": q}, {"role": "assistant", "content": r}]}
                for q, c, r in QUESTIONS]
    return [{"system": "", "input": q, "chosen": c, "rejected": r} for q, c, r in QUESTIONS]  # bradley_terry


CPU = ["--load_in_4bit", "false", "--load_in_8bit", "false", "--optimizer", "adamw_torch", "--attn_implementation",
       "sdpa", "--bf16", "false", "--tf32", "false"]
CASES = {  # file -> (dataset type, method as provenance names it, extra overrides)
    "qwen2-dpo.yaml": ("chat_template.default", "DPO", []),
    "llama-3-qlora-1b-kto.yaml": ("llama3.ultra", "KTO", ["--adapter", "lora", "--special_tokens.pad_token", "<pad>"]),
    "mistral-qlora-orpo.yml": ("chat_template.argilla", "ORPO", ["--adapter", "lora", "--model_type",
                                                                  "AutoModelForCausalLM", "--tokenizer_type",
                                                                  "AutoTokenizer", "--special_tokens.pad_token", "<pad>",
                                                                  # ORPO's NLL term on the random tiny model is ~6.4
                                                                  "--loss_watchdog_threshold", "100"]),
    "qwen2-reward-model.yaml": ("bradley_terry.chat_template", "reward model", ["--model_type",
                                                                                 "AutoModelForSequenceClassification"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_axolotl_preference_example_validates_as_written(name):
    loaded = load_config(EXAMPLES / name)
    assert loaded.ok, [p.render() for p in loaded.errors]


@pytest.mark.parametrize("name", sorted(CASES))
def test_axolotl_preference_example_trains_three_steps(name, tmp_path, tiny_llama_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shape, method, extra = CASES[name]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in _rows(shape)))
    args = ["train", str(EXAMPLES / name), "--base_model", str(tiny_llama_dir), "--datasets.0.path", str(data),
            *CPU, *extra, "--max_steps", "3", "--sequence_len", "256", "--micro_batch_size", "2",
            "--gradient_accumulation_steps", "1", "--save_strategy", "no", "--logging_steps", "1",
            "--output_dir", str(tmp_path / "out"), "--dataset_prepared_path", str(tmp_path / "prepared")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["steps"] == 3 and provenance["method"] == method
    assert provenance["train_loss"] is not None and provenance["trained_tokens"] > 0
    assert f"- method: {method}" in (tmp_path / "out" / "README.md").read_text()
