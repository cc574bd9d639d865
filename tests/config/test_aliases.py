"""Deprecated Axolotl spellings are read as the current keys, with a warning."""

from __future__ import annotations

from config_helpers import BASE, find, load

from axo.config.problems import Kind, Severity


def test_dataset_processes_becomes_dataset_num_proc():
    loaded = load(BASE + "dataset_processes: 3\n")
    assert loaded.require().dataset_num_proc == 3
    assert find(loaded, "dataset_processes", Kind.DEPRECATED).severity is Severity.WARNING


def test_flash_attention_becomes_attn_implementation():
    loaded = load(BASE + "flash_attention: true\n")
    assert loaded.require().attn_implementation == "flash_attention_2"
    assert "attn_implementation: flash_attention_2" in find(loaded, "flash_attention", Kind.DEPRECATED).hint


def test_sdp_attention_becomes_sdpa_and_false_switch_is_a_note():
    loaded = load(BASE + "sdp_attention: true\nflash_attention: false\n")
    assert loaded.require().attn_implementation == "sdpa"
    assert find(loaded, "flash_attention", Kind.DEPRECATED).severity is Severity.NOTE


def test_old_and_new_spelling_disagreeing_is_an_error():
    loaded = load(BASE + "flash_attention: true\nattn_implementation: sdpa\n")
    assert find(loaded, "flash_attention", Kind.CONFLICT).severity is Severity.ERROR


def test_message_field_role_and_content_become_property_mappings():
    text = BASE + "  - path: c.jsonl\n    type: chat_template\n    message_field_role: from\n    message_field_content: text\n"
    loaded = load(text)
    assert loaded.require().datasets[1].message_property_mappings == {"role": "from", "content": "text"}
    assert find(loaded, "datasets[1].message_field_role", Kind.DEPRECATED).line == 8


def test_sharegpt_becomes_chat_template_with_from_value_mapping():
    text = BASE + "  - path: s.jsonl\n    type: sharegpt\n    conversation: chatml\n"
    loaded = load(text)
    entry = loaded.require().datasets[1]
    assert entry.type == "chat_template"
    assert entry.field_messages == "conversations"
    assert entry.message_property_mappings == {"role": "from", "content": "value"}
    assert entry.chat_template == "chatml"
    assert "Axolotl no longer accepts sharegpt" in find(loaded, "datasets[1].type", Kind.DEPRECATED).message


def test_sharegpt_keeps_explicit_field_messages():
    text = BASE + "  - path: s.jsonl\n    type: sharegpt\n    field_messages: turns\n"
    assert load(text).require().datasets[1].field_messages == "turns"


def test_noisy_embedding_alpha_and_evaluation_strategy():
    cfg = load(BASE + "noisy_embedding_alpha: 5\nevaluation_strategy: 'no'\n").require()
    assert cfg.neftune_noise_alpha == 5 and cfg.eval_strategy == "no"


def test_problems_about_the_translated_key_point_at_the_old_line():
    loaded = load(BASE + "dataset_processes: 0\n")
    assert find(loaded, "dataset_num_proc", Kind.TYPE).line == 6
