"""Axolotl's defaults and derived values (its normalize_config), including hardware-dependent ones."""

from __future__ import annotations

import pytest
from config_helpers import BASE, CPU, H100, V100, find, load

from axo.config.problems import Kind


def test_axolotl_defaults():
    cfg = load(BASE).require()
    assert cfg.seed == 42
    assert cfg.sequence_len == 512
    assert cfg.output_dir == "./model-out"
    assert cfg.lr_scheduler == "cosine"
    assert cfg.optimizer == "adamw_torch_fused"
    assert cfg.train_on_inputs is False
    assert cfg.val_set_size == 0.0
    assert cfg.trust_remote_code is False
    assert cfg.micro_batch_size == 1 and cfg.gradient_accumulation_steps == 1 and cfg.batch_size == 1
    assert cfg.num_epochs == 1.0
    assert cfg.excess_length_strategy == "drop"
    assert cfg.shuffle_merged_datasets is True
    assert cfg.dataset_prepared_path == "last_run_prepared"
    assert cfg.adapter is None  # blank adapter = full fine-tune
    assert cfg.strict is False


def test_gradient_accumulation_derived_from_batch_size():
    loaded = load(BASE + "micro_batch_size: 4\nbatch_size: 32\n")
    cfg = loaded.require()
    assert cfg.gradient_accumulation_steps == 8 and cfg.batch_size == 32 and cfg.eval_batch_size == 4
    assert "= 8" in find(loaded, "gradient_accumulation_steps", Kind.DERIVED).message


def test_batch_size_derived_from_gradient_accumulation():
    cfg = load(BASE + "micro_batch_size: 2\ngradient_accumulation_steps: 3\neval_batch_size: 5\n").require()
    assert cfg.batch_size == 6 and cfg.eval_batch_size == 5


@pytest.mark.parametrize(
    "hardware, extra, bf16, fp16",
    [
        (H100, "", True, False),  # auto on Hopper -> bf16
        (V100, "", False, True),  # auto on Volta -> fp16, as Axolotl
        (CPU, "", False, False),  # auto on CPU -> fp32
        (H100, "fp16: true\n", False, True),  # auto yields to an explicit fp16
        (CPU, "bf16: true\n", True, False),
    ],
)
def test_bf16_auto_resolution(hardware, extra, bf16, fp16):
    cfg = load(BASE + extra, hardware=hardware).require()
    assert (cfg.bf16, cfg.fp16) == (bf16, fp16)


def test_tf32_auto_follows_the_gpu():
    assert load(BASE, hardware=H100).require().tf32 is True
    assert load(BASE, hardware=CPU).require().tf32 is False
    assert load(BASE + "tf32: true\n", hardware=CPU).require().tf32 is True


def test_evals_and_saves_per_epoch_become_step_fractions():
    loaded = load(BASE + "val_set_size: 0.1\nevals_per_epoch: 4\nsaves_per_epoch: 2\nnum_epochs: 2\n")
    cfg = loaded.require()
    assert cfg.eval_steps == pytest.approx(1 / 8) and cfg.save_steps == pytest.approx(1 / 4)


def test_evals_per_epoch_without_eval_data_is_ignored_with_a_warning():
    loaded = load(BASE + "evals_per_epoch: 4\n")
    assert loaded.require().eval_steps is None
    assert "no evaluation data" in find(loaded, "evals_per_epoch", Kind.CONFLICT).message


def test_one_save_per_epoch_over_one_epoch_sets_nothing():
    assert load(BASE + "saves_per_epoch: 1\n").require().save_steps is None


def test_packing_implies_padding_and_eval_packing():
    cfg = load(BASE + "sample_packing: true\n").require()
    assert cfg.pad_to_sequence_len is True and cfg.eval_sample_packing is True


def test_gradient_checkpointing_gets_axolotls_reentrant_default():
    cfg = load(BASE + "gradient_checkpointing: true\n").require()
    assert cfg.gradient_checkpointing_kwargs == {"use_reentrant": False}  # Axolotl: True; see derive.py


def test_lora_alpha_defaults_to_rank_with_a_note():
    loaded = load(BASE + "adapter: lora\nlora_r: 16\n")
    assert loaded.require().lora_alpha == 16
    assert find(loaded, "lora_alpha", Kind.DERIVED)


def test_model_and_tokenizer_locations_default_to_base_model():
    cfg = load(BASE).require()
    assert cfg.base_model_config == "./m" and cfg.tokenizer_config == "./m"


def test_chat_template_datasets_inherit_top_level_template_and_masking_defaults():
    text = ("base_model: ./m\nlearning_rate: 1e-4\nchat_template: chatml\ntrain_on_eos: all\n"
            "datasets:\n  - path: a.jsonl\n    type: chat_template\n"
            "  - path: b.jsonl\n    type: chat_template\n    chat_template: llama3\n    train_on_eot: none\n")
    first, second = load(text).require().datasets
    assert first.chat_template == "chatml" and second.chat_template == "llama3"
    assert first.roles_to_train == ["assistant"]
    assert first.train_on_eos == "all" and first.train_on_eot == "all"
    assert second.train_on_eot == "none"
    assert first.message_property_mappings == {"role": "role", "content": "content"}


def test_chat_template_defaults_to_the_tokenizers_own():
    text = "base_model: ./m\nlearning_rate: 1e-4\ndatasets:\n  - path: a.jsonl\n    type: chat_template\n"
    [entry] = load(text).require().datasets
    assert entry.chat_template == "tokenizer_default" and entry.train_on_eos == "turn"


def test_string_numbers_are_read_like_axolotl_reads_them():
    # PyYAML reads 2e-4 (no dot) as a string; Axolotl converts it, so do we.
    assert load(BASE).require().learning_rate == pytest.approx(2e-4)
