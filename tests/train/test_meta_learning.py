"""One meta-step of MAML, first-order MAML and Reptile against references computed by hand: a deep copy of the
LoRA model adapted with torch's own SGD optimizer, plain backward passes, and (for second-order MAML, whose
gradient runs through the inner steps) central finite differences of the adapted query loss in float64."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch.nn.attention import SDPBackend, sdpa_kernel
from train.meta_helpers import hand_loss as _loss
from train.meta_helpers import sgd_adapted
from transformers import AutoModelForCausalLM

from axo.train.meta_learning import InnerLoop, adapter_weights, meta_step

LR, STEPS = 0.5, 2  # a large inner step, so the second-order terms are far from negligible


def _batch(generator: torch.Generator, rows: int, length: int) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 250, (rows, length), generator=generator)
    labels = ids.clone()
    labels[:, : length // 2] = -100  # prompt tokens carry no loss, as an alpaca row's
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


@pytest.fixture(scope="module")
def lora_model(tiny_llama_dir):
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float64, attn_implementation="sdpa")
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))  # B ≠ 0: every LoRA weight has a gradient
    model.train()
    return model


@pytest.fixture(scope="module")
def task():
    generator = torch.Generator().manual_seed(3)
    support, query = _batch(generator, 3, 12), _batch(generator, 2, 12)
    everything = {key: torch.cat([support[key], query[key]]) for key in support}
    return {"support": support, "query": query, "all": everything}


def _meta_gradient(model, task, algorithm: str, loop: InnerLoop) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    meta_step(model, task, algorithm, loop, 1.0, lambda loss: loss.backward())
    return {name: param.grad.clone() for name, param in adapter_weights(model).items()}


def _adapted_query_loss(model, task, shift: dict[str, torch.Tensor]) -> float:
    """L_query(φ_K(θ + shift)), with the inner loop run by hand on a copy."""
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for name, param in adapter_weights(moved).items():
            param.add_(shift[name])
    adapted = sgd_adapted(moved, task["support"], STEPS, LR)
    with torch.no_grad():
        return float(_loss(adapted, task["query"]))


def _close(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], tolerance: float) -> None:
    assert found.keys() == expected.keys()
    for name in found:
        torch.testing.assert_close(found[name], expected[name], atol=tolerance, rtol=0, msg=name)


@pytest.fixture(scope="module")
def gradients(lora_model, task):
    """Each algorithm's meta-gradient of the one task (computed once for the module's tests), checking on the way
    that no meta-step changes the shared weights themselves."""
    before = {name: param.detach().clone() for name, param in adapter_weights(lora_model).items()}
    found = {name: _meta_gradient(lora_model, task, algorithm, InnerLoop(LR, STEPS, differentiated))
             for name, algorithm, differentiated in (("maml", "maml", STEPS), ("fomaml", "fomaml", 0),
                                                     ("reptile", "reptile", 0), ("maml-first0", "maml", 0),
                                                     ("maml-first1", "maml", 1))}
    _close({name: param.detach() for name, param in adapter_weights(lora_model).items()}, before, 0.0)
    return found


def test_first_order_maml_is_the_query_gradient_at_the_adapted_weights(lora_model, task, gradients):
    found = gradients["fomaml"]
    adapted = sgd_adapted(lora_model, task["support"], STEPS, LR)
    adapted.zero_grad()
    _loss(adapted, task["query"]).backward()
    _close(found, {name: p.grad for name, p in adapter_weights(adapted).items()}, 1e-6)


def test_reptile_moves_towards_the_weights_adapted_on_the_whole_task(lora_model, task, gradients):
    found = gradients["reptile"]
    adapted = sgd_adapted(lora_model, task["all"], STEPS, LR)
    expected = {name: (param - adapter_weights(adapted)[name]).detach()
                for name, param in adapter_weights(lora_model).items()}
    _close(found, expected, 1e-6)


def _maml_by_hand(model, task) -> dict[str, torch.Tensor]:
    """MAML's meta-gradient by the textbook backward recursion: v = ∇L_query(φ_K), then for k = K-1 … 0
    v ← v − α·H_support(φ_k)·v, with each Hessian-vector product taken by torch.autograd on a copy holding φ_k."""
    states = [copy.deepcopy(model)]
    for _ in range(STEPS):
        states.append(sgd_adapted(states[-1], task["support"], 1, LR))
    last = states[-1]
    last.zero_grad()
    _loss(last, task["query"]).backward()
    vector = {name: param.grad.detach().clone() for name, param in adapter_weights(last).items()}
    for state in reversed(states[:-1]):
        weights = adapter_weights(state)
        with sdpa_kernel([SDPBackend.MATH]):  # the only SDPA kernel with a second derivative
            grads = torch.autograd.grad(_loss(state, task["support"]), tuple(weights.values()), create_graph=True)
            along = sum((grad * vector[name]).sum() for name, grad in zip(weights, grads))
            product = torch.autograd.grad(along, tuple(weights.values()))
        vector = {name: vector[name] - LR * hv for name, hv in zip(weights, product)}
    return vector


def test_second_order_maml_is_the_true_gradient_through_the_inner_steps(lora_model, task, gradients):
    """MAML's meta-gradient equals the backward recursion by hand (1e-6) and, along a random direction, the finite
    difference of the adapted query loss; first-order MAML's does not (so a dropped inner graph fails here)."""
    maml, first_order = gradients["maml"], gradients["fomaml"]
    _close(maml, _maml_by_hand(lora_model, task), 1e-6)
    direction = {name: torch.randn(g.shape, generator=torch.Generator().manual_seed(7), dtype=g.dtype)
                 for name, g in maml.items()}
    epsilon = 1e-5  # transformers' RMSNorm computes in float32 even in a float64 model: no smaller step helps
    plus = _adapted_query_loss(lora_model, task, {n: epsilon * d for n, d in direction.items()})
    minus = _adapted_query_loss(lora_model, task, {n: -epsilon * d for n, d in direction.items()})
    numeric = (plus - minus) / (2 * epsilon)
    along = sum(float((maml[n] * d).sum()) for n, d in direction.items())
    along_first_order = sum(float((first_order[n] * d).sum()) for n, d in direction.items())
    assert along == pytest.approx(numeric, rel=1e-3)
    assert abs(along_first_order - numeric) > 0.02 * abs(numeric)


def test_first_order_after_caps_the_differentiated_steps(gradients):
    _close(gradients["maml-first0"], gradients["fomaml"], 1e-12)
    distance = lambda a, b: max(float((a[n] - b[n]).abs().max()) for n in a)  # noqa: E731
    assert distance(gradients["maml-first1"], gradients["maml"]) > 1e-4
    assert distance(gradients["maml-first1"], gradients["fomaml"]) > 1e-4
