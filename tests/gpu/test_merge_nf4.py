"""GPU check: `merge-lora --nf4-roundtrip` merges into the NF4-quantized-then-dequantized base."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = pytest.mark.gpu


def test_nf4_roundtrip_merge(tmp_path, tiny_llama_dir, monkeypatch):
    import bitsandbytes.functional as bnb
    from config_helpers import load
    from safetensors.torch import load_file

    from axo.infer.merge import merge_lora, read_adapter
    from axo.train.run import train

    if not torch.cuda.is_available():
        pytest.fail("run on a CUDA machine")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"instruction": f"Say {i}.", "output": f"{i}"}) + "\n"
                                                 for i in range(8)))
    cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-2\nadapter: lora\nlora_r: 4\nlora_alpha: 8\n"
               "lora_target_modules: [q_proj]\ndatasets:\n  - path: data.jsonl\n    type: alpaca\nmax_steps: 2\n"
               "output_dir: out\ndataset_prepared_path: prepared\nsave_strategy: 'no'\nbf16: false\n").require()
    train(cfg, progress=False)
    merge_lora("out", output=tmp_path / "plain")
    merge_lora("out", output=tmp_path / "nf4", nf4_roundtrip=True)
    name = "model.layers.0.self_attn.q_proj.weight"
    base = load_file(tiny_llama_dir / "model.safetensors")[name]
    quantized, state = bnb.quantize_4bit(base.cuda(), quant_type="nf4", blocksize=64)
    roundtrip = bnb.dequantize_4bit(quantized, state).cpu()
    parts = read_adapter(tmp_path / "out").lora["model.layers.0.self_attn.q_proj"]
    expected = roundtrip + (parts["B"] @ parts["A"]) * (8 / 4)
    nf4 = load_file(tmp_path / "nf4" / "model.safetensors")[name]
    plain = load_file(tmp_path / "plain" / "model.safetensors")[name]
    assert torch.allclose(nf4, expected, atol=1e-6)
    assert not torch.allclose(nf4, plain, atol=1e-4)
