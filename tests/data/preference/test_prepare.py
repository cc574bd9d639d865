"""prepare_preference: the errors a user meets (naming file, row and field), the length strategies, the caches,
test_datasets and what axo reads beyond Axolotl (message_property_mappings and roles on chat_template.default)."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError
from axo.data.preference import preference_format_for
from axo.data.preference.prepare import prepare_preference
from axo.data.sources import read_rows

SYS = "You are a helpful assistant."


def _intel(question: str = "What is the capital of France?", chosen: str = "Paris.", rejected: str = "Rome.",
           system: str = "") -> dict:
    return {"system": system, "question": question, "chosen": chosen, "rejected": rejected}


def _problem(caught: pytest.ExceptionInfo) -> tuple[str, str | None, int | None, str]:
    problem = caught.value.problems[0]
    return problem.key, problem.origin, problem.line, problem.message


def _dpo(pref_cfg, path, type_: object = "chatml.intel", method: str = "dpo", **keys):
    return pref_cfg(method, [{"path": str(path), "type": type_}], **keys)


def test_row_missing_a_side(pref_cfg, write_jsonl, tok):
    path = write_jsonl([_intel(), {"system": "", "question": "Hi?", "chosen": "Hello."}])
    with pytest.raises(DataError) as caught:
        prepare_preference(_dpo(pref_cfg, path), tok, "dpo")
    assert _problem(caught) == ("rejected", str(path), 2, ("row 2: no `rejected` field, which `type: chatml.intel` "
                                "reads (the row has: chosen, question, system)."))


def test_side_that_is_not_text(pref_cfg, write_jsonl, tok):
    path = write_jsonl([_intel(), _intel(), _intel(chosen=["Paris", "."])])
    with pytest.raises(DataError) as caught:
        prepare_preference(_dpo(pref_cfg, path), tok, "dpo")
    assert _problem(caught) == ("chosen", str(path), 3, ("row 3: `chosen` is a list (JSON array) ['Paris', '.'], "
                                "not text."))


def test_identical_chosen_and_rejected(pref_cfg, write_jsonl, tok):
    path = write_jsonl([_intel(chosen="Paris.", rejected="Paris.")])
    with pytest.raises(DataError) as caught:
        prepare_preference(_dpo(pref_cfg, path), tok, "dpo")
    assert _problem(caught) == ("rejected", str(path), 1, ("row 1: chosen and rejected are identical, so the pair "
                                "teaches nothing."))


def test_kto_label_must_be_true_or_false(pref_cfg, write_jsonl, tok):
    path = write_jsonl([{"prompt": "Hi?", "completion": "Hello.", "label": "yes"}])
    with pytest.raises(DataError) as caught:
        prepare_preference(_dpo(pref_cfg, path, "chatml.prompt_pairs", "kto", remove_unused_columns=False), tok, "kto")
    assert _problem(caught) == ("label", str(path), 1, "row 1: its label is a string 'yes', not true or false.")


def test_prompt_longer_than_sequence_len(pref_cfg, write_jsonl, tok):
    long_question = "The quick brown fox jumps over the lazy dog. " * 12
    rows = [_intel(), _intel(question=long_question), _intel(chosen="The quick brown fox. " * 12)]
    path = write_jsonl(rows)
    with pytest.raises(DataError) as caught:
        prepare_preference(_dpo(pref_cfg, path, sequence_len=64, excess_length_strategy="raise"), tok, "dpo")
    assert _problem(caught) == ("prompt", str(path), 2, ("row 2: its prompt alone is longer than sequence_len 64 "
                                "(tokens without special tokens)."))
    prepared = prepare_preference(_dpo(pref_cfg, path, sequence_len=64), tok, "dpo")  # drop (the default)
    assert len(prepared.train) == 1 and prepared.train[0]["chosen"] == "Paris.<|im_end|>"
    report = prepared.meta["datasets"][0]
    assert report == {"path": str(path), "rows": 3, "samples": 1, "truncated": 0,
                      "dropped": {"prompt longer than sequence_len": 1, "longer than sequence_len": 1}}


def test_truncate_cuts_the_answers_to_fit(pref_cfg, write_jsonl, tok):
    path = write_jsonl([_intel(chosen="The quick brown fox jumps over the lazy dog. " * 12)])
    prepared = prepare_preference(_dpo(pref_cfg, path, sequence_len=64, excess_length_strategy="truncate"), tok, "dpo")
    row = prepared.train[0]
    count = len(tok(row["prompt"] + row["chosen"], add_special_tokens=False)["input_ids"])
    assert count == 64 and row["chosen"].startswith("The quick brown fox") and row["rejected"] == "Rome.<|im_end|>"
    assert prepared.meta["datasets"][0]["truncated"] == 1


def test_every_row_dropped(pref_cfg, write_jsonl, tok):
    long_question = "The quick brown fox jumps over the lazy dog. " * 12
    path = write_jsonl([_intel(question=long_question), _intel(question=long_question + "?")])
    with pytest.raises(DataError) as caught:
        prepare_preference(_dpo(pref_cfg, path, sequence_len=64), tok, "dpo")
    assert _problem(caught) == ("datasets[0]", str(path), None, ("every one of its 2 rows was dropped (2 prompt longer "
                                "than sequence_len)."))


def test_type_of_another_method(pref_cfg, write_jsonl, tok):
    path = write_jsonl([_intel()])
    cfg = _dpo(pref_cfg, path, "chatml.argilla")  # a KTO type
    with pytest.raises(DataError) as caught:
        preference_format_for(tok, cfg, cfg.datasets[0], "dpo")
    key, origin, _, message = _problem(caught)
    assert (key, origin) == ("type", str(path))
    assert message.startswith("dataset type 'chatml.argilla' is not a dpo dataset type; known: chat_template.argilla_chat, "
                              "chat_template.default, chatml.argilla_chat, chatml.default, chatml.icr, chatml.intel, ")
    assert "user_defined.default, zephyr.nectar." in message and "chatml.argilla," not in message
    assert "SFT types" in caught.value.problems[0].hint


def test_sft_type_under_rl(pref_cfg, write_jsonl, tok, make_cfg):
    path = write_jsonl([{"instruction": "Hi", "output": "Hello"}])
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: alpaca\n")  # a SFT config; the method comes from rl
    with pytest.raises(DataError) as caught:
        preference_format_for(tok, cfg, cfg.datasets[0], "kto")
    assert caught.value.problems[0].message.startswith("dataset type 'alpaca' is not a kto dataset type; known: "
                                                       "chatml.argilla, chatml.argilla_chat, chatml.intel, ")


def test_cache_is_reused_per_method(pref_cfg, write_jsonl, tok):
    path = write_jsonl([_intel(), _intel(question="Hi?", chosen="Hello.", rejected="Go away.")])
    cfg = _dpo(pref_cfg, path, val_set_size=0.5)
    first = prepare_preference(cfg, tok, "dpo")
    again = prepare_preference(cfg, tok, "dpo")
    assert (first.from_cache, again.from_cache) == (False, True)
    assert (again.train, again.eval, again.folder) == (first.train, first.eval, first.folder)
    assert len(first.train) == len(first.eval) == 1
    assert sorted(p.name for p in first.folder.iterdir()) == ["eval.jsonl", "meta.json", "train.jsonl"]
    ipo = prepare_preference(_dpo(pref_cfg, path, "chatml.intel", "ipo", val_set_size=0.5), tok, "ipo")
    assert ipo.folder != first.folder and not ipo.from_cache


def test_test_datasets_and_eval_repeats_of_train(pref_cfg, write_jsonl, tok):
    train = write_jsonl([_intel(), _intel(question="Hi?", chosen="Hello.", rejected="Go away.")], "train.jsonl")
    test = write_jsonl([_intel(), _intel(question="Why?", chosen="Because.", rejected="No.")], "test.jsonl")
    cfg = pref_cfg("dpo", [{"path": str(train), "type": "chatml.intel"}], dataset_exact_deduplication=True,
                   test_datasets=[{"path": str(test), "type": "chatml.intel"}])
    prepared = prepare_preference(cfg, tok, "dpo")
    assert len(prepared.train) == 2
    assert [r["chosen"] for r in prepared.eval] == ["Because.<|im_end|>"]  # the repeat of a train row is removed
    assert prepared.meta["eval_dropped"] == {"repeats a train row": 1}


def test_chat_template_default_maps_keys_and_roles(pref_cfg, write_jsonl, tok):
    """Axolotl 0.21 drops these two keys from DPO entries (its transform then fails); axo reads them."""
    rows = [{"conversation": [{"from": "system", "value": SYS}, {"from": "human", "value": "Hi?"}],
             "good": {"from": "gpt", "value": "Hello."}, "bad": [{"from": "gpt", "value": "Go away."}]}]
    path = write_jsonl(rows)
    entry = {"path": str(path), "type": "chat_template.default", "field_messages": "conversation",
             "field_chosen": "good", "field_rejected": "bad", "message_property_mappings": {"role": "from", "content": "value"},
             "roles": {"system": ["system"], "user": ["human"], "assistant": ["gpt"]}}
    cfg = pref_cfg("dpo", [entry], chat_template="chatml")
    [row] = preference_format_for(tok, cfg, cfg.datasets[0], "dpo").transform(read_rows(cfg.datasets[0]))
    assert row == {"prompt": f"<|im_start|>system\n{SYS}<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n"
                             "<|im_start|>assistant\n",
                   "chosen": "Hello.<|im_end|>", "rejected": "Go away.<|im_end|>"}
    rows[0]["conversation"][1]["from"] = "robot"
    path.write_text(__import__("json").dumps(rows[0]) + "\n")
    with pytest.raises(DataError) as caught:
        preference_format_for(tok, cfg, cfg.datasets[0], "dpo").transform(read_rows(cfg.datasets[0]))
    assert _problem(caught)[:3] == ("conversation", str(path), 1)
    assert "has role 'robot', which `roles` does not map (known: gpt, human, system)" in _problem(caught)[3]


def test_val_set_size_count(pref_cfg, write_jsonl, tok):
    """A count works (Axolotl 0.21's RL loader refuses one: it reads 4.0 as a fraction)."""
    path = write_jsonl([_intel(question=f"Question {i}?") for i in range(6)])
    prepared = prepare_preference(_dpo(pref_cfg, path, val_set_size=4), tok, "dpo")
    assert (len(prepared.train), len(prepared.eval)) == (2, 4)
