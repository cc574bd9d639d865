"""A small LoRA run config on the tiny model and alpaca tips, shared by the training tests."""

from __future__ import annotations

import json
from pathlib import Path


def tiny_lora_config(folder: Path, model_dir: Path, name: str, extra: str = "", *, rows: int = 8,
                     micro_batch: int = 2, steps: str = "max_steps: 4") -> str:
    """YAML for a LoRA run named `name` in `folder` (data `folder/data.jsonl`, written once with `rows` tips;
    output `folder/name`; cache `folder/prepared`), lr 1e-2, r 4, every linear layer, one log per step."""
    data = folder / "data.jsonl"
    if not data.exists():
        data.write_text("".join(json.dumps({"instruction": f"Tip {i}?", "output": f"Drink water {i} times."}) + "\n"
                                for i in range(rows)))
    return (f"base_model: {model_dir}\nlearning_rate: 1e-2\nadapter: lora\nlora_r: 4\nlora_alpha: 8\n"
            f"lora_target_linear: true\ndatasets:\n  - path: {data}\n    type: alpaca\n{steps}\n"
            f"micro_batch_size: {micro_batch}\nlogging_steps: 1\nseed: 1\noutput_dir: {folder / name}\n"
            f"dataset_prepared_path: {folder / 'prepared'}\n{extra}")
