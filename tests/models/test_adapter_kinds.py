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
             "prefix_tuning": "prefix_num_virtual_tokens: 4\n",  # prompt_tuning: axo's default of 20
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


def _trained_run(tmp_path: Path, model_dir: Path, kind: str) -> Path:
    text = tiny_lora_config(tmp_path, model_dir, kind, KIND_KEYS.get(kind, "") + "save_strategy: 'no'\n",
                            steps="max_steps: 2").replace("adapter: lora", f"adapter: {kind}")
    train(load(text).require(), progress=False)
    return tmp_path / kind


def test_merge_writes_a_plain_model_for_a_kind_peft_merges(tmp_path: Path, tiny_llama_dir: Path, workspace):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from typer.testing import CliRunner

    from axo.cli.main import app

    run = _trained_run(tmp_path, tiny_llama_dir, "loha")
    result = CliRunner().invoke(app, ["merge", str(run)])
    assert result.exit_code == 0, result.output
    assert "merged 14 adapted layers" in result.output
    ids = torch.randint(5, 200, (1, 10))
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    with torch.no_grad():
        want = PeftModel.from_pretrained(base, run).eval()(input_ids=ids).logits
        merged = AutoModelForCausalLM.from_pretrained(run / "merged", dtype=torch.float32).eval()
        assert torch.allclose(merged(input_ids=ids).logits, want, atol=1e-4)


def test_merge_says_prompt_tuning_has_nothing_to_merge(tmp_path: Path, tiny_llama_dir: Path, workspace):
    from typer.testing import CliRunner

    from axo.cli.main import app

    run = _trained_run(tmp_path, tiny_llama_dir, "prompt_tuning")
    result = CliRunner().invoke(app, ["merge-lora", str(run)])
    assert result.exit_code == 1
    assert "is PROMPT_TUNING" in result.output and "nothing to merge" in result.output
    assert not (run / "merged").exists()


