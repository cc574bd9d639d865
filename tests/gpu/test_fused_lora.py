"""GPU checks: the fused LoRA path on a bf16 base and on a bitsandbytes NF4 base gives PEFT's loss and
gradients (bf16 tolerance), and QLoRA keeps the unquantized weights in bf16 unless told otherwise."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _model(model_dir, nf4: bool):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs = {"dtype": torch.bfloat16, "device_map": {"": 0}}
    if nf4:
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True,
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    torch.manual_seed(0)
    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, init_lora_weights=False))


def _loss_and_grads(model):
    ids = torch.randint(5, 200, (2, 64), generator=torch.Generator().manual_seed(3)).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.item(), {n: p.grad.float() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("nf4", [False, True])
def test_fused_path_matches_peft_on_gpu(tiny_llama_dir, nf4):
    from axo.models.fused_lora import attach_fused_lora

    if not torch.cuda.is_available():
        pytest.fail("run on a CUDA machine")
    want_loss, want = _loss_and_grads(_model(tiny_llama_dir, nf4))
    fused = _model(tiny_llama_dir, nf4)
    counts = attach_fused_lora(fused, {"qkv", "o", "mlp"})
    assert counts == {"qkv": 6, "o": 2, "mlp": 6}
    got_loss, got = _loss_and_grads(fused)
    assert abs(got_loss - want_loss) < 2e-2
    for name, expected in want.items():
        similarity = torch.nn.functional.cosine_similarity(got[name].flatten(), expected.flatten(), dim=0)
        assert similarity > 0.99, name


@pytest.mark.parametrize(("skip_upcast", "dtype"), [("", torch.bfloat16), ("embeddings_skip_upcast: false\n", torch.float32)])
def test_qlora_keeps_unquantized_weights_in_bf16_unless_told(tiny_llama_dir, skip_upcast, dtype):
    from config_helpers import load

    from axo.models.adapter import apply_adapter
    from axo.models.loader import load_model
    from axo.models.tokenizer import load_tokenizer

    cfg = load(f"base_model: {tiny_llama_dir}\nlearning_rate: 1e-3\nadapter: qlora\nload_in_4bit: true\nbf16: true\n"
               f"gradient_checkpointing: true\ndatasets:\n  - path: x.jsonl\n{skip_upcast}").require()
    model, resized = load_model(cfg, load_tokenizer(cfg))
    model = apply_adapter(cfg, model, embeddings_resized=resized)
    inner = model.base_model.model
    assert inner.get_input_embeddings().weight.dtype == dtype
    assert inner.lm_head.weight.dtype == dtype
    assert inner.model.norm.weight.dtype == dtype
    assert inner.is_gradient_checkpointing
