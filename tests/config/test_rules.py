"""Conflicting settings are errors that spell out the fix; settings with no effect are warnings."""

from __future__ import annotations

import pytest
from config_helpers import BASE, find, load

from axo.config.problems import Kind, Severity

CONFLICTS = [
    ("warmup_steps: 10\nwarmup_ratio: 0.1\n", "warmup_ratio", "warmup_steps"),
    ("val_set_size: 0.1\ntest_datasets:\n  - path: t.jsonl\n    type: alpaca\n", "val_set_size", "test_datasets"),
    ("batch_size: 8\ngradient_accumulation_steps: 2\n", "batch_size", "gradient_accumulation_steps"),
    ("adapter: qlora\n", "adapter", "load_in_4bit: true"),
    ("adapter: qlora\nload_in_8bit: true\n", "load_in_8bit", "load_in_4bit: true"),
    ("bf16: true\nfp16: true\n", "fp16", "bf16: true"),
    ("val_set_size: 0.1\nevals_per_epoch: 2\neval_steps: 10\n", "evals_per_epoch", "Keep one"),
    ("saves_per_epoch: 2\nsave_steps: 10\n", "saves_per_epoch", "Keep one"),
    ("load_in_4bit: true\n", "load_in_4bit", "adapter: qlora"),
    ("load_in_4bit: true\nload_in_8bit: true\nadapter: lora\n", "load_in_4bit", "Pick one"),
    ("deepspeed: ds.json\nfsdp_version: 2\n", "deepspeed", "Remove"),
    ("micro_batch_size: 3\nbatch_size: 8\n", "batch_size", "multiple"),
    ("save_strategy: epoch\nsave_steps: 10\n", "save_strategy", "save_strategy: steps"),
    ("chat_template: jinja\n", "chat_template", "chat_template_jinja"),
]


@pytest.mark.parametrize("extra, key, fix", CONFLICTS, ids=[c[1] + "-" + str(i) for i, c in enumerate(CONFLICTS)])
def test_conflict_is_an_error_with_the_fix(extra, key, fix):
    loaded = load(BASE + extra)
    problem = find(loaded, key, Kind.CONFLICT, Severity.ERROR)
    assert fix in (problem.message + " " + (problem.hint or ""))
    assert problem.hint, "a conflict must say how to fix it"
    assert not loaded.ok and loaded.config is None


def test_qlora_with_4bit_is_fine():
    cfg = load(BASE + "adapter: qlora\nload_in_4bit: true\n").require()
    assert cfg.adapter == "qlora"


def test_zero_val_set_size_with_test_datasets_is_fine():
    load(BASE + "val_set_size: 0.0\ntest_datasets:\n  - path: t.jsonl\n    type: alpaca\n").require()


def test_missing_datasets_is_an_error():
    problem = find(load("base_model: ./m\nlearning_rate: 1e-4\n"), "datasets")
    assert problem.severity is Severity.ERROR and "- path:" in problem.hint


def test_lora_keys_without_adapter_are_reported_as_ignored():
    problem = find(load(BASE + "lora_r: 16\n"), "lora_r", Kind.CONFLICT)
    assert problem.severity is Severity.WARNING and "full fine-tune" in problem.message


def test_conflict_points_at_the_line():
    loaded = load(BASE + "warmup_steps: 10\nwarmup_ratio: 0.1\n")
    assert find(loaded, "warmup_ratio", Kind.CONFLICT).line == 7


def test_fused_lora_keys_default_on_for_lora_and_refuse_dora_and_8bit():
    from axo.models.kernels import fused_lora_groups

    assert fused_lora_groups(load(BASE + "adapter: lora\n").require()) == {"qkv", "o", "mlp"}
    assert fused_lora_groups(load(BASE + "adapter: lora\nlora_mlp_kernel: false\n").require()) == {"qkv", "o"}
    assert fused_lora_groups(load(BASE + "adapter: lora\npeft_use_dora: true\n").require()) == set()
    assert fused_lora_groups(load(BASE).require()) == set()
    dora = load(BASE + "adapter: lora\npeft_use_dora: true\nlora_qkv_kernel: true\n")
    assert "peft_use_dora" in find(dora, "lora_qkv_kernel", Kind.CONFLICT).message
    eight_bit = load(BASE + "adapter: lora\nload_in_8bit: true\nlora_mlp_kernel: true\n")
    assert "8-bit" in find(eight_bit, "lora_mlp_kernel", Kind.CONFLICT).message
    full = load(BASE + "lora_o_kernel: true\n")
    assert "full fine-tune" in find(full, "lora_o_kernel", Kind.CONFLICT).message


def test_gradient_checkpointing_offload_is_checkpointing_with_offloaded_activations():
    loaded = load(BASE + "gradient_checkpointing: offload\n")
    assert loaded.ok and loaded.config.gradient_checkpointing == "offload"
    assert not [p for p in loaded.problems if p.key == "gradient_checkpointing"]  # implemented: nothing to warn


@pytest.mark.parametrize(("text", "key"), [("embeddings_skip_upcast: true\n", "embeddings_skip_upcast"),
                                           ("gradient_checkpointing_keep_layers: 2\n", "gradient_checkpointing_keep_layers")])
def test_speed_switches_without_their_feature_are_reported_as_ignored(text, key):
    finding = find(load(BASE + "adapter: lora\n" + text), key, Kind.CONFLICT)
    assert finding.severity == Severity.WARNING and "no effect" in finding.message


def test_fsdp_refuses_liger_fused_cross_entropy_and_double_checkpointing():
    flce = load(BASE + "fsdp_version: 2\nliger_fused_linear_cross_entropy: true\n")
    assert "sharded" in find(flce, "liger_fused_linear_cross_entropy", Kind.CONFLICT).message
    double = load(BASE + "gradient_checkpointing: true\nfsdp_version: 2\nfsdp_config:\n  activation_checkpointing: true\n")
    assert "activation_checkpointing" in find(double, "gradient_checkpointing", Kind.CONFLICT).message
    assert load(BASE + "fsdp_version: 2\nfsdp_config:\n  activation_checkpointing: true\n").ok