@pytest.mark.parametrize("kind", ["ia3", "prefix_tuning"])
def test_inference_runs_a_non_lora_kind(kind, tmp_path: Path, tiny_llama_dir: Path, workspace):
    import json

    from typer.testing import CliRunner

    from axo.cli.main import app

    run = _trained_run(tmp_path, tiny_llama_dir, kind)
    (tmp_path / "asks.jsonl").write_text(json.dumps({"instruction": "Tip 1?"}) + "\n")
    result = CliRunner().invoke(app, ["inference", str(run), "-i", str(tmp_path / "asks.jsonl"), "-o",
                                      str(tmp_path / "answers.jsonl"), "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    answer = json.loads((tmp_path / "answers.jsonl").read_text())
    assert answer["instruction"] == "Tip 1?" and isinstance(answer["output"], str)


@pytest.mark.parametrize("kind", [k for k in CPU_KINDS if k not in ("lora", "adalora")])  # lora: tests/train
def test_a_resumed_run_continues_exactly(kind, tmp_path: Path, tiny_llama_dir: Path):
    """Trained 4 steps with checkpoints at 2 and 4; then back to checkpoint 2 and resumed: steps 3 and 4 again."""
    import shutil

    text = tiny_lora_config(tmp_path, tiny_llama_dir, "run", KIND_KEYS.get(kind, "") + "save_steps: 2\n",
                            steps="max_steps: 4").replace("adapter: lora", f"adapter: {kind}")
    cfg = load(text).require()
    first = [r["loss"] for r in train(cfg, progress=False).metrics if "loss" in r]
    shutil.rmtree(tmp_path / "run" / "checkpoint-4")
    again = [r["loss"] for r in train(cfg, progress=False, resume=True).metrics if "loss" in r]
    assert again == pytest.approx(first[2:], abs=1e-6)


def test_adalora_resumes_exactly_with_its_rank_allocator(tmp_path: Path, tiny_llama_dir: Path):
    """6 steps (warm-up 1, ranks pruned at steps 2-4, fixed at 5, masked at 6), checkpoints at 2, 4, 6; back to
    checkpoint 2 and resumed: the same losses and the same pruned adapter. Without the allocator's saved scores
    step 3's pruning would differ. A checkpoint without that state is refused before anything loads."""
    import json
    import shutil

    from safetensors.torch import load_file

    from axo.config.problems import ConfigError

    text = tiny_lora_config(tmp_path, tiny_llama_dir, "run", KIND_KEYS["adalora"] + "save_steps: 2\n",
                            steps="max_steps: 6").replace("adapter: lora", "adapter: adalora")
    cfg = load(text).require()
    run = tmp_path / "run"
    first = [r["loss"] for r in train(cfg, progress=False).metrics if "loss" in r]
    weights, config = load_file(run / "adapter_model.safetensors"), json.loads((run / "adapter_config.json").read_text())
    assert config["rank_pattern"] and not all(all(mask) for mask in config["rank_pattern"].values())  # pruned
    shutil.rmtree(run / "checkpoint-4")
    shutil.rmtree(run / "checkpoint-6")
    again = [r["loss"] for r in train(cfg, progress=False, resume=True).metrics if "loss" in r]
    assert again == pytest.approx(first[2:], abs=1e-6)
    assert json.loads((run / "adapter_config.json").read_text())["rank_pattern"] == config["rank_pattern"]
    resumed = load_file(run / "adapter_model.safetensors")
    assert resumed.keys() == weights.keys() and all(torch.allclose(resumed[k], weights[k], atol=1e-6) for k in weights)
    (run / "checkpoint-6" / "adalora_state.safetensors").unlink()
    with pytest.raises(ConfigError, match="without AdaLoRA's rank allocator state"):
        train(cfg, progress=False, resume=True)


def test_a_lora_key_a_kind_cannot_take_is_named(tmp_path: Path, tiny_llama_dir: Path):
    from axo.config.problems import ConfigError

    text = tiny_lora_config(tmp_path, tiny_llama_dir, "run", "peft_layers_to_transform: [1]\n").replace(
        "adapter: lora", "adapter: ia3")
    with pytest.raises(ConfigError) as caught:
        train(load(text).require(), progress=False)
    problem = caught.value.problems[0]
    assert problem.key == "peft_layers_to_transform" and "IA3Config has no `layers_to_transform`" in problem.message


@pytest.mark.parametrize("kind", CPU_KINDS)
def test_every_kind_generates_what_its_forward_pass_predicts(kind, tmp_path: Path, tiny_llama_dir: Path):
    """`axo inference`'s generation (batched, left-padded, with the KV cache; streamed for the server) gives the
    tokens of a plain greedy loop over the forward pass the kind trained with. peft 0.21's own generate path misses
    them for prompt and prefix tuning (infer/virtual_tokens.py)."""
    from axo.infer.generate import GenerationSettings, generate_texts, stream_text
    from axo.infer.loading import load_for_inference
    from axo.infer.run_dir import open_run

    model, tokenizer = load_for_inference(open_run(_trained_run(tmp_path, tiny_llama_dir, kind)))
    prompts = ["### Instruction:\nTip 3?\n\n### Response:\n", "### Instruction:\nHi\n\n### Response:\n"]
    settings = GenerationSettings(max_new_tokens=6)
    got = generate_texts(model, tokenizer, prompts, settings)
    for prompt, reply in zip(prompts, got):
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            for _ in range(reply["completion_tokens"]):
                ids = torch.cat([ids, model(input_ids=ids).logits[:, -1:].argmax(-1)], dim=1)
        new = ids[0, ids.shape[1] - reply["completion_tokens"]:]
        assert reply["text"] == tokenizer.decode(new, skip_special_tokens=True)
    assert "".join(stream_text(model, tokenizer, prompts[0], settings)) == got[0]["text"]


def test_adalora_refuses_a_resume_that_skipped_its_allocator_state():
    """An engine that loads checkpoints itself (DeepSpeed/FSDP) would resume without the rank allocator's state:
    the run stops at its first step with the reason, instead of pruning differently without a word."""
    from transformers import TrainerState

    from axo.config.problems import ConfigError

    budget = adapter_kind("adalora").callbacks(model=None)[0]
    budget.on_train_begin(None, TrainerState(global_step=0), None)  # a fresh run starts
    with pytest.raises(ConfigError, match="without its rank allocator's state"):
        budget.on_train_begin(None, TrainerState(global_step=2), None)
