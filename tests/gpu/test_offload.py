"""GPU checks of activation offloading (train/offload.py): a large saved tensor is pinned in pieces that take
exactly what `plan.memory.pinned_bytes` says (not torch's next power of two), and a model trained through it gets
the loss and gradients it gets with everything on the GPU."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


def _empty_pinned_cache() -> None:
    torch._C._host_emptyCache()  # pinned blocks freed earlier would otherwise be reused, not counted


def _pinned_now() -> int:
    return int(torch.cuda.host_memory_stats()["allocated_bytes.current"])


def test_a_saved_tensor_is_pinned_in_pieces_and_comes_back_intact():
    from axo.plan.memory import PIECE_BYTES, pinned_bytes
    from axo.train.offload import HostOffload

    if not torch.cuda.is_available():
        pytest.fail("run on a CUDA machine")
    _empty_pinned_cache()
    size = 5 * PIECE_BYTES // 2  # 160 MiB: whole, torch's allocator would pin 256 MiB
    x = torch.randn(size // 2, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    before = _pinned_now()
    with HostOffload(torch.nn.Linear(1, 1)):
        y = torch.sin(x)  # saves x
    torch.cuda.synchronize()
    assert _pinned_now() - before == pinned_bytes(size) == size
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, torch.cos(x.detach()))


def test_offloaded_training_matches_training_on_the_gpu(tiny_llama_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from axo.train.offload import MIN_BYTES, HostOffload, OffloadState

    def loss_and_grads(offload: bool):
        model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16, device_map={"": 0})
        torch.manual_seed(0)
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                 init_lora_weights=False))
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        model.enable_input_require_grads()
        model.train()
        ids = torch.randint(5, 200, (2, 4096), generator=torch.Generator().manual_seed(3)).cuda()
        context = HostOffload(model, OffloadState(model)) if offload else torch.autograd.graph.saved_tensors_hooks(
            lambda t: t, lambda t: t)
        _empty_pinned_cache()
        before = _pinned_now()
        with context:
            loss = model(input_ids=ids, labels=ids).loss
        torch.cuda.synchronize()
        pinned = _pinned_now() - before
        loss.backward()
        return loss.item(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}, pinned

    plain_loss, plain, nothing = loss_and_grads(False)
    loss, grads, pinned = loss_and_grads(True)
    assert nothing < MIN_BYTES, nothing  # no activation pinned (the loss's checks read a byte or two through it)
    assert pinned >= 2 * 2 * 4096 * 64 * 2, pinned  # at least both layers' 1 MiB inputs went to host
    assert loss == plain_loss, (loss, plain_loss)
    assert grads.keys() == plain.keys()
    # the same values come back, so only the order cuBLAS sums in may differ (float32 adapter gradients)
    relative = {name: ((grads[name] - plain[name]).abs().max() / plain[name].abs().max()).item() for name in plain}
    assert max(relative.values()) <= 1e-4, relative
