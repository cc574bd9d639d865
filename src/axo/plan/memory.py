"""GPU memory of one training process, by part, before anything is loaded.

Every figure is bytes, derived from what axo's own code path keeps alive (docs/PLANNING.md lists the terms and
where each comes from): the weights as loaded, the trainable weights with their gradients and optimizer state,
the activations autograd saves per decoder layer for the kernels in use, the logits and cross-entropy, and
working buffers. The activation terms are exact for the CPU code path (tests/plan check them against torch's
own saved-tensor hooks); on a GPU the fused kernels' own buffers and the allocator add what docs/BENCHMARKS.md
measures (the prediction is held to ±10 % of `torch.cuda.max_memory_allocated` there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

from axo.plan.shapes import ModelShape

GIB = 2**30
# Offloaded tensors are copied to host memory in pieces of this size (train/offload.py): a power of two, so whole
# pieces pin exactly their size in torch's caching host allocator, and a tensor wastes less than one piece.
PIECE_BYTES = 64 << 20


@dataclass(frozen=True)
class Setup:
    """The run settings the memory and time model read, resolved from the config (plan/setup.py)."""

    tokens: int  # tokens in one micro-batch (micro_batch_size × sequence_len, or the packed row)
    sequence: int  # longest attention span: a row, or one packed sample
    quant_bits: int | None  # 4 or 8 for a quantized base, None otherwise
    double_quant: bool
    optimizer: str
    liger: frozenset[str]  # liger options in use: rms_norm, swiglu, rope, fused_linear_cross_entropy
    cut_cross_entropy: bool
    fused_lora: bool  # axo's fused LoRA path (kernels/lora.py) on all three groups
    lora_dropout: float
    full_finetune: bool
    accumulation: int = 1  # micro-batches per optimizer step

    @property
    def fused_ce(self) -> bool:
        return self.cut_cross_entropy or "fused_linear_cross_entropy" in self.liger


@dataclass(frozen=True)
class Recompute:
    """Which activations stay on the GPU: `kept` top layers keep theirs, the rest are recomputed (keeping only
    their input); `offload` moves those inputs to host memory."""

    kept: int
    offload: bool = False

    def describe(self, layers: int) -> str:
        if self.kept >= layers:
            return "no recompute"
        text = "full recompute" if self.kept <= 1 else f"recompute {layers - self.kept} of {layers} layers"
        return text + (", inputs offloaded to CPU" if self.offload else "")


@dataclass
class MemoryEstimate:
    """Bytes by part and the predicted peak."""

    parts: dict[str, int] = field(default_factory=dict)
    peak: int = 0
    host: int = 0  # pinned host memory the offloaded activations take (0 without offloading)

    def gib(self, part: str | None = None) -> float:
        return (self.peak if part is None else self.parts[part]) / GIB


def _quantized_bytes(count: int, bits: int, double_quant: bool) -> int:
    """bitsandbytes storage: 4-bit packs two weights a byte plus one absmax per 64-weight block (one byte each
    with double quantization, plus a float32 scale per 256 blocks); 8-bit (LLM.int8) a byte a weight plus a
    float32 scale per row (not counted)."""
    if bits == 8:
        return count
    blocks = ceil(count / 64)
    return count // 2 + (blocks + ceil(blocks / 256) * 4 if double_quant else blocks * 4)


def weight_bytes(shape: ModelShape, setup: Setup) -> int:
    """The frozen weights as loaded (the trainable ones are counted with their gradients)."""
    linear = shape.frozen_linear
    stored = linear.bytes if setup.quant_bits is None else _quantized_bytes(linear.count, setup.quant_bits,
                                                                            setup.double_quant)
    return stored + shape.frozen_other.bytes


def optimizer_bytes(shape: ModelShape, optimizer: str) -> int:
    """State torch/bitsandbytes optimizers keep for the trainable weights: Adam-style two moments in the
    parameter's dtype and a float32 step count per tensor; bitsandbytes 8-bit moments a byte per value and a
    float32 absmax per 256-value block."""
    name = optimizer.lower()
    trainable = shape.trainable
    if "8bit" in name or name.endswith("_8bit"):
        return 2 * trainable.count + 2 * ceil(trainable.count / 256) * 4 + 4 * shape.trainable_tensors
    if name.startswith("sgd"):
        return trainable.bytes
    if "lion" in name:
        return trainable.bytes + 4 * shape.trainable_tensors
    if "adafactor" in name:
        return trainable.bytes // 100 + 4 * shape.trainable_tensors  # factored second moment, no first moment
    return 2 * trainable.bytes + 4 * shape.trainable_tensors


def layer_activation_bytes(shape: ModelShape, setup: Setup) -> int:
    """Bytes per token that one decoder layer keeps for backward when it is not recomputed.

    Terms (d = the training dtype's bytes): each RMSNorm saves its input — as a float32 copy in transformers'
    implementation, as is with liger's — (and in a full fine-tune the normalised input); the normed output
    feeds the next projections (d·h, twice); attention keeps the rotated queries and keys, the values and its
    output (d·(2·h_q + 2·kv); the output projection reads the kernel's output in place) and a float32
    log-sum-exp per head; the MLP keeps gate, activation, up and product (4·d·i; liger's SwiGLU recomputes
    the activation: 3·d·i); each adapted projection keeps its rank-r product (d·r) and, with dropout, its
    dropped-out input and mask.
    """
    d, h, q = shape.dtype_bytes, shape.hidden, shape.heads * shape.head_dim
    norm = (d * h if "rms_norm" in setup.liger else 4 * h) + 4  # the input, and its float32 1/rms
    if setup.full_finetune and "rms_norm" not in setup.liger:
        norm += d * h  # the normalised input, for the trained norm weight's gradient
    attention = d * (q + 2 * shape.kv_hidden) + d * q + 4 * shape.heads  # q, k, v, output, log-sum-exp
    total = 2 * norm + 2 * d * h + attention
    total += (3 if "swiglu" in setup.liger else 4) * d * shape.intermediate
    total += shape.lora_modules_per_layer * d * shape.lora_rank
    if setup.lora_dropout > 0:
        total += (d + 1) * shape.lora_in_features
    if not setup.fused_lora and not setup.full_finetune:  # peft's path: a float32 copy of each adapted input
        total += 4 * shape.lora_in_features
    return total


def final_norm_widths(shape: ModelShape, setup: Setup) -> list[int]:
    """Bytes per token of each tensor the final norm saves: its input (a float32 copy in transformers', as is in
    liger's) and its float32 1/rms; in a full fine-tune with transformers' norm the normalised input too."""
    d, h = shape.dtype_bytes, shape.hidden
    widths = [d * h if "rms_norm" in setup.liger else 4 * h, 4]
    if setup.full_finetune and "rms_norm" not in setup.liger:
        widths.append(d * h)
    return widths


def head_widths(shape: ModelShape, setup: Setup) -> list[int]:
    """Bytes per token of each tensor the output head and loss save: liger's fused loss the gradient of its
    input (computed in the forward pass), Cut Cross Entropy its input; transformers' loss the float32
    log-probabilities and the int64 targets, and the head's input when the head is trained."""
    if setup.fused_ce:
        return [shape.dtype_bytes * shape.hidden]
    return [4 * shape.vocab, 8] + ([shape.dtype_bytes * shape.hidden] if setup.full_finetune else [])


def saved_bytes(shape: ModelShape, setup: Setup, recompute: Recompute) -> int:
    """What autograd holds for backward when the decoder ends: the recomputed layers' inputs, the kept layers'
    activations and the final norm's input."""
    kept = min(max(recompute.kept, 0), shape.layers)
    inputs = (shape.layers - kept) * shape.dtype_bytes * shape.hidden
    return setup.tokens * (inputs + kept * layer_activation_bytes(shape, setup) + sum(final_norm_widths(shape, setup)))


def activation_bytes(shape: ModelShape, setup: Setup, recompute: Recompute) -> int:
    """Activations at their peak: what the forward pass saved — or, when a recomputed layer's backward runs
    (after the kept layers are freed), the recomputed inputs, that one layer's rebuilt activations and the
    final norm's input. Offloaded (train/offload.py), all of it waits in host memory but the one layer whose
    backward is running."""
    per_layer = layer_activation_bytes(shape, setup)
    if recompute.offload:
        return setup.tokens * per_layer
    saved = saved_bytes(shape, setup, recompute)
    if recompute.kept <= 0 < shape.layers:  # nothing kept: the top layer is rebuilt on top of every input
        return saved + setup.tokens * per_layer
    return saved


def pinned_bytes(nbytes: int) -> int:
    """Pinned host memory one offloaded tensor of `nbytes` takes: its whole pieces, and a last piece rounded up
    to a power of two as torch's caching host allocator rounds every block (aten/src/ATen/core/
    CachingHostAllocator.h, torch 2.6-2.13; copied whole, a 2.5 GiB layer input would pin 4 GiB)."""
    whole, rest = divmod(nbytes, PIECE_BYTES)
    return whole * PIECE_BYTES + (1 << (rest - 1).bit_length() if rest else 0)


def host_bytes(shape: ModelShape, setup: Setup, recompute: Recompute) -> int:
    """Pinned host memory that offloaded activations take at their peak: every tensor the forward pass saved,
    the final norm's, the head's and the loss's included, as `pinned_bytes` pins it. A kept layer's tensors are
    the token count times power-of-two widths for the models axo plans, rounded as its input is."""
    if not recompute.offload:
        return 0
    tokens, kept = setup.tokens, min(max(recompute.kept, 0), shape.layers)
    layer_input = tokens * shape.dtype_bytes * shape.hidden
    host = (shape.layers - kept) * pinned_bytes(layer_input)
    host += ceil(kept * tokens * layer_activation_bytes(shape, setup) * pinned_bytes(layer_input) / layer_input)
    widths = final_norm_widths(shape, setup) + head_widths(shape, setup)
    return host + sum(pinned_bytes(tokens * width) for width in widths)


def logits_bytes(shape: ModelShape, setup: Setup) -> int:
    """The output head and loss at their peak: transformers' loss upcasts the logits (d·V per token) to
    float32 and keeps float32 log-probabilities (8·V more; the trainer drops the model's output, so the
    logits themselves are gone by backward, where the float32 gradients take their place; 10·V per token
    measured on an H200, docs/BENCHMARKS.md). liger's fused linear cross-entropy works through chunks of
    ⌈V/h⌉ fewer tokens and keeps the input gradient; Cut Cross Entropy keeps only that gradient."""
    tokens, vocab, d, h = setup.tokens, shape.vocab, shape.dtype_bytes, shape.hidden
    if setup.cut_cross_entropy:
        return tokens * d * h
    if "fused_linear_cross_entropy" in setup.liger:
        chunk = max(1, tokens // max(1, ceil(vocab / h)))
        return tokens * d * h + chunk * vocab * 8
    return tokens * vocab * (d + 8)


def working_bytes(shape: ModelShape, setup: Setup) -> int:
    """Buffers beyond the saved activations: dequantized copies of the largest 4-bit weight (forward and
    backward), cuBLAS workspaces and small tensors. A layer's backward temporaries (the residual gradient,
    the MLP's intermediate gradients) take the place of the activations it frees: measured on an H200, they
    add nothing to the peak."""
    buffers = 2 * shape.dtype_bytes * shape.hidden * shape.intermediate if setup.quant_bits else 0
    return buffers + 256 * 2**20


def estimate(shape: ModelShape, setup: Setup, recompute: Recompute) -> MemoryEstimate:
    """The predicted peak of `torch.cuda.max_memory_allocated` for a training step, and its parts.

    The activations peak as backward starts, before any gradient exists (the trainer frees them after each
    optimizer step); a full fine-tune holds every weight's gradient at the end of backward, when the
    activations are gone, so its peak is the larger of the two. With gradient accumulation the gradients
    stay between micro-batches.
    """
    parts = {
        "weights": weight_bytes(shape, setup),
        "trainable weights": shape.trainable.bytes,
        "gradients": shape.trainable.bytes,
        "optimizer state": optimizer_bytes(shape, setup.optimizer),
        "activations": activation_bytes(shape, setup, recompute),
        "logits and loss": logits_bytes(shape, setup),
        "working buffers": working_bytes(shape, setup),
    }
    steady = parts["weights"] + parts["trainable weights"] + parts["optimizer state"]
    backward = parts["activations"] + parts["logits and loss"] + parts["working buffers"]
    if setup.accumulation > 1:  # gradients live across the micro-batches of a step
        steady += parts["gradients"]
    elif setup.full_finetune:
        # liger's fused loss computes the head's gradient in the forward pass, before the activation peak; the
        # optimizer step over every weight needs about the gradients' size again in temporaries (fitted to two
        # H200 runs of a 1.2B full fine-tune, docs/BENCHMARKS.md "axo plan")
        head = shape.vocab * shape.hidden * shape.dtype_bytes if setup.fused_ce else 0
        backward = max(backward + head, 2 * parts["gradients"] + parts["working buffers"])
    return MemoryEstimate(parts, steady + backward, host_bytes(shape, setup, recompute))


def checkpoint_bytes(shape: ModelShape, setup: Setup) -> int:
    """One saved checkpoint: the trainable weights (an adapter, or the whole model) and the optimizer state."""
    weights = shape.trainable.bytes if not setup.full_finetune else shape.total_params * shape.dtype_bytes
    return weights + optimizer_bytes(shape, setup.optimizer)
