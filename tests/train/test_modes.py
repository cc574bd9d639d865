"""The training-mode registry: each config is trained by exactly one mode, and a name registers once."""

from __future__ import annotations

import pytest
from config_helpers import load

from axo.train.modes import TrainingMode, mode_for, register_mode, registered_modes

BASE = "base_model: ./m\nlearning_rate: 1e-4\ndatasets:\n  - path: data.jsonl\n    type: {kind}\n"


@pytest.mark.parametrize(("head", "kind", "mode", "method"), [
    ("", "alpaca", "sft", "SFT"),
    ("num_labels: 3\n", "classification", "classification", "classification"),
    ("num_labels: 1\nproblem_type: regression\n", "classification", "classification", "regression"),
    ("rl: dpo\n", "chatml.intel", "preference", "DPO"),
    ("rl: kto\n", "chatml.intel", "preference", "KTO"),
    ("reward_model: true\n", "bradley_terry.chat_template", "preference", "reward model"),
])
def test_each_config_is_trained_by_one_mode(head, kind, mode, method):
    chosen = mode_for(load(head + BASE.format(kind=kind)).require())
    assert chosen.name == mode and chosen.describe()["method"] == method


def test_pretraining_streams_have_their_own_mode():
    cfg = load("base_model: ./m\nlearning_rate: 1e-4\nmax_steps: 5\npretraining_dataset:\n  - path: c4.jsonl\n").require()
    assert mode_for(cfg).name == "pretraining"


def test_a_mode_name_registers_once():
    assert {"sft", "preference", "pretraining", "classification"} <= set(registered_modes())

    class Again(TrainingMode):
        name = "sft"

    with pytest.raises(ValueError, match="training mode 'sft' is registered twice"):
        register_mode(Again)
