"""No FutureWarning from a training run: axo uses transformers' new checkpointing names where they exist, and
the filters in train/upstream_warnings.py hide exactly the messages peft still causes — this file fails
when upstream stops emitting one of them, so the filter can go."""

from __future__ import annotations

import inspect
import warnings

import pytest
from config_helpers import load
from train_helpers import tiny_lora_config

from axo.train.arguments import checkpointing_enabled, training_arguments
from axo.train.run import train
from axo.train.upstream_warnings import KNOWN_MESSAGES, silence_upstream_deprecations


def _future_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


def test_a_run_with_gradient_checkpointing_raises_no_future_warning(tmp_path, tiny_llama_dir):
    cfg = load(tiny_lora_config(tmp_path, tiny_llama_dir, "run", "save_strategy: 'no'\ngradient_checkpointing: true\n",
                                steps="max_steps: 2")).require()
    assert cfg.gradient_checkpointing_kwargs == {"use_reentrant": False}  # the kwargs name is passed too
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(cfg, progress=False)
    assert _future_warnings(caught) == []
    assert result.steps == 2
    assert any(getattr(m, "gradient_checkpointing", False) for m in result.model.modules())  # it did checkpoint


def test_checkpointing_arguments_use_the_names_this_transformers_reads(tmp_path, tiny_llama_dir):
    from transformers import TrainingArguments

    from axo.config.hardware import detect_hardware

    cfg = load(tiny_lora_config(tmp_path, tiny_llama_dir, "run", "gradient_checkpointing: true\n")).require()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arguments = training_arguments(cfg, 8, False, detect_hardware())
    assert _future_warnings(caught) == []
    assert checkpointing_enabled(arguments)
    new = "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    kwargs = arguments.activation_checkpointing_kwargs if new else arguments.gradient_checkpointing_kwargs
    assert kwargs == {"use_reentrant": False}


def test_each_silenced_message_is_still_what_upstream_emits_and_only_it_is_silenced(tiny_llama_dir):
    import peft
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, PreTrainedModel

    if not hasattr(PreTrainedModel, "is_activation_checkpointing"):
        pytest.skip("this transformers predates the activation_checkpointing names: nothing to silence")

    def emitted(silenced: bool) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if silenced:
                silence_upstream_deprecations()
            model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
            get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))  # reads is_gradient_checkpointing
            model.gradient_checkpointing_enable()  # what peft's prepare_model_for_kbit_training calls
            warnings.warn("another deprecation", FutureWarning)
        return _future_warnings(caught)

    assert emitted(silenced=False) == [*KNOWN_MESSAGES, "another deprecation"]
    assert emitted(silenced=True) == ["another deprecation"]
    # peft's QLoRA preparation still calls the deprecated name (only reachable on CUDA with a 4/8-bit base)
    assert "model.gradient_checkpointing_enable(" in inspect.getsource(peft.utils.other.prepare_model_for_kbit_training)
