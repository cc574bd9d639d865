"""Unknown keys are never silently dropped: a warning with line and did-you-mean, an error when strict."""

from __future__ import annotations

import pytest
from config_helpers import BASE, find, load

from axo.config.axolotl_keys import AXOLOTL_DATASET_KEYS, AXOLOTL_KEYS
from axo.config.key_tiers import LEGACY_AXOLOTL_KEYS, TRAINING_MODES
from axo.config.problems import Kind, Severity
from axo.config.schema import AxoConfig


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
    problem = find(load(BASE + "comet_project_name: x\n"), "comet_project_name")
    assert problem.kind is Kind.UNSUPPORTED_KEY and "Axolotl option" in problem.message


def test_no_key_of_axolotl_0_21_or_its_plugins_is_called_a_typo():
    names = sorted((AXOLOTL_KEYS | LEGACY_AXOLOTL_KEYS) - set(TRAINING_MODES))
    loaded = load(BASE + "".join(f"{name}:\n" for name in names if name not in BASE))
    assert [p.key for p in loaded.problems if p.kind is Kind.UNKNOWN_KEY] == []
    entry = "".join(f"    {name}:\n" for name in sorted(AXOLOTL_DATASET_KEYS))
    loaded = load(BASE + "  - path: b.jsonl\n    type: alpaca\n" + entry)
    assert [p.key for p in loaded.problems if p.kind is Kind.UNKNOWN_KEY] == []


@pytest.mark.parametrize(("key", "value", "words"), [
    ("use_scattermoe", "true", "same results"), ("expert_parallel_size", "2", "same results"),
    ("liger_rms_norm_gated", "true", "same results"), ("torch_compile_options", "{}", "same results"),
    ("swanlab_project", "p", "training is the same"), ("lm_eval_tasks", "[a]", "training is the same"),
    ("lisa_n_layers", "4", "training method"), ("kd_alpha", "0.5", "knowledge distillation"),
    ("is_llama_derived_model", "true", "no effect"), ("unsloth_lora_mlp", "true", "no effect"),
    ("lora_rank_pattern", "{}", "may differ"),
])
def test_unsupported_keys_say_what_ignoring_them_costs(key, value, words):
    problem = find(load(BASE + f"{key}: {value}\n"), key)
    assert problem.kind is Kind.UNSUPPORTED_KEY and problem.severity is Severity.WARNING
    assert words in problem.message


def test_preference_dataset_fields_in_an_sft_config_are_reported_as_ignored():
    loaded = load(BASE + "  - path: b.jsonl\n    type: alpaca\n    field_chosen: c\n")
    problem = find(loaded, "datasets[1].field_chosen")
    assert problem.severity is Severity.WARNING and "read only under `rl:`" in problem.message


@pytest.mark.parametrize(("extra", "key", "words"), [
    ("rl: grpo\n", "rl", "GRPO reinforcement"), ("rl: ebft\n", "rl", "EBFT reinforcement"),
    ("process_reward_model: true\n", "process_reward_model", "process-reward-model"),
])
def test_training_methods_axo_lacks_are_errors(extra, key, words):
    loaded = load(extra + BASE + "  - path: b.jsonl\n    type: chatml.intel\n")
    assert not loaded.ok
    problem = find(loaded, key)
    assert problem.severity is Severity.ERROR and words in problem.message and "does not have" in problem.message
    assert [p.key for p in loaded.errors] == [key]  # no second error for the dataset of that method


@pytest.mark.parametrize("method", ["dpo", "ipo", "orpo", "simpo", "kto"])
def test_preference_methods_validate(method):
    loaded = load(f"rl: {method}\nrl_beta: 0.2\n" + BASE.replace("type: alpaca", "type: chatml.intel"))
    assert loaded.ok, [p.render() for p in loaded.errors]
    assert loaded.config.rl == method and loaded.config.rl_beta == 0.2


def test_reward_model_validates_as_a_one_score_head():
    loaded = load("reward_model: true\n" + BASE.replace("type: alpaca", "type: bradley_terry.chat_template"))
    assert loaded.ok and loaded.config.num_labels == 1


def test_rl_false_or_blank_is_no_method():
    assert load("rl: false\nreward_model: false\n" + BASE).ok
    assert load("rl:\n" + BASE).ok


