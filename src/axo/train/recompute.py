"""Which decoder layers gradient checkpointing recomputes (`gradient_checkpointing_keep_layers`)."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from axo.train.arguments import checkpointing_enabled


def checkpointed_layers(model: Any) -> list[Any]:
    """The model's decoder layers that gradient checkpointing wraps, in stack order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing]


class KeepTopLayers(TrainerCallback):
    """Leave the top `count` decoder layers un-checkpointed.

    transformers turns checkpointing on for every layer when training starts, so this runs right after
    (on_train_begin). The top layer is the one backward reaches first: recomputing it would rebuild the same
    activations at once, so keeping them changes speed, not peak memory.
    """

    def __init__(self, count: int):
        self.count = count
        self.kept = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not checkpointing_enabled(args) or model is None or self.count == 0:
            return
        layers = checkpointed_layers(model)
        for layer in layers[len(layers) - min(self.count, len(layers)):]:
            layer.gradient_checkpointing = False
        self.kept = min(self.count, len(layers))
