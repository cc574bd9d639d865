"""MAML, first-order MAML and Reptile over an adapter's weights: the inner loop (plain SGD on a task's rows, run
functionally with `torch.func.functional_call`, so the model's own parameters never change and a 4-bit base
works) and each algorithm's contribution to the shared weights' gradient. Used by the meta-learning training mode
(train/modes/meta.py) and by few-shot evaluation (infer/few_shot.py), so both adapt the same way.

The meta-gradient of one task, for shared adapter weights θ, inner learning rate α and K inner steps
φ_0 = θ, φ_{k+1} = φ_k − α ∇L_support(φ_k):
- MAML: d L_query(φ_K) / dθ, through every inner step (`create_graph`), or through the first N with
  `first_order_after: N` (later steps' gradients are treated as constants);
- first-order MAML: ∇L_query evaluated at φ_K (every inner gradient a constant, so dφ_K/dθ = I);
- Reptile: θ − φ_K, the inner steps run on the task's support and query rows together.
The outer optimizer (the run's own) then steps on the mean over the tasks of a meta-update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call

Weights = dict[str, torch.Tensor]
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class InnerLoop:
    """How a task adapts the weights: `steps` SGD steps of size `lr`; the first `differentiate` of them keep
    their graph (second-order MAML), the rest are first-order."""

    lr: float
    steps: int
    differentiate: int = 0

    @classmethod
    def from_config(cls, meta: Any) -> InnerLoop:
        """The inner loop a `meta_learning:` section asks for (MAML differentiates through every step unless
        `first_order_after` caps it; first-order MAML and Reptile through none)."""
        if meta.algorithm != "maml":
            return cls(meta.inner_lr, meta.inner_steps, 0)
        limit = meta.inner_steps if meta.first_order_after is None else min(meta.first_order_after, meta.inner_steps)
        return cls(meta.inner_lr, meta.inner_steps, limit)


def adapter_weights(model: torch.nn.Module) -> Weights:
    """The trainable parameters (the adapter's weights), by the name functional_call knows them by."""
    return {name: param for name, param in model.named_parameters() if param.requires_grad}


def batch_loss(model: torch.nn.Module, weights: Weights, batch: Batch) -> torch.Tensor:
    """The model's mean token loss on `batch` with `weights` in place of its own adapter weights."""
    return functional_call(model, weights, args=(), kwargs={**batch, "use_cache": False}, strict=False).loss


def differentiable_attention(loop: InnerLoop) -> contextlib.AbstractContextManager:
    """SDPA's math kernel while second-order MAML runs: the flash and memory-efficient kernels' backward passes
    have no derivative of their own (on CPU and CUDA alike); the math kernel is built from differentiable ops."""
    if not loop.differentiate:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


def adapt(model: torch.nn.Module, weights: Weights, batch: Batch, loop: InnerLoop) -> tuple[Weights, list[float]]:
    """The weights after `loop.steps` SGD steps on `batch`, and the loss before each step. The result stays
    connected to `weights` (identity through first-order steps, the full graph through differentiated ones)."""
    fast, losses = weights, []
    for step in range(loop.steps):
        loss = batch_loss(model, fast, batch)
        second_order = step < loop.differentiate
        grads = torch.autograd.grad(loss, tuple(fast.values()), create_graph=second_order, allow_unused=True)
        fast = {name: value if grad is None else value - loop.lr * (grad if second_order else grad.detach())
                for (name, value), grad in zip(fast.items(), grads)}
        losses.append(float(loss.detach()))
    return fast, losses


def meta_step(model: torch.nn.Module, task: dict[str, Batch], algorithm: str, loop: InnerLoop, weight: float,
              backward: Callable[[torch.Tensor], None]) -> float:
    """Add `weight` × this task's meta-gradient to the adapter weights' `.grad`; returns the task's loss as the
    run logs it: the query loss after adapting (MAML, first-order MAML), the last inner step's loss (Reptile).

    `task` holds padded batches "support", "query" and, for Reptile, "all" (support and query rows together);
    `backward` is the trainer's backward (mixed-precision scaling)."""
    weights = adapter_weights(model)
    if algorithm == "reptile":
        start = {name: value.detach().requires_grad_() for name, value in weights.items()}
        fast, losses = adapt(model, start, task["all"], loop)
        with torch.no_grad():
            for name, param in weights.items():
                delta = (param - fast[name]) * weight
                param.grad = delta.to(param.dtype) if param.grad is None else param.grad.add_(delta)
        return losses[-1]
    with differentiable_attention(loop):
        fast, _ = adapt(model, weights, task["support"], loop)
        query = batch_loss(model, fast, task["query"])
        backward(query * weight)
    return float(query.detach())


def adapted_query_loss(model: torch.nn.Module, task: dict[str, Batch], loop: InnerLoop) -> tuple[float, Weights]:
    """Evaluation: adapt on the support rows (first-order: no graph is kept), then the query loss without
    gradients; also returns the adapted weights (detached)."""
    start = {name: value.detach().requires_grad_() for name, value in adapter_weights(model).items()}
    with torch.enable_grad():  # evaluation loops run under no_grad; the inner loop needs gradients
        fast, _ = adapt(model, start, task["support"], InnerLoop(loop.lr, loop.steps, 0))
    fast = {name: value.detach() for name, value in fast.items()}
    with torch.no_grad():
        return float(batch_loss(model, fast, task["query"])), fast
