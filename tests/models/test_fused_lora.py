"""PEFT LoRA layers routed through the fused path: same loss and gradients as PEFT's own path, and PEFT's
other states (merged, disabled, copied) still behave as PEFT defines them. Tiny real models, float32, CPU."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from axo.models.fused_lora import attach_fused_lora, layer_group

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _peft_model(model_dir, dropout=0.0):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    # init_lora_weights=False: B is random too, so the low-rank path contributes and A gets gradients
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=TARGETS, init_lora_weights=False)
    return get_peft_model(model, config)


def _batch():
    ids = torch.randint(5, 200, (2, 12), generator=torch.Generator().manual_seed(3))
    return {"input_ids": ids, "labels": ids}


def _loss_and_grads(model):
    model.zero_grad()
    loss = model(**_batch()).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("arch", ["llama", "qwen2"])  # qwen2's q/k/v have biases
def test_fused_path_gives_peft_loss_and_gradients(tiny_model_dirs, arch):
    reference = _peft_model(tiny_model_dirs[arch])
    fused = copy.deepcopy(reference)
    counts = attach_fused_lora(fused, {"qkv", "o", "mlp"})
    layers = reference.config.num_hidden_layers
    assert counts == {"qkv": 3 * layers, "o": layers, "mlp": 3 * layers}
    want_loss, want = _loss_and_grads(reference)
    got_loss, got = _loss_and_grads(fused)
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-5, atol=1e-5)
    assert got.keys() == want.keys() and len(got) == 2 * 7 * layers
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)


def test_only_the_chosen_groups_are_routed(tiny_llama_dir):
    model = _peft_model(tiny_llama_dir)
    assert attach_fused_lora(model, {"mlp"}) == {"mlp": 3 * model.config.num_hidden_layers}
    attention = model.base_model.model.model.layers[0].self_attn
    assert "forward" not in vars(attention.q_proj) and "forward" in vars(model.base_model.model.model.layers[0].mlp.up_proj)
    assert attach_fused_lora(model, {"mlp"}) == {"mlp": 0}  # attaching twice changes nothing


def test_layer_groups_follow_the_module_path():
    assert layer_group("model.layers.3.self_attn.q_proj") == "qkv"
    assert layer_group("model.layers.3.self_attn.o_proj") == "o"
    assert layer_group("transformer.h.0.attention.dense") == "o"
    assert layer_group("model.layers.3.mlp.down_proj") == "mlp"


def test_dropout_is_applied_in_training_and_not_in_eval(tiny_llama_dir):
    reference = _peft_model(tiny_llama_dir, dropout=0.3)
    fused = copy.deepcopy(reference)
    attach_fused_lora(fused, {"qkv", "o", "mlp"})
    reference.eval(), fused.eval()
    with torch.no_grad():
        torch.testing.assert_close(fused(**_batch()).loss, reference(**_batch()).loss)
    fused.train()
    losses = {round(_loss_and_grads(fused)[0].item(), 6) for _ in range(3)}
    assert len(losses) == 3  # a fresh mask each step


def test_merge_disable_and_copy_keep_peft_semantics(tiny_llama_dir):
    model = _peft_model(tiny_llama_dir)
    base_logits = None
    with torch.no_grad():
        with model.disable_adapter():
            base_logits = model(**_batch()).logits
        attach_fused_lora(model, {"qkv", "o", "mlp"})
        adapted = model(**_batch()).logits
        with model.disable_adapter():
            torch.testing.assert_close(model(**_batch()).logits, base_logits)
        assert not torch.allclose(adapted, base_logits)

        clone = copy.deepcopy(model)
        for module in clone.modules():
            if hasattr(module, "lora_B") and "default" in module.lora_B:
                module.lora_B["default"].weight.zero_()
        torch.testing.assert_close(clone(**_batch()).logits, base_logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model(**_batch()).logits, adapted)  # the original kept its own weights

        merged = model.merge_and_unload()
        torch.testing.assert_close(merged(**_batch()).logits, adapted, rtol=1e-4, atol=1e-4)
