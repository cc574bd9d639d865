"""Mistakes found in review of the config reader; each test fails on the code before its fix."""

from __future__ import annotations

import pytest
from config_helpers import BASE, find, load

from axo.config.overrides import parse_overrides
from axo.config.problems import ConfigError, Kind, Severity
from axo.config.yaml_io import parse_yaml_text


def test_a_stray_training_section_does_not_switch_a_flat_file_to_axolotl_rs():
    loaded = load(BASE + "training:\n  epochs: 2\n")
    cfg = loaded.require()
    assert cfg.adapter is None and cfg.sequence_len == 512 and cfg.num_epochs == 1
    assert find(loaded, "training").kind is Kind.UNKNOWN_KEY


def test_nested_and_flat_spellings_of_one_setting_conflict():
    loaded = load("model:\n  name: ./a\nbase_model: ./b\ndataset:\n  path: d.jsonl\n")
    assert find(loaded, "model.name", Kind.CONFLICT).severity is Severity.ERROR
    both = load("model:\n  name: ./a\ndataset:\n  path: d.jsonl\ndatasets:\n  - path: e.jsonl\n")
    assert find(both, "dataset", Kind.CONFLICT).severity is Severity.ERROR


def test_overrides_reach_nested_sections_and_name_the_flag():
    text = "model:\n  name: ./m\ndataset:\n  path: d.jsonl\ntraining:\n  epochs: 1\n"
    cfg = load(text, overrides=parse_overrides(["--training.epochs", "5"])).require()
    assert cfg.num_epochs == 5
    bad = load(text, overrides=parse_overrides(["--training.epochs", "many"]))
    assert find(bad, "num_epochs").origin == "--training.epochs"


def test_secrets_never_appear_in_problem_messages():
    loaded = load(BASE + "hf_token: 123456789\nbase_model: https://user:S3CRET@example.com/m\n")
    text = "\n".join(p.render() for p in loaded.problems)
    assert "123456789" not in text and "S3CRET" not in text
    assert find(loaded, "hf_token").severity is Severity.ERROR


@pytest.mark.parametrize("extra", ["learning_rate: true\n", "micro_batch_size: true\n"])
def test_booleans_are_not_numbers(extra):
    key = extra.split(":")[0]
    assert "expected a number" in find(load(BASE + extra), key, Kind.TYPE).message


def test_bare_flag_for_a_number_is_an_error():
    loaded = load(BASE, overrides=parse_overrides(["--learning-rate"]))
    assert find(loaded, "learning_rate").severity is Severity.ERROR


def test_quoted_false_attention_switch_is_off():
    assert load(BASE + 'flash_attention: "false"\n').require().attn_implementation is None


def test_two_attention_switches_name_each_other():
    problem = find(load(BASE + "flash_attention: true\nsdp_attention: true\n"), "sdp_attention", Kind.CONFLICT)
    assert "`flash_attention`" in problem.message


def test_deep_nesting_is_a_clear_error_not_a_crash():
    with pytest.raises(ConfigError, match="nests"):
        parse_yaml_text("base_model: a/b\nx: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yml")


def test_overriding_a_merged_key_is_not_a_duplicate():
    doc = parse_yaml_text("_ds: &ds {type: alpaca}\ndatasets:\n  - <<: *ds\n    path: a\n    type: completion\n", "m.yml")
    assert not doc.problems and doc.data["datasets"][0]["type"] == "completion"


def test_a_mistake_inside_a_type_mapping_gives_one_error():
    loaded = load(BASE + "  - path: b.jsonl\n    type:\n      field_output: 5\n")
    errors = [p for p in loaded.errors]
    assert [p.key for p in errors] == ["datasets[1].type.field_output"]


def test_quoted_strict_applies():
    assert not load(BASE + 'strict: "true"\nlearning_rte: 1\n').ok


def test_infinity_is_refused():
    assert find(load(BASE.replace("2e-4", ".inf")), "learning_rate").severity is Severity.ERROR


def test_non_string_keys_are_named_as_written_with_their_line():
    problem = find(load(BASE + "1: x\n"), "1")
    assert problem.line == 6


def test_remote_paths_are_notes():
    problem = find(load(BASE + "  - path: s3://bucket/x.jsonl\n"), "datasets[1].path", Kind.MISSING_RESOURCE)
    assert problem.severity is Severity.NOTE and "remote" in problem.message


def test_document_marker_alone_is_empty():
    with pytest.raises(ConfigError, match="empty"):
        parse_yaml_text("---\n", "e.yml")


def test_negative_override_index_is_refused():
    with pytest.raises(ConfigError, match="negative"):
        parse_overrides(["--datasets.-1.path", "x"])
