"""`axo train` on the tiny fixtures: real steps on CPU for full, LoRA and DoRA, and the run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from config_helpers import load

from axo.config.problems import ConfigError
from axo.train.run import train

ROWS = [{"instruction": f"Give tip number {i}.", "input": "" if i % 2 else "About health.",
         "output": f"Tip {i}: eat a balanced diet and drink water."} for i in range(16)]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "data.jsonl").open("w") as handle:
        for row in ROWS:
            handle.write(json.dumps(row) + "\n")
    return tmp_path


def _config(model_dir: Path, extra: str = "", adapter: str = "adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n"):
    text = (f"base_model: {model_dir}\nlearning_rate: 1e-3\n{adapter}datasets:\n  - path: data.jsonl\n    type: alpaca\n"
            "micro_batch_size: 2\ngradient_accumulation_steps: 2\nmax_steps: 3\nlogging_steps: 1\n"
            "output_dir: out\ndataset_prepared_path: prepared\nsave_strategy: 'no'\n" + extra)
    return load(text).require()


def _losses(result):
    return [round(r["loss"], 6) for r in result.metrics if "loss" in r]


# Recorded with torch 2.13.0 (CPU), transformers 5.23.0, peft 0.21.2 on the tiny Llama fixture (seed 0), with
# Axolotl's row order (numpy `default_rng(42)` permutation, tests/data/test_row_order.py).
LORA_REFERENCE = [6.383107, 6.380612, 6.368219]


def test_lora_loss_matches_the_recorded_reference_and_is_reproducible(workspace, tiny_llama_dir):
    first = train(_config(tiny_llama_dir), progress=False)
    assert _losses(first) == pytest.approx(LORA_REFERENCE, abs=1e-4)
    second = train(_config(tiny_llama_dir, "output_dir: out2\n"), progress=False)
    assert _losses(second) == _losses(first)  # bitwise-equal loss curve for the same seed


def test_saved_adapter_reloads_with_plain_peft_and_gives_the_same_logits(workspace, tiny_llama_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = train(_config(tiny_llama_dir), progress=False)
    out = Path("out")
    assert (out / "adapter_model.safetensors").exists() and (out / "adapter_config.json").exists()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), out).eval()
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    with torch.no_grad():
        expected = result.model.eval()(input_ids=ids).logits
        assert torch.allclose(reloaded(input_ids=ids).logits, expected, atol=1e-6)
        base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()(input_ids=ids).logits
    assert not torch.allclose(base, expected, atol=1e-6), "training must have changed the adapter"


def test_full_fine_tune_saves_a_standalone_model(workspace, tiny_model_dirs):
    from transformers import AutoModelForCausalLM

    result = train(_config(tiny_model_dirs["qwen2"], adapter=""), progress=False)
    assert result.steps == 3
    model = AutoModelForCausalLM.from_pretrained("out")
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dirs["qwen2"])
    changed = [name for name, p in model.state_dict().items() if not torch.equal(p, original.state_dict()[name])]
    assert changed, "a full fine-tune must change the weights"
    assert (Path("out") / "model.safetensors").exists()


@pytest.mark.parametrize("architecture", ["mistral", "qwen2"])
def test_dora_trains_on_other_architectures(workspace, tiny_model_dirs, architecture):
    result = train(_config(tiny_model_dirs[architecture], "peft_use_dora: true\n"), progress=False)
    config = json.loads((Path("out") / "adapter_config.json").read_text())
    assert config["use_dora"] is True and result.steps == 3 and all(map(torch.isfinite, map(torch.tensor, _losses(result))))


def test_eval_runs_at_eval_steps_and_checkpoints_rotate(workspace, tiny_llama_dir):
    cfg = _config(tiny_llama_dir, "val_set_size: 0.25\neval_steps: 2\nmax_steps: 4\nsave_strategy: steps\n"
                                  "save_steps: 1\nsave_total_limit: 2\n".replace("max_steps: 4\n", ""))
    cfg = cfg.model_copy(update={"max_steps": 4})
    result = train(cfg, progress=False)
    eval_steps = [r["step"] for r in result.metrics if "eval_loss" in r]
    assert eval_steps[:2] == [2, 4]
    assert sorted(p.name for p in Path("out").glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    assert result.eval_loss is not None


def test_run_directory_explains_itself(workspace, tiny_llama_dir):
    result = train(_config(tiny_llama_dir, "hf_token: hf_SECRET\n"), progress=False)
    out = Path("out")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for key in ("loss", "grad_norm", "learning_rate", "tokens_per_s", "trained_tokens_per_s", "memory_mib"):
        assert all(key in r for r in steps), key
    provenance = json.loads((out / "provenance.json").read_text())
    for key in ("axo_version", "libraries", "hardware", "config_fingerprint", "datasets", "started", "finished",
                "train_loss", "steps", "tokens_seen", "trained_tokens", "trained_tokens_per_s"):
        assert key in provenance, key
    assert provenance["steps"] == 3 and provenance["train_loss"] == pytest.approx(result.train_loss)
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "learning_rate: 0.001" in (out / "axo_config.yml").read_text()
    from axo.config.load import load_config

    reloaded = load_config(out / "axo_config.yml")  # a run directory's config reads back as it was
    assert reloaded.ok, "\n".join(p.render() for p in reloaded.errors)
    assert reloaded.require().model_dump() == load_config(out / "axo_config.yml").require().model_dump()
    assert "PeftModel.from_pretrained(base, " in (out / "README.md").read_text()
    for file in out.rglob("*"):
        if file.is_file():
            assert b"hf_SECRET" not in file.read_bytes(), file
    assert (out / "chat_template.jinja").exists() or "chat_template" in (out / "tokenizer_config.json").read_text()


def test_qlora_without_cuda_fails_clearly(workspace, tiny_llama_dir):
    cfg = _config(tiny_llama_dir, "load_in_4bit: true\n", adapter="adapter: qlora\n")
    with pytest.raises(ConfigError, match="CUDA GPU"):
        train(cfg, progress=False)


def test_bitsandbytes_optimizer_without_cuda_fails_clearly(workspace, tiny_llama_dir):
    with pytest.raises(ConfigError, match="bitsandbytes"):
        train(_config(tiny_llama_dir, "optimizer: adamw_bnb_8bit\n"), progress=False)


def test_new_tokens_with_an_adapter_need_modules_to_save(workspace, tiny_llama_dir):
    with pytest.raises(ConfigError, match="lora_modules_to_save"):
        train(_config(tiny_llama_dir, "tokens: ['<tool>']\n"), progress=False)
    result = train(_config(tiny_llama_dir, "tokens: ['<tool>']\nlora_modules_to_save: [embed_tokens, lm_head]\n"),
                   progress=False)
    assert result.steps == 3


def test_sequence_classification_trains(workspace, tiny_llama_dir):
    with (workspace / "cls.jsonl").open("w") as handle:
        for i in range(12):
            handle.write(json.dumps({"text": f"This movie was {'wonderful' if i % 2 else 'bad'}.", "label": i % 2}) + "\n")
    text = (f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-3\nnum_labels: 2\nadapter: lora\nlora_r: 4\n"
            "datasets:\n  - path: cls.jsonl\n    type: classification\nmicro_batch_size: 4\nmax_steps: 2\n"
            "output_dir: out\ndataset_prepared_path: prepared\nsave_strategy: 'no'\n")
    result = train(load(text).require(), progress=False)
    assert result.steps == 2 and result.train_loss is not None


def test_trained_tokens_count_exactly_the_batches_trained(workspace, tiny_llama_dir):
    # Every row has the same answer, so every row carries the same number of trained tokens; step 1
    # trains 4 rows. Counting in the collator would include the batch accelerate prefetches (8 rows).
    with (workspace / "data.jsonl").open("w") as handle:
        for i in range(16):
            handle.write(json.dumps({"instruction": f"Question {i}?", "input": "", "output": "Always the same answer."}) + "\n")
    cfg = _config(tiny_llama_dir).model_copy(update={"micro_batch_size": 4, "gradient_accumulation_steps": 1,
                                                      "max_steps": 2})
    result = train(cfg, progress=False)
    from axo.data.prepare import prepare_data
    from axo.models.tokenizer import load_tokenizer

    per_row = {sum(1 for label in s.labels if label != -100) for s in prepare_data(cfg, load_tokenizer(cfg)).train}
    assert len(per_row) == 1
    (count,) = per_row
    steps = [r for r in result.metrics if "loss" in r]
    assert [r["trained_tokens"] for r in steps] == [4 * count, 8 * count]


def test_the_engine_is_named_for_what_runs():
    from axo.train.run import _engine_name

    assert _engine_name({}, 1) == "single process"  # CPU or one GPU
    assert _engine_name({"ddp_timeout": 7200}, 2) == "DDP"
    assert _engine_name({"deepspeed": {"zero_optimization": {"stage": 3}}}, 1) == "DeepSpeed ZeRO-3"
    assert _engine_name({"deepspeed": {"zero_optimization": {"stage": 2}}}, 4) == "DeepSpeed ZeRO-2"
    assert _engine_name({"fsdp": "full_shard auto_wrap", "fsdp_config": {"version": 2}}, 2) == "FSDP2"
    assert _engine_name({"fsdp": "full_shard auto_wrap", "fsdp_config": {"version": 1}}, 8) == "FSDP1"
