"""axo's preference modes compute what TRL's own trainers compute (issue 18, "Measure"): for one batch of the
tiny llama in fp32, the loss and the LoRA gradients of DPO, IPO, ORPO, SimPO and KTO equal plain TRL + PEFT's;
the reference log-probs (adapter disabled, through axo's fused LoRA path) equal a separately loaded base
model's; and a 2-process gloo DPO run trains like one process with the same global batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from config_helpers import load
from train.preference_helpers import (
    axo_trainer,
    completion_logps,
    config_text,
    first_batch,
    lora_parameters,
    loss_and_grads,
    set_same_adapter,
    trl_trainer,
    write_rows,
)

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("preference-parity")
    write_rows(directory)
    return directory


def _fused_layers(model) -> int:
    """LoRA layers running axo's fused forward (models/fused_lora.py binds it on the instance)."""
    return sum("forward" in vars(module) and hasattr(module, "lora_A") for module in model.modules())


@pytest.mark.parametrize("method", ["dpo", "ipo", "orpo", "simpo", "kto"])
def test_loss_and_lora_gradients_equal_trls_trainer(folder, tiny_llama_dir, method):
    """The same adapter (non-zero lora_B, so policy and reference differ), the same text rows, each trainer's
    own tokenization and collator: identical batches, and loss and every LoRA gradient within 1e-5."""
    ours = axo_trainer(folder, tiny_llama_dir, method)
    theirs = trl_trainer(folder, tiny_llama_dir, method, ours.train_dataset.select_columns(
        [c for c in ours.train_dataset.column_names if c in ("prompt", "chosen", "rejected", "completion", "label")]),
        ours.processing_class)
    assert _fused_layers(ours.model) == 14 and _fused_layers(theirs.model) == 0  # 2 layers × 7 projections
    set_same_adapter(ours.model, theirs.model)
    batch, trl_batch = first_batch(ours), first_batch(theirs)
    assert batch.keys() == trl_batch.keys()
    for key, value in batch.items():
        assert torch.equal(value, trl_batch[key]) if torch.is_tensor(value) else value == trl_batch[key], key

    loss, grads = loss_and_grads(ours, batch)
    trl_loss, trl_grads = loss_and_grads(theirs, trl_batch)
    assert grads.keys() == trl_grads.keys() and len(grads) == 28
    worst = max((grads[n] - trl_grads[n]).abs().max().item() for n in grads)
    scale = max(g.abs().max().item() for g in trl_grads.values())
    print(f"{method}: loss {loss:.6f} vs {trl_loss:.6f} (|Δ| {abs(loss - trl_loss):.2e}); max |Δgrad| {worst:.2e} "
          f"of max |grad| {scale:.2e}")
    assert abs(loss - trl_loss) <= TOLERANCE
    assert worst <= TOLERANCE and scale > 1e-3  # gradients that are there, and equal


@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_reference_log_probs_are_the_base_models(folder, tiny_llama_dir, method):
    """With a non-zero adapter, the trainer's reference log-probs — the base with the adapter disabled, taken
    through the fused LoRA layers — equal a separately loaded base model's, while the policy's differ."""
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import use_adapter

    trainer = axo_trainer(folder, tiny_llama_dir, method)
    model = trainer.model
    assert list(model.peft_config) == ["default"]  # no "ref" adapter copy: the reference is the bare base
    with torch.no_grad():
        for name, parameter in lora_parameters(model).items():
            if ".lora_B." in name:
                parameter.normal_(0, 0.2, generator=torch.Generator().manual_seed(len(name)))
    batch = first_batch(trainer)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    keys = ("input_ids", "attention_mask", "completion_mask")
    want = completion_logps(base, {key: batch[key] for key in keys})

    model.eval()
    got = torch.cat(trainer.compute_ref_log_probs(model, batch)) if method == "dpo" else \
        trainer.compute_ref_log_probs(model, batch)[0]
    with use_adapter(model, None):  # what TRL does without a "ref" adapter copy: disable the adapters
        disabled = completion_logps(model, {key: batch[key] for key in keys})
    policy = completion_logps(model, {key: batch[key] for key in keys})
    print(f"{method}: reference |Δ| {(got - want).abs().max():.2e}, adapter disabled |Δ| "
          f"{(disabled - want).abs().max():.2e}, policy moved by {(policy - want).abs().max():.2e}")
    # sums of ~10 token log-probs near -70: 1e-5 relative (fp32's spacing there is 7.6e-6; TRL's fused head
    # sums in another order)
    bound = TOLERANCE * want.abs().clamp(min=1)
    assert ((got - want).abs() <= bound).all() and ((disabled - want).abs() <= bound).all()
    assert (policy - want).abs().max() > 0.05  # the adapter does change the outputs


def _adapter(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "adapter_model.safetensors")


def _losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def test_two_processes_train_dpo_like_one(folder, tiny_llama_dir):
    """DPO over gloo on CPU: 2 processes × micro-batch 1 × accumulation 2 give one process × micro-batch 2 ×
    accumulation 2's losses and final adapter after 2 steps (8 pairs)."""
    from axo.train.launch import launch
    from axo.train.run import train

    pairs = folder / "pairs.jsonl"
    rows = pairs.read_text().splitlines()
    (folder / "pairs8.jsonl").write_text("\n".join(rows + [r.replace("plus", "and") for r in rows]) + "\n")
    extra = f"datasets:\n  - path: {folder / 'pairs8.jsonl'}\n    type: chatml.intel\n"

    def text(name: str, micro_batch: int) -> str:
        body = config_text(folder, tiny_llama_dir, "dpo", name, micro_batch=micro_batch, accumulation=2, steps=2)
        return body[:body.index("datasets:")] + extra

    single = train(load(text("one", 2)).require(), progress=False)
    config = folder / "two.yml"
    config.write_text(text("two", 1))
    assert launch(config, 2) == 0
    one, two = folder / "one", folder / "two"
    assert single.steps == 2 and len(_losses(two)) == 2
    loss_gap = max(abs(a - b) for a, b in zip(_losses(one), _losses(two), strict=True))
    weights, other = _adapter(one), _adapter(two)
    assert weights.keys() == other.keys()
    weight_gap = max((weights[k] - other[k]).abs().max().item() for k in weights)
    moved = max((weights[k]).abs().max().item() for k in weights if "lora_B" in k)
    print(f"2 processes vs 1: max |Δloss| {loss_gap:.2e}, max |Δadapter| {weight_gap:.2e} (lora_B up to {moved:.2e})")
    assert loss_gap <= 1e-5 and weight_gap <= 1e-5 and moved > 1e-3
    assert json.loads((two / "provenance.json").read_text())["processes"] == 2
