"""Type and value errors name the key path, the bad value and the allowed values."""

from __future__ import annotations

from config_helpers import BASE, find, load

from axo.config.problems import Kind, Severity


def test_wrong_dataset_type_lists_known_types_with_did_you_mean():
    loaded = load(BASE + "  - path: b.jsonl\n    type: alpacca\n")
    problem = find(loaded, "datasets[1].type")
    assert problem.severity is Severity.ERROR and problem.kind is Kind.TYPE
    assert "'alpacca'" in problem.message and "did you mean 'alpaca'" in problem.message
    assert "chat_template" in problem.message and "completion" in problem.message
    assert problem.line == 7
    assert not loaded.ok and loaded.config is None


def test_wrong_scalar_type_names_value():
    problem = find(load(BASE + "micro_batch_size: four\n"), "micro_batch_size")
    assert "integer" in problem.message and "'four'" in problem.message


def test_literal_value_lists_allowed_values():
    problem = find(load(BASE + "excess_length_strategy: chop\n"), "excess_length_strategy")
    assert all(word in problem.message for word in ("'drop'", "'truncate'", "'raise'", "'chop'"))


def test_unknown_optimizer_and_scheduler_suggest_the_closest():
    loaded = load(BASE + "optimizer: adamw_torch_fuse\nlr_scheduler: cosin\n")
    assert "did you mean 'adamw_torch_fused'" in find(loaded, "optimizer").message
    assert "did you mean 'cosine'" in find(loaded, "lr_scheduler").message


def test_unknown_chat_template_name():
    problem = find(load(BASE + "chat_template: chatmll\n"), "chat_template")
    assert "did you mean 'chatml'" in problem.message


def test_missing_required_key_says_what_it_is():
    problem = find(load("learning_rate: 1e-4\ndatasets:\n  - path: a\n"), "base_model")
    assert "is required" in problem.message and "model to fine-tune" in problem.message


def test_bad_value_inside_a_type_mapping():
    problem = find(load(BASE + "  - path: b.jsonl\n    type:\n      field_instrucion: q\n"), "datasets[1].type.field_instrucion")
    assert "did you mean 'field_instruction'" in problem.message


def test_mapping_type_is_accepted():
    text = BASE + "  - path: b.jsonl\n    type:\n      field_instruction: q\n      field_output: a\n      format: '{instruction}'\n"
    cfg = load(text).require()
    assert cfg.datasets[1].type.field_instruction == "q"


def test_negative_and_out_of_range_values():
    loaded = load(BASE + "lora_dropout: 1.5\nsequence_len: -1\n")
    assert find(loaded, "lora_dropout").kind is Kind.TYPE
    assert find(loaded, "sequence_len").kind is Kind.TYPE


def test_wandb_switches_accept_yaml_booleans():
    cfg = load(BASE + "wandb_log_model: false\nwandb_watch: true\n").require()
    assert cfg.wandb_log_model == "false" and cfg.wandb_watch == "gradients"


def test_unquoted_no_strategies_mean_no():
    cfg = load(BASE + "save_strategy: no\neval_strategy: no\n").require()
    assert cfg.save_strategy == "no" and cfg.eval_strategy == "no"
