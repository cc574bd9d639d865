"""Activation offloading (`activation_offloading`, `gradient_checkpointing: offload`): what autograd saves during
the forward pass waits in pinned host memory until backward needs it.

torch's own `save_on_cpu` copies each tensor on the compute stream, so the GPU waits for every copy. Here the
copy to host runs on a side CUDA stream, overlapping the compute that follows, and the GPU memory is released
once it is done (`record_stream` keeps the caching allocator from reusing it earlier); backward copies the
tensor back when it needs it. Weights (parameters, and views of them) and small tensors stay where they are.
Large tensors are copied in pieces of one power-of-two size (plan/memory.py `pinned_bytes`): torch's caching host
allocator rounds every pinned block up to a power of two, so a 2.5 GiB layer input copied whole would pin 4 GiB.
Hooks are active during the forward pass only (train/trainer.py), so the layers gradient checkpointing
recomputes in backward keep their activations on the GPU for the moment they are used.
"""

from __future__ import annotations

from typing import Any

import torch

from axo.plan.memory import PIECE_BYTES

MIN_BYTES = 1 << 20  # smaller tensors cost more in bookkeeping than they free


class OffloadState:
    """What every forward pass's hooks share: where the model's weights live (never offloaded) and the side
    stream the copies run on. Built once per run, not per micro-batch."""

    def __init__(self, model: torch.nn.Module):
        self.weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.stream = torch.cuda.Stream() if torch.cuda.is_available() else None


class HostOffload(torch.autograd.graph.saved_tensors_hooks):
    """A context manager: tensors saved for backward inside it are kept in host memory (on CUDA only)."""

    def __init__(self, model: torch.nn.Module, state: OffloadState | None = None):
        state = state or OffloadState(model)
        self.weights, self.stream = state.weights, state.stream
        super().__init__(self._pack, self._unpack)

    def _pack(self, tensor: torch.Tensor) -> Any:
        if (self.stream is None or not tensor.is_cuda or not tensor.is_contiguous()
                or tensor.numel() * tensor.element_size() < MIN_BYTES
                or tensor.untyped_storage().data_ptr() in self.weights):
            return tensor
        flat = tensor.view(-1)
        per_piece = PIECE_BYTES // tensor.element_size()
        pieces = []
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            for start in range(0, flat.numel(), per_piece):
                part = flat[start:start + per_piece]
                host = torch.empty(part.numel(), dtype=tensor.dtype, pin_memory=True)
                host.copy_(part, non_blocking=True)
                pieces.append(host)
            copied = torch.cuda.Event()
            copied.record(self.stream)
        tensor.record_stream(self.stream)
        return pieces, copied, tensor.size(), tensor.device

    @staticmethod
    def _unpack(packed: Any) -> torch.Tensor:
        if isinstance(packed, torch.Tensor):
            return packed
        pieces, copied, size, device = packed
        torch.cuda.current_stream().wait_event(copied)
        tensor = torch.empty(size, dtype=pieces[0].dtype, device=device)
        flat, start = tensor.view(-1), 0
        for piece in pieces:
            flat[start:start + piece.numel()].copy_(piece, non_blocking=True)
            start += piece.numel()
        return tensor
