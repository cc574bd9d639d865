"""Unknown keys are never silently dropped: a warning with line and did-you-mean, an error when strict."""

from __future__ import annotations

from config_helpers import BASE, find, load

from axo.config.problems import Kind, Severity


def test_misspelt_key_gets_did_you_mean_and_line():
    loaded = load(BASE + "learning_rte: 3e-4\n")
    problem = find(loaded, "learning_rte")
    assert problem.kind is Kind.UNKNOWN_KEY and problem.severity is Severity.WARNING
    assert "did you mean 'learning_rate'" in problem.message
    assert problem.line == 6 and problem.origin == "cfg.yml"
    assert loaded.ok  # a warning, not an error


def test_misspelt_key_inside_a_dataset_entry():
    loaded = load(BASE + "  - path: b.jsonl\n    tpye: alpaca\n")
    problem = find(loaded, "datasets[1].tpye")
    assert "did you mean 'type'" in problem.message and problem.line == 7


def test_real_axolotl_key_axo_does_not_support_is_named_as_such():
    problem = find(load(BASE + "lisa_n_layers: 4\n"), "lisa_n_layers")
    assert problem.kind is Kind.UNSUPPORTED_KEY and "Axolotl option" in problem.message


def test_strict_in_the_file_makes_unknown_keys_errors():
    loaded = load(BASE + "strict: true\nlearning_rte: 3e-4\n")
    assert not loaded.ok
    assert find(loaded, "learning_rte").severity is Severity.ERROR


def test_strict_argument_makes_unknown_keys_errors():
    loaded = load(BASE + "learning_rte: 3e-4\n", strict=True)
    assert find(loaded, "learning_rte").severity is Severity.ERROR


def test_strict_also_covers_keys_whose_feature_has_not_landed():
    loaded = load(BASE + "hub_model_id: me/x\n", strict=True)
    assert not loaded.ok
    assert all(p.kind in (Kind.NOT_IMPLEMENTED, Kind.UNKNOWN_KEY, Kind.UNSUPPORTED_KEY) for p in loaded.errors)


def test_not_yet_implemented_keys_are_warnings_naming_the_feature():
    problem = find(load(BASE + "hub_model_id: me/x\n"), "hub_model_id", Kind.NOT_IMPLEMENTED)
    assert problem.severity is Severity.WARNING and "Hub" in problem.message


def test_defaults_the_user_did_not_write_raise_no_not_implemented_warning():
    loaded = load(BASE)
    pending = {p.key for p in loaded.problems if p.kind is Kind.NOT_IMPLEMENTED}
    assert pending == set()
    assert {p.key for p in load(BASE + "hub_model_id: me/x\n").problems if p.kind is Kind.NOT_IMPLEMENTED} == {
        "hub_model_id"}


def test_blank_value_means_unset():
    loaded = load(BASE + "adapter: lora\nlora_dropout:\nsequence_len:\n")
    cfg = loaded.require()
    assert cfg.lora_dropout == 0.0 and cfg.sequence_len == 512
    assert not any(p.key in ("lora_dropout", "sequence_len") for p in loaded.problems)


def test_blank_unknown_key_still_warns():
    assert find(load(BASE + "learning_rte:\n"), "learning_rte").kind is Kind.UNKNOWN_KEY


def test_unknown_key_in_special_tokens():
    problem = find(load(BASE + "special_tokens:\n  eos_tokn: x\n"), "special_tokens.eos_tokn")
    assert "did you mean 'eos_token'" in problem.message
