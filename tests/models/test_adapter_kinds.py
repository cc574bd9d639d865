"""Every adapter kind in the registry (models/adapters/) trains through `axo train` on a tiny model: only the
adapter's weights change, the saved adapter reloads with plain `peft.PeftModel.from_pretrained` and gives the
logits it had in training, and a kind that merges gives the same logits merged into the base."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from config_helpers import load
from train_helpers import tiny_lora_config

from axo.models.adapters import ADAPTERS, adapter_kind
from axo.train.run import train

# Small sizes for the tiny model (hidden 64, MLP 128); everything else is PEFT's default.
KIND_KEYS = {"oft": "oft_block_size: 16\n", "boft": "boft_block_size: 8\n", "vera": "vera_r: 16\n",
             "prefix_tuning": "prefix_num_virtual_tokens: 4\n", "prompt_tuning": "prompt_tuning_num_virtual_tokens: 4\n",
             "adalora": "adalora_init_r: 6\nadalora_target_r: 2\n"}
CPU_KINDS = [name for name in ADAPTERS.all() if name != "qlora"]  # qlora needs a 4-bit base (CUDA)


@pytest.mark.parametrize("kind", CPU_KINDS)
def test_every_kind_trains_saves_reloads_and_merges(kind, tmp_path: Path, tiny_llama_dir: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    text = tiny_lora_config(tmp_path, tiny_llama_dir, "run", KIND_KEYS.get(kind, "") + "save_strategy: 'no'\n",
                            steps="max_steps: 3").replace("adapter: lora", f"adapter: {kind}")
    result = train(load(text).require(), progress=False)
    trained = result.model.eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    original = dict(base.named_parameters())
    frozen = {name.replace("base_model.model.", "").replace(".base_layer", ""): p
              for name, p in trained.named_parameters() if not p.requires_grad}
    assert frozen and all(torch.equal(p, original[name]) for name, p in frozen.items() if name in original)
    assert any(p.requires_grad for p in trained.parameters())
    ids = torch.randint(5, 200, (2, 12))
    with torch.no_grad():
        want = trained(input_ids=ids).logits
        reloaded = PeftModel.from_pretrained(base, tmp_path / "run").eval()
        assert torch.allclose(reloaded(input_ids=ids).logits, want, atol=1e-5)
        if adapter_kind(kind).merges:
            merged = reloaded.merge_and_unload()
            assert torch.allclose(merged(input_ids=ids).logits, want, atol=1e-4)


def test_an_unknown_kind_lists_the_known_ones(tmp_path: Path, tiny_llama_dir: Path):
    loaded = load(tiny_lora_config(tmp_path, tiny_llama_dir, "run").replace("adapter: lora", "adapter: lorra"))
    problem = next(p for p in loaded.problems if p.key == "adapter")
    assert "'lorra' is not an adapter kind axo knows" in problem.message and "ia3" in problem.hint


@pytest.mark.parametrize(("extra", "key", "fragment"), [
    ("adapter: loha\nload_in_4bit: true\n", "load_in_4bit", "cannot train on a 4-bit base"),
    ("adapter: prompt_tuning\nsample_packing: true\n", "sample_packing", "virtual tokens"),
])
def test_combinations_a_kind_cannot_do_are_errors(tmp_path: Path, tiny_llama_dir: Path, extra, key, fragment):
    text = tiny_lora_config(tmp_path, tiny_llama_dir, "run").replace("adapter: lora\n", extra)
    problems = [p for p in load(text).problems if p.key == key and fragment in p.message]
    assert problems and problems[0].severity.value == "error"


def test_another_kinds_keys_are_reported_as_ignored(tmp_path: Path, tiny_llama_dir: Path):
    loaded = load(tiny_lora_config(tmp_path, tiny_llama_dir, "run", "loha_r: 4\n"))
    problem = next(p for p in loaded.problems if p.key == "loha_r")
    assert "key of `adapter: loha`" in problem.message and problem.severity.value == "warning"
