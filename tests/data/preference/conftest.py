"""Fixtures for the preference-data tests: Axolotl 0.21's recorded output, configs for a case, TRL's tokenization."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from axo.config.schema import AxoConfig

EXPECTED = Path(__file__).parents[2] / "fixtures" / "preference" / "expected.json"


@pytest.fixture(scope="session")
def oracle() -> dict[str, Any]:
    """tests/fixtures/preference/expected.json (made by oracle.py with a real Axolotl 0.21)."""
    return json.loads(EXPECTED.read_text())


@pytest.fixture
def pref_cfg(make_cfg, oracle) -> Callable[..., AxoConfig]:
    """pref_cfg(method, entries, **keys) -> a config with `rl:` (or `reward_model: true`) over `entries`."""

    def make(method: str, entries: list[dict[str, Any]], **keys: Any) -> AxoConfig:
        body: dict[str, Any] = {"sequence_len": oracle["sequence_len"], "seed": 42, "datasets": entries, **keys}
        if method == "reward":
            body["reward_model"] = True
        else:
            body["rl"] = method
        return make_cfg(yaml.safe_dump(body))

    return make


def _stub(tokenizer):
    args = SimpleNamespace(dataset_num_proc=None, max_length=None, truncation_mode="keep_start",
                           per_device_train_batch_size=8)
    me = SimpleNamespace(_tokenizer=tokenizer, calculate_KL=False, desirable_weight=1.0, undesirable_weight=1.0)
    return me, args


@pytest.fixture(scope="session")
def trl_ids(tok) -> Callable[[str, list[dict[str, Any]]], list[dict[str, list[int]]]]:
    """trl_ids(method, rows): the ids TRL (axo's venv) derives from text rows in its trainers' own dataset
    preparation (DPOTrainer/KTOTrainer._prepare_dataset, called on a stub trainer)."""
    from datasets import Dataset
    from trl import DPOTrainer, KTOTrainer

    def run(method: str, rows: list[dict[str, Any]]) -> list[dict[str, list[int]]]:
        me, args = _stub(tok)
        if method == "kto":
            out = KTOTrainer._prepare_dataset(me, Dataset.from_list(rows), tok, args, "train")
            return [{k: r[k] for k in ("prompt_ids", "completion_ids")} for r in out]
        out = DPOTrainer._prepare_dataset(me, Dataset.from_list(rows), tok, args, "train")
        return [{k: r[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for r in out]

    return run
