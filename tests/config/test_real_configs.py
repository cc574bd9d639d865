"""Every real-world config in tests/fixtures/configs/ validates as written, with only explained warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import CPU

from axo.config.load import load_config
from axo.config.problems import Kind, Severity

REAL_CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
CONFIG_FILES = sorted(REAL_CONFIGS.glob("*.yml"))

# The warnings a user may see for these files, each with a reason: features not built yet, data that
# lives on another machine, old spellings we translate, and (checked here on a machine without CUDA) GPU
# settings such as QLoRA's 4-bit loading that `axo train` would refuse on this machine.
EXPLAINED = {Kind.NOT_IMPLEMENTED, Kind.MISSING_RESOURCE, Kind.DEPRECATED, Kind.HARDWARE}


def test_the_real_configs_are_present():
    # a missing folder must fail, not skip
    assert len(CONFIG_FILES) >= 4, f"expected the real-world configs in {REAL_CONFIGS}"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[p.stem for p in CONFIG_FILES])
def test_real_config_validates_with_only_explained_warnings(path):
    loaded = load_config(path, hardware=CPU)
    assert loaded.ok, "\n".join(p.render() for p in loaded.errors)
    unexplained = [p for p in loaded.problems if p.severity is Severity.WARNING and p.kind not in EXPLAINED]
    assert not unexplained, "\n".join(p.render() for p in unexplained)


def test_distill_config_reads_as_axolotl_would():
    cfg = load_config(REAL_CONFIGS / "llama31-8b-qlora-distill.yml", hardware=CPU).require()
    assert cfg.adapter == "qlora" and cfg.load_in_4bit and cfg.lora_r == 64 and cfg.lora_alpha == 128
    assert cfg.attn_implementation == "flash_attention_2"  # from the deprecated flash_attention: true
    assert cfg.special_tokens.eos_token == "<|eot_id|>"
    assert cfg.batch_size == 8 and cfg.pad_to_sequence_len is True and cfg.eval_sample_packing is True
    assert cfg.warmup_steps == 100 and cfg.save_total_limit == 2 and cfg.val_set_size == 0.05


def test_completion_config_reads_test_datasets_and_wandb():
    cfg = load_config(REAL_CONFIGS / "qwen25-coder-7b-qlora-completion.yml", hardware=CPU).require()
    assert cfg.adapter == "lora" and cfg.load_in_4bit  # LoRA on a 4-bit base: QLoRA, Axolotl-style
    assert cfg.test_datasets[0].field == "text" and cfg.test_datasets[0].ds_type == "json"
    assert cfg.max_steps == 500 and cfg.optimizer == "adamw_bnb_8bit"
    assert cfg.wandb_project == "cli-tuner" and cfg.wandb_log_model == "false"


def test_nested_config_is_translated():
    cfg = load_config(REAL_CONFIGS / "axolotl-rs-nested.yml", hardware=CPU).require()
    assert cfg.base_model == "meta-llama/Llama-2-7b-hf" and cfg.lora_r == 16 and cfg.num_epochs == 3
