"""Length rules and clean-up, through the whole `prepare_data` pipeline; drops are counted per reason."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError
from axo.data.prepare import prepare_data

M = -100
ROWS = [
    {"input_ids": [1, 10, 11, 2]},                               # 4 tokens
    {"input_ids": [1, 20, 21, 22, 23, 24, 25, 26, 27, 28, 2]},   # 11 tokens: too long for 8
    {"input_ids": [1, 30, 2], "labels": [M, M, M]},              # nothing trained
    {"input_ids": [1]},                                          # 1 token
]


def _prepare(tok, make_cfg, write_jsonl, options: str, rows=ROWS):
    path = write_jsonl(rows)
    cfg = make_cfg(f"sequence_len: 8\nshuffle_merged_datasets: false\n{options}"
                   f"datasets:\n  - path: {path}\n")
    return prepare_data(cfg, tok), path


def _ids(prepared):
    return [s.input_ids for s in prepared.train]


def test_drop_too_long_and_too_short(tok, make_cfg, write_jsonl):
    prepared, _ = _prepare(tok, make_cfg, write_jsonl, "excess_length_strategy: drop\nmin_sample_len: 2\n")
    assert _ids(prepared) == [[1, 10, 11, 2], [1, 30, 2]]
    assert [s.labels for s in prepared.train] == [[1, 10, 11, 2], [M, M, M]]
    report = prepared.meta["datasets"][0]
    assert report["dropped"] == {"longer than sequence_len": 1, "shorter than min_sample_len": 1}
    assert (report["rows"], report["samples"], report["truncated"]) == (4, 2, 0)


def test_truncate(tok, make_cfg, write_jsonl):
    prepared, _ = _prepare(tok, make_cfg, write_jsonl, "excess_length_strategy: truncate\nmin_sample_len: 1\n")
    assert _ids(prepared) == [[1, 10, 11, 2], [1, 20, 21, 22, 23, 24, 25, 26], [1, 30, 2], [1]]
    assert prepared.train[1].labels == [1, 20, 21, 22, 23, 24, 25, 26]
    report = prepared.meta["datasets"][0]
    assert report["truncated"] == 1 and report["dropped"] == {}


def test_raise_names_file_and_line(tok, make_cfg, write_jsonl, tmp_path):
    with pytest.raises(DataError) as caught:
        _prepare(tok, make_cfg, write_jsonl, "excess_length_strategy: raise\n")
    (problem,) = caught.value.problems
    assert (problem.origin, problem.line, problem.key) == (str(tmp_path / "data.jsonl"), 2, "sequence_len")
    assert "11 tokens" in problem.message


def test_min_sample_len(tok, make_cfg, write_jsonl):
    prepared, _ = _prepare(tok, make_cfg, write_jsonl, "excess_length_strategy: drop\nmin_sample_len: 4\n")
    assert _ids(prepared) == [[1, 10, 11, 2]]
    assert prepared.meta["datasets"][0]["dropped"] == {"longer than sequence_len": 1,
                                                       "shorter than min_sample_len": 2}


@pytest.mark.parametrize("packing", [False, True])
def test_untrained_rows_dropped_only_when_packing(tok, make_cfg, write_jsonl, packing):
    prepared, _ = _prepare(tok, make_cfg, write_jsonl,
                           f"excess_length_strategy: drop\nmin_sample_len: 2\nsample_packing: {str(packing).lower()}\n")
    dropped = prepared.meta["datasets"][0]["dropped"]
    if packing:
        assert _ids(prepared) == [[1, 10, 11, 2]]
        assert dropped["no trained token"] == 1
    else:
        assert _ids(prepared) == [[1, 10, 11, 2], [1, 30, 2]]
        assert "no trained token" not in dropped


def test_alpaca_rows_through_the_pipeline(tok, make_cfg, write_jsonl):
    rows = [{"instruction": "Say hi", "output": "hi"},
            {"instruction": "Write a short poem about the sea. " * 10, "output": "Waves"}]
    path = write_jsonl(rows)
    cfg = make_cfg(f"sequence_len: 64\nexcess_length_strategy: drop\n"
                   f"datasets:\n  - path: {path}\n    type: alpaca\n")
    prepared = prepare_data(cfg, tok)
    prompt = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
              "request.\n\n### Instruction:\nSay hi\n\n### Response:\n")
    prompt_ids = tok(prompt)["input_ids"]
    answer = tok("hi", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert len(prepared.train) == 1
    assert prepared.train[0].input_ids == prompt_ids + answer
    assert prepared.train[0].labels == [M] * len(prompt_ids) + answer
    assert prepared.meta["datasets"][0]["dropped"] == {"longer than sequence_len": 1}


def test_every_row_dropped_says_why(tok, make_cfg, write_jsonl):
    rows = [{"input_ids": list(range(1, 12))}, {"input_ids": list(range(1, 10))}]
    with pytest.raises(DataError) as caught:
        _prepare(tok, make_cfg, write_jsonl, "excess_length_strategy: drop\n", rows=rows)
    (problem,) = caught.value.problems
    assert problem.key == "datasets[0]"
    assert problem.origin.endswith("data.jsonl")
    assert "2 rows" in problem.message and "2 longer than sequence_len" in problem.message


def test_every_row_untrained_with_packing_says_why(tok, make_cfg, write_jsonl):
    rows = [{"input_ids": [1, 5, 2], "labels": [M, M, M]}]
    with pytest.raises(DataError) as caught:
        _prepare(tok, make_cfg, write_jsonl, "sample_packing: true\n", rows=rows)
    assert "no trained token" in caught.value.problems[0].message


def test_exact_duplicates_dropped(tok, make_cfg, write_jsonl):
    rows = [{"input_ids": [1, 5, 2]}, {"input_ids": [1, 6, 2]}, {"input_ids": [1, 5, 2]}]
    prepared, _ = _prepare(tok, make_cfg, write_jsonl, "dataset_exact_deduplication: true\n", rows=rows)
    assert _ids(prepared) == [[1, 5, 2], [1, 6, 2]]
    assert prepared.meta["datasets"][0]["dropped"] == {"exact duplicate": 1}


def test_cache_is_reused(tok, make_cfg, write_jsonl):
    first, _ = _prepare(tok, make_cfg, write_jsonl, "excess_length_strategy: drop\n")
    second, _ = _prepare(tok, make_cfg, write_jsonl, "excess_length_strategy: drop\n")
    assert not first.from_cache and second.from_cache
    assert [(s.input_ids, s.labels) for s in second.train] == [(s.input_ids, s.labels) for s in first.train]
