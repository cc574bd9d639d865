"""Packed rows give the same loss and LoRA gradients as the same samples run alone (fp32, 1e-5), on
Llama, Qwen2 and Mistral; and a row whose samples could see each other would be caught."""

from __future__ import annotations

import pytest
import torch
from config_helpers import load

from axo.data.formats.base import Sample
from axo.data.packing import PackedCollator, packed_row
from axo.models.adapter import apply_adapter
from axo.models.loader import load_model
from axo.models.tokenizer import load_tokenizer

SAMPLES = [
    Sample([1, 40, 41, 42, 43, 44, 45], [-100, -100, -100, 42, 43, 44, 45], 0),
    Sample([1, 50, 51, 52, 53], [-100, -100, 51, 52, 53], 1),
    Sample([1, 60, 61, 62, 63, 64, 65, 66, 67], [-100, 60, 61, 62, 63, 64, 65, 66, 67], 2),
]


def _summed_loss(model, input_ids, labels, position_ids=None):
    logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits[:, :-1]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                             ignore_index=-100, reduction="sum")


def _lora_model(model_dir, gradient_checkpointing=False):
    cfg = load(f"base_model: {model_dir}\nlearning_rate: 1e-3\nadapter: lora\nlora_r: 4\nlora_target_linear: true\n"
               f"lora_dropout: 0.0\ngradient_checkpointing: {str(gradient_checkpointing).lower()}\n"
               "datasets:\n  - path: x.jsonl\n    type: alpaca\n").require()
    torch.manual_seed(0)
    model, _ = load_model(cfg, load_tokenizer(cfg))
    model = apply_adapter(cfg, model)
    for name, parameter in model.named_parameters():  # LoRA B starts at zero; make the adapter matter
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.02)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.train()


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def _packed_vs_alone(model, restart_positions=True):
    model.zero_grad()
    alone = sum(_summed_loss(model, torch.tensor([s.input_ids]), torch.tensor([s.labels])) for s in SAMPLES)
    alone.backward()
    expected = _grads(model)
    model.zero_grad()
    batch = PackedCollator(pad_token_id=0)([packed_row(SAMPLES, [0, 1, 2])])
    positions = batch["position_ids"] if restart_positions else torch.arange(batch["input_ids"].shape[1]).unsqueeze(0)
    packed = _summed_loss(model, batch["input_ids"], batch["labels"], positions)
    packed.backward()
    return alone.detach(), packed.detach(), expected, _grads(model)


@pytest.mark.parametrize("architecture", ["llama", "qwen2", "mistral"])
def test_packed_loss_and_lora_gradients_equal_unpacked(tiny_model_dirs, architecture):
    alone, packed, expected, got = _packed_vs_alone(_lora_model(tiny_model_dirs[architecture]))
    assert torch.allclose(packed, alone, atol=1e-5, rtol=0)
    assert expected.keys() == got.keys() and expected
    for name in expected:
        assert torch.allclose(got[name], expected[name], atol=1e-5, rtol=1e-4), name


def test_packing_with_gradient_checkpointing(tiny_llama_dir):
    alone, packed, expected, got = _packed_vs_alone(_lora_model(tiny_llama_dir, gradient_checkpointing=True))
    assert torch.allclose(packed, alone, atol=1e-5, rtol=0)
    assert all(torch.allclose(got[n], expected[n], atol=1e-5, rtol=1e-4) for n in expected)


def test_a_row_whose_samples_see_each_other_is_detected(tiny_llama_dir):
    # Without restarting positions transformers sees one long sequence: later samples attend to earlier ones.
    alone, contaminated, _, _ = _packed_vs_alone(_lora_model(tiny_llama_dir), restart_positions=False)
    assert not torch.allclose(contaminated, alone, atol=1e-3)


def test_changing_one_sample_leaves_the_others_logits_alone(tiny_llama_dir):
    model = _lora_model(tiny_llama_dir).eval()
    changed = [SAMPLES[0], Sample([1, 70, 71, 72, 73], SAMPLES[1].labels, 1), SAMPLES[2]]
    with torch.no_grad():
        first = model(**{k: v for k, v in PackedCollator(0)([packed_row(SAMPLES, [0, 1, 2])]).items() if k != "labels"}).logits
        second = model(**{k: v for k, v in PackedCollator(0)([packed_row(changed, [0, 1, 2])]).items() if k != "labels"}).logits
    a, b = len(SAMPLES[0].input_ids), len(SAMPLES[0].input_ids) + len(SAMPLES[1].input_ids)
    assert torch.allclose(first[:, :a], second[:, :a], atol=1e-6)  # before the changed sample
    assert torch.allclose(first[:, b:], second[:, b:], atol=1e-6)  # after it: no leakage forward
    assert not torch.allclose(first[:, a:b], second[:, a:b])