@pytest.mark.parametrize("kind", ["bradley_terry.chat_template", "chatml.intel", "stepwise_supervised"])
def test_preference_dataset_types_need_a_preference_method(kind):
    loaded = load(BASE + f"  - path: b.jsonl\n    type: {kind}\n")
    problem = find(loaded, "datasets[1].type")
    assert problem.severity is Severity.ERROR and "trains SFT (no `rl:`" in problem.message
    assert [p.key for p in loaded.errors] == ["datasets[1].type"]


def test_sft_dataset_types_under_rl_are_errors():
    loaded = load("rl: dpo\n" + BASE)
    problem = find(loaded, "datasets[0].type")
    assert problem.severity is Severity.ERROR and "`alpaca` is an SFT dataset type" in problem.message


@pytest.mark.parametrize(("extra", "key", "words"), [
    ("rl: orpo\nsimpo_gamma: 0.5\n", "simpo_gamma", "has no effect with `rl: orpo`"),
    ("rl_beta: 0.1\n", "rl_beta", "no `rl:` (SFT)"),
    ("rl: dpo\ndpo_padding_free: true\n", "dpo_padding_free", "padding-free DPO disabled"),
    ("rl: dpo\nsample_packing: true\n", "sample_packing", "is for SFT"),
    ("rl: dpo\ncut_cross_entropy: true\n", "cut_cross_entropy", "so it is not used"),
    ("rl: dpo\ndpo_loss_type: [sigmoid, sft]\ndpo_loss_weights: [1.0]\n", "dpo_loss_weights", "1 weights for 2"),
    ("rl: dpo\nreward_model: true\n", "reward_model", "a run trains one thing"),
])
def test_preference_keys_that_do_nothing_or_cannot_run_are_reported(extra, key, words):
    body = BASE.replace("type: alpaca", "type: chatml.intel") if "rl:" in extra else BASE
    problem = find(load(extra + body), key, Kind.CONFLICT if key == "cut_cross_entropy" else None)
    assert words in problem.message


def test_every_plugin_is_honoured_or_named():
    loaded = load(BASE + "plugins:\n  - axolotl.integrations.liger.LigerPlugin\n"
                  "  - axolotl.integrations.swanlab.SwanLabPlugin\n  - my_company.plugins.Magic\n")
    assert loaded.ok
    swanlab = find(loaded, "plugins[1]")
    assert "SwanLabPlugin" in swanlab.message and "not available in axo" in swanlab.message
    assert "SwanLab" in swanlab.message.split("added")[1]
    assert "my_company.plugins.Magic" in find(loaded, "plugins[2]").message
    assert not [p for p in loaded.problems if p.key == "plugins[0]"]  # Liger: axo reads the liger_* keys


def test_cut_cross_entropy_plugin_turns_the_key_on():
    cce = "plugins:\n  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin\n"
    loaded = load(BASE + cce)
    if "cut_cross_entropy" not in AxoConfig.model_fields:  # the key lands with models/cce.py
        assert "not available in axo" in find(loaded, "plugins[0]").message
        return
    assert loaded.require().cut_cross_entropy is True
    assert find(loaded, "plugins[0]").kind is Kind.DERIVED
    assert load(BASE + cce + "cut_cross_entropy: false\n").require().cut_cross_entropy is False


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


def test_plugins_in_entry_point_spelling_are_recognised():
    loaded = load(BASE + "plugins:\n  - axolotl.integrations.kernels:KernelsPlugin\n")
    assert "MoE expert kernels" in find(loaded, "plugins[0]").message


def test_every_bundled_plugin_has_a_description():
    from axo.config.axolotl_keys import AXOLOTL_PLUGINS
    from axo.config.plugins import _WHAT, LIGER

    assert {name.rsplit(".", 1)[-1] for name in AXOLOTL_PLUGINS if name != LIGER} == set(_WHAT)


def test_findings_about_the_key_a_plugin_set_point_at_the_plugin():
    loaded = load(BASE + "fsdp_version: 2\nplugins:\n  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin\n")
    lines = {p.line for p in loaded.problems if p.key == "cut_cross_entropy"}
    assert lines == {8}  # the plugin entry (BASE is 5 lines)
