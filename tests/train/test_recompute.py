"""`gradient_checkpointing_keep_layers`: which layers recompute, and that keeping activations changes nothing
in the numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import load
from train_helpers import tiny_lora_config

from axo.train.recompute import checkpointed_layers
from axo.train.run import train


def _run(tmp_path: Path, model_dir: Path, name: str, extra: str):
    cfg = load(tiny_lora_config(tmp_path, model_dir, name, "gradient_checkpointing: true\n" + extra,
                                steps="max_steps: 3")).require()
    result = train(cfg, progress=False)
    layers = [m for m in result.model.modules() if type(m).__name__.endswith("DecoderLayer")]
    flags = [layer.gradient_checkpointing for layer in layers]
    return [row["loss"] for row in result.metrics if "loss" in row], flags


@pytest.mark.parametrize(("extra", "flags"), [("", [True, False]),
                                              ("gradient_checkpointing_keep_layers: 0\n", [True, True]),
                                              ("gradient_checkpointing_keep_layers: 5\n", [False, False])])
def test_top_layers_keep_their_activations(tmp_path, tiny_llama_dir, extra, flags):
    assert _run(tmp_path, tiny_llama_dir, "run", extra)[1] == flags


def test_keeping_activations_trains_the_same(tmp_path, tiny_llama_dir):
    recomputed, _ = _run(tmp_path, tiny_llama_dir, "all", "gradient_checkpointing_keep_layers: 0\n")
    kept, _ = _run(tmp_path, tiny_llama_dir, "none", "gradient_checkpointing_keep_layers: 2\n")
    assert len(kept) == len(recomputed) == 3
    for a, b in zip(kept, recomputed, strict=True):
        assert abs(a - b) < 1e-5 * max(1.0, abs(b))


def test_checkpointed_layers_lists_only_wrapped_layers(tiny_llama_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    assert checkpointed_layers(model) == []
    # the new name where this transformers has it (5.24 deprecates gradient_checkpointing_enable)
    (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    assert len(checkpointed_layers(model)) == model.config.num_hidden_layers


def test_offloading_recomputes_through_reentrant_checkpoints_and_trains_the_same(tmp_path, tiny_llama_dir):
    """Offloading switches to torch's reentrant checkpoint: its layer inputs pass through the offload hooks."""
    plain, _ = _run(tmp_path, tiny_llama_dir, "plain", "gradient_checkpointing_keep_layers: 0\n"
                    "gradient_checkpointing_kwargs:\n  use_reentrant: false\n")
    cfg = load(tiny_lora_config(tmp_path, tiny_llama_dir, "offloaded", "gradient_checkpointing: true\n"
                                "gradient_checkpointing_keep_layers: 0\nactivation_offloading: true\n",
                                steps="max_steps: 3")).require()
    result = train(cfg, progress=False)
    offloaded = [row["loss"] for row in result.metrics if "loss" in row]
    layers = [m for m in result.model.modules() if type(m).__name__.endswith("DecoderLayer")]
    assert all(layer._gradient_checkpointing_func.keywords["use_reentrant"] for layer in layers)
    assert plain[0] != plain[-1]
    for a, b in zip(offloaded, plain, strict=True):
        assert abs(a - b) < 1e-5 * max(1.0, abs(b))


def test_offloading_beyond_the_machines_host_memory_is_refused():
    """The system kills a process that pins more than the machine has, without a word from Python: `axo train`
    refuses before loading when the plan's offloaded activations would not fit, and says what they take when
    they do."""
    from axo.config.hardware import available_host_memory
    from axo.config.problems import ConfigError
    from axo.train.recompute import _check_host_memory

    available = available_host_memory()
    said: list[str] = []
    with pytest.raises(ConfigError) as refused:
        _check_host_memory(available + 2**30, said.append)
    assert refused.value.problems[0].key == "sequence_len"
    assert "of pinned host memory and this machine has" in str(refused.value) and "axo plan" in str(refused.value)
    _check_host_memory(available // 2, said.append)
    _check_host_memory(0, said.append)  # nothing offloaded: nothing said
    assert len(said) == 2 and said[1].startswith(f"host memory: the offloaded activations pin about "
                                                 f"{available / 2 / 2**30:.1f} GiB")
