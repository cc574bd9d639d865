"""Optimizer names: every name Axolotl 0.21 accepts validates; what each needs is checked when training
starts; Muon (torch's) and the transformers names run for real on the tiny model."""

from __future__ import annotations

import importlib.util
import math

import pytest
from config_helpers import BASE, CPU, H100, load
from train_helpers import tiny_lora_config

from axo.config.problems import ConfigError, Severity
from axo.config.schema.names import (
    AXOLOTL_OPTIMIZERS,
    OPTIMIZERS,
    TRANSFORMERS_OPTIMIZERS,
)
from axo.train.arguments import training_arguments
from axo.train.optimizers import AXOLOTL_ONLY, check_optimizer, muon_with_adamw


def test_every_installed_transformers_optimizer_name_is_accepted():
    from transformers.training_args import OptimizerNames

    assert {name.value for name in OptimizerNames} <= TRANSFORMERS_OPTIMIZERS


def test_axolotl_custom_optimizer_names_are_accepted():
    # Axolotl 0.21's `CustomSupportedOptimizers` (axolotl/utils/schemas/enums.py), read from the installed oracle
    axolotl = {"optimi_adamw", "ao_adamw_4bit", "ao_adamw_8bit", "ao_adamw_fp8", "adopt_adamw", "adamc",
               "came_pytorch", "muon", "muon_8bit", "dion", "sinkgd", "polora", "flash_adamw", "flash_adam",
               "flash_sgd", "flash_sgdw", "flash_lion", "scao", "q_galore_adamw8bit"}
    assert axolotl == AXOLOTL_OPTIMIZERS


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_accepted_name_validates_on_any_machine(name):
    errors = [p for p in load(BASE + f"optimizer: {name}\n").problems if p.severity is Severity.ERROR]
    assert errors == []


def test_a_misspelt_name_is_refused_with_the_closest():
    loaded = load(BASE + "optimizer: adamw_torch_9bit\n")
    assert "did you mean 'adamw_torch_8bit'" in next(p.message for p in loaded.problems if p.key == "optimizer")


def _cfg(extra: str):
    return load(BASE + extra).require()


@pytest.mark.skipif(importlib.util.find_spec("torchao") is not None, reason="torchao is installed here")
def test_torchao_optimizer_names_the_package_at_train_time():
    with pytest.raises(ConfigError) as raised:
        check_optimizer(_cfg("optimizer: adamw_torch_8bit\n"), H100)
    assert "torchao" in raised.value.problems[0].message and "pip install torchao" in raised.value.problems[0].hint


def test_cuda_only_optimizer_is_refused_without_a_gpu(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "torchao" else real(name, *a))
    with pytest.raises(ConfigError) as raised:
        training_arguments(_cfg("optimizer: ao_adamw_fp8\n"), 8, False, CPU)
    assert "needs a CUDA GPU" in raised.value.problems[0].message
    # torchao's 4/8-bit AdamW run on CPU (checked with torchao 0.18, torch 2.13): not refused here
    assert training_arguments(_cfg("optimizer: adamw_torch_4bit\n"), 8, False, CPU).optim == "adamw_torch_4bit"


@pytest.mark.skipif(importlib.util.find_spec("optimi") is not None, reason="torch-optimi is installed here")
def test_package_optimizer_transformers_lacks_names_the_package():
    with pytest.raises(ConfigError) as raised:
        check_optimizer(_cfg("optimizer: optimi_adamw\n"), CPU)
    assert "torch-optimi" in raised.value.problems[0].hint


@pytest.mark.parametrize("name", sorted(AXOLOTL_ONLY))
def test_axolotl_in_house_optimizers_are_refused_with_an_alternative(name):
    with pytest.raises(ConfigError) as raised:
        check_optimizer(_cfg(f"optimizer: {name}\n"), H100)
    assert f"optimizer: {AXOLOTL_ONLY[name]}" in raised.value.problems[0].hint


def test_axolotl_torchao_names_map_to_transformers_names(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "torchao" else real(name, *a))
    assert check_optimizer(_cfg("optimizer: ao_adamw_8bit\n"), H100) == "adamw_torch_8bit"


def test_muon_under_deepspeed_is_refused():
    with pytest.raises(ConfigError, match="DeepSpeed or FSDP"):
        check_optimizer(_cfg("optimizer: muon\nfsdp_version: 2\n"), H100)


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest(tiny_llama_dir):
    import torch

    from axo.models.loader import load_model
    from axo.models.tokenizer import load_tokenizer

    cfg = load(BASE.replace("./m", str(tiny_llama_dir)) + "optimizer: muon\nweight_decay: 0.01\n").require()
    model, _ = load_model(cfg, load_tokenizer(cfg))
    optimizer = muon_with_adamw(cfg, model)
    muon = {id(p) for g in optimizer.parts["muon"].param_groups for p in g["params"]}
    for name, parameter in model.named_parameters():
        hidden_matrix = parameter.ndim == 2 and "embed" not in name and "lm_head" not in name
        assert (id(parameter) in muon) == hidden_matrix, name
    assert isinstance(optimizer.parts["muon"], torch.optim.Muon)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model(input_ids=torch.tensor([[1, 2, 3, 4]]), labels=torch.tensor([[1, 2, 3, 4]])).loss.backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert "model.layers.0.self_attn.q_proj.weight" in changed and "model.norm.weight" in changed
    state = optimizer.state_dict()
    optimizer.load_state_dict(state)  # what a checkpoint save and resume do
    assert set(state) == {"muon", "adamw"}


def test_muon_trains_a_lora_run(workspace, tiny_llama_dir):
    from axo.train.run import train

    cfg = load(tiny_lora_config(workspace, tiny_llama_dir, "muon", "optimizer: muon\nsave_strategy: 'no'\n"),
               ).require()
    result = train(cfg, progress=False)
    losses = [r["loss"] for r in result.metrics if "loss" in r]
    assert result.steps == 4 and all(math.isfinite(loss) for loss in losses)


def test_package_optimizers_are_built_over_the_trainable_parameters(monkeypatch, tiny_llama_dir):
    """The path optimi/came/flashoptim/scao/torchao-fp8 names take, with torch's AdamW standing in for the
    package class (those packages are not installed here)."""
    import torch

    from axo.train import optimizers

    monkeypatch.setitem(optimizers._PACKAGE_CLASSES, "optimi_adamw", ("torch.optim", "AdamW"))
    cfg = load(BASE + "optimizer: optimi_adamw\nadam_beta2: 0.95\noptim_args: 'amsgrad=true'\n").require()
    model = torch.nn.Linear(4, 4)
    model.bias.requires_grad_(False)
    built = optimizers.custom_optimizer(cfg, model)
    group = built.param_groups[0]
    assert isinstance(built, torch.optim.AdamW) and group["params"] == [model.weight]
    assert group["betas"] == (0.9, 0.95) and group["amsgrad"] is True and group["lr"] == cfg.learning_rate
