"""Step time from the work a step does: matrix FLOPs counted from the model's shape and the recompute
choice, divided by the rate the GPU table says axo reaches (plan/gpus.py)."""

from __future__ import annotations

from axo.plan.gpus import PLAIN_KERNELS, Gpu
from axo.plan.memory import Recompute, Setup, layer_activation_bytes
from axo.plan.shapes import ModelShape


def kind(setup: Setup) -> str:
    """The GPU table's training kind for a setup."""
    if setup.full_finetune:
        return "full"
    return "qlora" if setup.quant_bits == 4 else "lora"


def step_flops(shape: ModelShape, setup: Setup, recompute: Recompute) -> float:
    """FLOPs of one micro-batch: forward, backward and the recomputed forwards.

    Per token a frozen linear weight costs 2 FLOPs per weight forward and 2 backward (the input's gradient);
    a trained one 2 more (its own gradient). Causal attention costs 2·s·h_q per token and layer forward over
    a span s, 2.5× that backward. Recomputed layers run their forward again, except the MLP's down projection
    on axo's fused path (kernels/lora.py stops the recomputation before it).
    """
    tokens = setup.tokens
    layer_linear = shape.decoder_linear / shape.layers
    attention = 2 * (setup.sequence / 2) * shape.heads * shape.head_dim * 2  # causal: half the span on average
    layer_forward = 2 * layer_linear + attention
    head = 2 * shape.vocab * shape.hidden
    backward_factor = 2.0 if setup.full_finetune else 1.0
    forward = shape.layers * layer_forward + head
    backward = shape.layers * (backward_factor * 2 * layer_linear + 2.5 * attention) + backward_factor * head
    adapter = 6 * shape.trainable.count if not setup.full_finetune else 0
    recomputed_layers = shape.layers - min(max(recompute.kept, 0), shape.layers)
    # offloading recomputes through torch's reentrant checkpoint, which reruns the whole layer
    skipped = 2 * shape.hidden * shape.intermediate if setup.fused_lora and not recompute.offload else 0
    recompute_flops = recomputed_layers * (layer_forward - skipped)
    return tokens * (forward + backward + recompute_flops) + tokens * adapter


def step_seconds(shape: ModelShape, setup: Setup, recompute: Recompute, gpu: Gpu) -> float:
    """Predicted seconds per micro-batch on `gpu`."""
    fused = bool(setup.liger) or setup.fused_ce
    rate = gpu.bf16_tflops * 1e12 * gpu.efficiency[kind(setup)] * (1.0 if fused else PLAIN_KERNELS)
    seconds = step_flops(shape, setup, recompute) / rate
    if recompute.offload:  # the copies back from host memory (~50 GB/s) wait; those to it overlap compute
        kept = min(max(recompute.kept, 0), shape.layers)
        per_layer = layer_activation_bytes(shape, setup)
        seconds += setup.tokens * ((shape.layers - kept) * shape.hidden * shape.dtype_bytes + kept * per_layer) / 50e9
    return seconds
