"""`--key value` overrides: parsing, typing and where they land."""

from __future__ import annotations

import pytest
from config_helpers import BASE, find, load

from axo.config.overrides import apply_override, parse_overrides
from axo.config.problems import ConfigError


def test_dash_and_underscore_spellings_are_the_same_key():
    [a, b] = parse_overrides(["--learning-rate", "1e-4", "--learning_rate", "1e-4"])
    assert a.path == b.path == ("learning_rate",)


def test_values_are_typed_like_yaml():
    parsed = parse_overrides(["--lora-r", "16", "--bf16", "false", "--lora-target-modules", "[q_proj, v_proj]",
                              "--output-dir=./x", "--sample-packing", "--seed", "-1"])
    values = {o.path[0]: o.value for o in parsed}
    assert values == {"lora_r": 16, "bf16": False, "lora_target_modules": ["q_proj", "v_proj"],
                      "output_dir": "./x", "sample_packing": True, "seed": -1}


def test_nested_paths_index_lists_and_append():
    data = {"datasets": [{"path": "a", "type": "alpaca"}]}
    for override in parse_overrides(["--datasets.0.path", "b.jsonl", "--datasets.1.path", "c.jsonl",
                                     "--special_tokens.pad_token", "<pad>"]):
        apply_override(data, override)
    assert data["datasets"] == [{"path": "b.jsonl", "type": "alpaca"}, {"path": "c.jsonl"}]
    assert data["special_tokens"] == {"pad_token": "<pad>"}


@pytest.mark.parametrize("args", [["learning_rate", "1"], ["--a..b", "1"], ["--0", "x"]])
def test_malformed_overrides_are_clear_errors(args):
    with pytest.raises(ConfigError):
        parse_overrides(args)


def test_index_that_skips_entries_is_an_error():
    with pytest.raises(ConfigError, match="skips entries"):
        apply_override({"datasets": []}, parse_overrides(["--datasets.3.path", "x"])[0])


def test_overrides_win_over_the_file_and_problems_name_the_flag():
    loaded = load(BASE, overrides=parse_overrides(["--learning-rate", "5e-5", "--micro-batch-size", "many"]))
    problem = find(loaded, "micro_batch_size")
    assert problem.origin == "--micro-batch-size" and problem.line is None
    fixed = load(BASE, overrides=parse_overrides(["--learning-rate", "5e-5", "--datasets.0.path", "z.jsonl"]))
    cfg = fixed.require()
    assert cfg.learning_rate == 5e-5 and cfg.datasets[0].path == "z.jsonl"


def test_unknown_override_key_gets_did_you_mean():
    problem = find(load(BASE, overrides=parse_overrides(["--learning-rte", "1"])), "learning_rte")
    assert "did you mean 'learning_rate'" in problem.message and problem.origin == "--learning-rte"
