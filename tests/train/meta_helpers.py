"""Hand references for meta-learning tests: the inner loop as a deep copy trained by torch's own SGD, and a
float64 loss."""

from __future__ import annotations

import copy

import torch


def hand_loss(model, batch) -> torch.Tensor:
    """The mean next-token loss over the labelled tokens, computed here in float64 (transformers' own loss upcasts
    only to float32, too coarse for finite differences)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    return torch.nn.functional.cross_entropy(logits[:, :-1].double().flatten(0, 1), batch["labels"][:, 1:].flatten(),
                                             ignore_index=-100)


def sgd_adapted(model, batch, steps: int, lr: float):
    """A deep copy of `model` after `steps` steps of torch.optim.SGD on `batch`: the hand reference of the inner loop."""
    adapted = copy.deepcopy(model)
    optimizer = torch.optim.SGD([p for p in adapted.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        hand_loss(adapted, batch).backward()
        optimizer.step()
    optimizer.zero_grad()  # the copy starts clean: a caller's backward finds no inner-step gradient left
    return adapted
