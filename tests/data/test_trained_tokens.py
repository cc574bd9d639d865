"""Data that would train nothing, and prompt fields that are not text (issue 16): refused at preprocess time
with the dataset, row and settings to blame; the NaN-loss message tells a masked batch from a high learning
rate."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError
from axo.data.prepare import prepare_data
from axo.train.guards import _diverged

M = -100
GOOD = {"instruction": "Give a tip.", "input": "", "output": "Drink water."}


def _prepare(tok, make_cfg, write_jsonl, rows, dataset: str, top: str = ""):
    path = write_jsonl(rows)
    return prepare_data(make_cfg(f"{top}datasets:\n  - path: {path}\n{dataset}"), tok)


def test_roles_nobody_trains_name_the_dataset_settings_and_roles(tok, make_cfg, write_jsonl):
    rows = [{"messages": [{"role": "human", "content": "hi"}, {"role": "bot", "content": "hello"}]}] * 3
    with pytest.raises(DataError) as caught:
        _prepare(tok, make_cfg, write_jsonl, rows, "    type: chat_template\n", "chat_template: chatml\n")
    (problem,) = caught.value.problems
    assert problem.key == "datasets[0]" and problem.origin.endswith("data.jsonl")
    assert "all 3 of its samples have no trained token" in problem.message
    assert "roles_to_train: [assistant]" in problem.message and "bot, user" in problem.message
    assert "roles: {assistant: [bot]}" in problem.hint


def test_mapping_the_role_trains_it(tok, make_cfg, write_jsonl):
    rows = [{"messages": [{"role": "human", "content": "hi"}, {"role": "bot", "content": "hello"}]}]
    prepared = _prepare(tok, make_cfg, write_jsonl, rows,
                        "    type: chat_template\n    roles:\n      assistant: [bot]\n", "chat_template: chatml\n")
    assert prepared.meta["train"]["trained_tokens"] > 0


def test_an_eval_dataset_with_nothing_trained(tok, make_cfg, write_jsonl, tmp_path):
    train = write_jsonl([{"input_ids": [1, 10, 2]}], "train.jsonl")
    held = write_jsonl([{"input_ids": [1, 6, 2], "labels": [M, M, M]}], "held.jsonl")
    cfg = make_cfg(f"datasets:\n  - path: {train}\ntest_datasets:\n  - path: {held}\n")
    with pytest.raises(DataError) as caught:
        prepare_data(cfg, tok)
    (problem,) = caught.value.problems
    assert problem.key == "test_datasets[0]" and "its only sample has no trained token" in problem.message


def test_only_end_of_sequence_trained_is_refused(tok, make_cfg, write_jsonl):
    rows = [{**GOOD, "output": ""}, {**GOOD, "output": ""}]
    with pytest.raises(DataError) as caught:
        _prepare(tok, make_cfg, write_jsonl, rows, "    type: alpaca\n")
    assert "only special tokens" in caught.value.problems[0].message


def test_some_empty_outputs_are_fine_and_untrained_samples_are_counted(tok, make_cfg, write_jsonl):
    prepared = _prepare(tok, make_cfg, write_jsonl, [GOOD, {**GOOD, "output": ""}], "    type: alpaca\n")
    assert len(prepared.train) == 2
    rows = [{"input_ids": [1, 10, 2]}, {"input_ids": [1, 11, 2], "labels": [M, M, M]}]
    prepared = _prepare(tok, make_cfg, write_jsonl, rows, "")
    assert prepared.meta["train"]["untrained_samples"] == 1


@pytest.mark.parametrize("bad, found", [
    ({"output": ["a", "b"]}, "'output' is a list (JSON array) ['a', 'b'], not a string"),
    ({"instruction": {"text": "x"}}, "'instruction' is an object (JSON dict)"),
    ({"output": 1.0}, "'output' is a number 1.0"),
    ({"input": False}, "'input' is a boolean False"),
    ({"output": None}, "'output' is null"),
])
def test_alpaca_fields_must_be_text(tok, make_cfg, write_jsonl, bad, found):
    with pytest.raises(DataError) as caught:
        _prepare(tok, make_cfg, write_jsonl, [GOOD, {**GOOD, **bad}], "    type: alpaca\n")
    (problem,) = caught.value.problems
    assert problem.line == 2 and problem.key == next(iter(bad))
    assert found in problem.message


def test_mapped_columns_are_checked_by_their_own_names(tok, make_cfg, write_jsonl):
    rows = [{"q": "Give a tip.", "a": "Drink water.", "sys": ["Be", "brief"]}]
    dataset = ("    type:\n      field_instruction: q\n      field_output: a\n      field_system: sys\n"
               "      format: '{instruction} ->'\n")
    with pytest.raises(DataError) as caught:
        _prepare(tok, make_cfg, write_jsonl, rows, dataset)
    assert "'sys' is a list" in caught.value.problems[0].message


def test_absent_and_null_optional_fields_read_as_empty(tok, make_cfg, write_jsonl):
    rows = [{"instruction": "Give a tip.", "output": "Drink water."},
            {"instruction": "Give a tip.", "input": None, "output": "Drink water."}]
    prepared = _prepare(tok, make_cfg, write_jsonl, rows, "    type: alpaca\n", "shuffle_merged_datasets: false\n")
    assert prepared.train[0].input_ids == prepared.train[1].input_ids


def test_nan_message_blames_the_masking_when_no_token_was_trained():
    problem = _diverged(float("nan"), None, 3, (0, 0))
    assert problem.key == "datasets"
    assert "no token of the batches of steps 1–3 carried loss" in problem.message
    assert "not the learning rate" in problem.message and "sample_packing" in problem.hint


def test_nan_message_blames_the_learning_rate_when_tokens_were_trained():
    one_step = _diverged(float("nan"), None, 4, (3, 120))
    assert one_step.key == "learning_rate" and "its batches had 120 trained tokens" in one_step.message
    several = _diverged(float("inf"), None, 20, (10, 900))
    assert "steps 11–20 had 900 trained tokens" in several.message and "logging_steps: 1" in several.hint
    assert "Lower learning_rate" in _diverged(float("nan"), None, 2, None).hint
