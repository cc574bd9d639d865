"""GPU check of adapter kinds on a 4-bit FP4 base (`bnb_4bit_quant_type: fp4`) as well as NF4: `axo train` trains
QLoRA and IA³ (peft has bitsandbytes 4-bit layers for both), the loss falls, and the saved adapter reloaded with
plain peft on the same quantized base gives the logits it had in training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    import tiny_models

    return tiny_models.build_llama_bf16(tmp_path_factory.mktemp("fp4-model"), hidden_size=256, intermediate_size=512,
                                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def _train(kind: str, quant: str, folder: Path, model_dir: Path):
    from axo.config.load import load_config
    from axo.train.run import train

    folder.mkdir(exist_ok=True)
    rows = folder / "rows.jsonl"
    rows.write_text("".join(json.dumps({"input_ids": [10 + (i * 7 + j) % 400 for j in range(256)]}) + "\n"
                            for i in range(16)))
    (folder / "c.yml").write_text(
        f"base_model: {model_dir}\nlearning_rate: 1e-2\nadapter: {kind}\nload_in_4bit: true\n"
        f"bnb_4bit_quant_type: {quant}\nlora_target_linear: true\ndatasets:\n  - path: {rows}\n"
        f"sequence_len: 256\nmicro_batch_size: 4\nmax_steps: 4\nbf16: true\nsave_strategy: 'no'\nlogging_steps: 1\n"
        f"output_dir: {folder / 'out'}\ndataset_prepared_path: {folder / 'prepared'}\n")
    return train(load_config(folder / "c.yml").require(), progress=False)


@pytest.mark.parametrize("quant", ["fp4", "nf4"])
@pytest.mark.parametrize("kind", ["qlora", "ia3"])
def test_a_kind_trains_on_a_4bit_base_and_reloads(kind, quant, tmp_path: Path, model_dir: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    result = _train(kind, quant, tmp_path, model_dir)
    losses = [r["loss"] for r in result.metrics if "loss" in r]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    ids = torch.randint(10, 400, (2, 32), device="cuda")
    trained = result.model.eval()
    # as in training: bf16 autocast (peft keeps IA3's vectors in float32, whose products a bf16 head cannot take)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        want = trained(input_ids=ids).logits.float()
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant, bnb_4bit_compute_dtype=torch.bfloat16)
    base = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=quantization, dtype=torch.bfloat16,
                                                device_map={"": 0})
    reloaded = PeftModel.from_pretrained(base, tmp_path / "out").eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        got = reloaded(input_ids=ids).logits.float()
    torch.testing.assert_close(got, want, atol=3e-2, rtol=3e-2)  # bf16 compute; axo's fused LoRA path vs peft's


def test_4bit_runs_of_two_kinds_generate_and_serve_side_by_side(tmp_path: Path, model_dir: Path):
    """`axo inference`/`serve` load a QLoRA or IA³ run on the unquantized bf16 base (as `merge` does), without
    autocast: each answers as plain peft does on that base, one at a time or served side by side."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from axo.infer.generate import GenerationSettings, generate_texts
    from axo.infer.loading import load_for_inference
    from axo.infer.run_dir import open_run
    from axo.infer.server import pool_for_run

    runs = {kind: _train(kind, "nf4", tmp_path / kind, model_dir).output_dir for kind in ("qlora", "ia3")}
    settings, prompts = GenerationSettings(max_new_tokens=12), ["hello world", "the cat"]
    want = {}
    for kind, out in runs.items():
        model, tokenizer = load_for_inference(open_run(out))
        assert next(model.parameters()).dtype == torch.bfloat16 and model.device.type == "cuda"
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to("cuda")
        plain = PeftModel.from_pretrained(base, out).eval()
        want[kind] = [r["text"] for r in generate_texts(plain, tokenizer, prompts, settings)]
        assert [r["text"] for r in generate_texts(model, tokenizer, prompts, settings)] == want[kind]
    pool = pool_for_run(open_run(runs["qlora"]), runs, "base")
    for kind in runs:
        with pool.use(kind) as model:
            assert [r["text"] for r in generate_texts(model, pool.tokenizer, prompts, settings)] == want[kind]
    assert want["qlora"] != want["ia3"]
