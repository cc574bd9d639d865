"""Axolotl training keys that must act: `evals_per_epoch: 0`, `early_stopping_patience`,
`unfrozen_parameters`, `torch_compile*` and `activation_offloading`, each shown doing its job on the tiny
model."""

from __future__ import annotations

import pytest
from config_helpers import BASE, CPU, load
from train_helpers import tiny_lora_config

from axo.config.problems import ConfigError, Severity
from axo.models.freeze import freeze_except, parse_pattern
from axo.train.arguments import training_arguments
from axo.train.run import train


def _full(workspace, model_dir, name: str, extra: str) -> str:
    """The shared tiny run as a full fine-tune (no adapter)."""
    text = tiny_lora_config(workspace, model_dir, name, extra)
    return text.replace("adapter: lora\nlora_r: 4\nlora_alpha: 8\nlora_target_linear: true\n", "")


def test_evals_per_epoch_zero_validates_and_turns_evaluation_off(workspace, tiny_llama_dir):
    loaded = load(BASE + "val_set_size: 0.25\nevals_per_epoch: 0\n")
    assert [p for p in loaded.problems if p.severity is Severity.ERROR] == []
    assert training_arguments(loaded.require(), 8, True, CPU).eval_strategy == "no"
    # with eval_steps, Axolotl reads 0 per epoch as unset: eval_steps decides
    steps = load(BASE + "val_set_size: 0.25\nevals_per_epoch: 0\neval_steps: 2\n").require()
    assert training_arguments(steps, 8, True, CPU).eval_strategy == "steps"
    result = train(load(tiny_lora_config(workspace, tiny_llama_dir, "no-eval", "val_set_size: 0.25\n"
                                         "evals_per_epoch: 0\nsave_strategy: 'no'\n")).require(), progress=False)
    assert result.eval_loss is None and not any("eval_loss" in r for r in result.metrics)


def test_early_stopping_stops_when_eval_loss_stops_improving(workspace, tiny_llama_dir):
    # a learning rate too small to move fp32 weights: the eval loss repeats, so patience 1 stops at step 2
    extra = ("val_set_size: 0.25\neval_steps: 1\nsave_steps: 1\nearly_stopping_patience: 1\n"
             "learning_rate: 1.0e-30\n")
    cfg = load(tiny_lora_config(workspace, tiny_llama_dir, "early", extra, steps="max_steps: 20")).require()
    args = training_arguments(cfg, 6, True, CPU)
    assert args.load_best_model_at_end and args.metric_for_best_model == "eval_loss"
    assert train(cfg, progress=False).steps == 2


def test_unfrozen_parameters_train_only_what_matches(workspace, tiny_llama_dir):
    from safetensors.torch import load_file

    cfg = load(_full(workspace, tiny_llama_dir, "frozen", "unfrozen_parameters: ['^model.layers.1.mlp']\n"
                     "save_strategy: 'no'\n")).require()
    result = train(cfg, progress=False)
    base = load_file(tiny_llama_dir / "model.safetensors")
    tuned = load_file(result.output_dir / "model.safetensors")
    changed = {name for name in base if name in tuned and not (base[name] == tuned[name]).all()}
    assert changed and all(name.startswith("model.layers.1.mlp.") for name in changed)


def test_unfrozen_row_range_leaves_the_other_rows_unchanged(tiny_llama_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert freeze_except(model, ["model.embed_tokens.weight[:8]"]) == 1
    before = model.model.embed_tokens.weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    ids = torch.tensor([[1, 5, 9, 12, 20]])
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    after = model.model.embed_tokens.weight.detach()
    assert not torch.equal(after[:8], before[:8]) and torch.equal(after[8:], before[8:])


def test_unfrozen_pattern_rules_follow_axolotl():
    regex, rows = parse_pattern("layers.2[0-9]+.mlp[3:5]")
    assert rows == (3, 5) and regex.match("layers.25.mlp") and not regex.match("layersX25.mlp")
    assert parse_pattern("lm_head.weight[7]")[1] == (7, 8) and parse_pattern("^x[:4]")[1] == (0, 4)
    assert not parse_pattern("^model.norm")[0].match("base_model.model.model.norm.weight")  # from the start


def test_unfrozen_parameters_matching_nothing_is_an_error(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    with pytest.raises(ConfigError, match="matches none"):
        freeze_except(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), ["^no_such_layer"])


def test_torch_compile_compiles_the_model(workspace, tiny_llama_dir, monkeypatch):
    import torch

    cfg = load(tiny_lora_config(workspace, tiny_llama_dir, "compiled", "torch_compile: true\n"
                                "torch_compile_backend: eager\ntorch_compile_mode: default\n"
                                "save_strategy: 'no'\n", steps="max_steps: 1")).require()
    args = training_arguments(cfg, 8, False, CPU)
    assert (args.torch_compile, args.torch_compile_backend, args.torch_compile_mode) == (True, "eager", "default")
    calls = []

    def spy(model, *a, **k):  # records the call; compiling for real costs ~8 s of CPU and proves nothing more
        calls.append(k)
        return model

    monkeypatch.setattr(torch, "compile", spy)
    train(cfg, progress=False)
    assert calls and calls[0].get("backend") == "eager"


@pytest.mark.parametrize("setting", ["activation_offloading: true", "gradient_checkpointing: offload"])
def test_activation_offloading_moves_saved_activations_to_cpu(setting, workspace, tiny_llama_dir, monkeypatch):
    from axo.train import offload
    from axo.train.recompute import checkpointed_layers

    entered = []
    real = offload.HostOffload

    class Spy(real):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            entered.append(k)

    monkeypatch.setattr(offload, "HostOffload", Spy)
    cfg = load(tiny_lora_config(workspace, tiny_llama_dir, "offload", f"{setting}\nsave_strategy: 'no'\n",
                                steps="max_steps: 2")).require()
    assert not [p for p in load(tiny_lora_config(workspace, tiny_llama_dir, "o", setting)).problems
                if p.key == "gradient_checkpointing"]  # `offload` is implemented: no "not implemented" warning
    result = train(cfg, progress=False)
    assert result.steps == 2 and len(entered) == 2  # one context per training step's forward pass
    # with recompute, every layer is recomputed, the top one too: kept activations would all go to host memory
    recomputed = result.model.config.num_hidden_layers if "gradient_checkpointing" in setting else 0
    assert len(checkpointed_layers(result.model)) == recomputed


def test_unfrozen_parameters_that_are_not_regexes_fail_validation():
    loaded = load(BASE + "unfrozen_parameters: ['^model.(layers']\n")
    assert any(p.key == "unfrozen_parameters" and p.severity is Severity.ERROR for p in loaded.problems)
    ranged = load(BASE + "unfrozen_parameters: ['^model.embed_tokens.weight[:32000]', 'layers.2[0-9]+.mlp']\n")
    assert all(p.key != "unfrozen_parameters" for p in ranged.problems)


def test_early_stopping_without_evaluation_data_is_reported_as_ignored():
    from config_helpers import find

    from axo.config.problems import Kind

    assert "no evaluation data" in find(load(BASE + "early_stopping_patience: 3\n"), "early_stopping_patience",
                                        Kind.CONFLICT).message
    assert not [p for p in load(BASE + "evals_per_epoch: 0\n").problems if p.key == "evals_per_epoch"]
