"""Rows without `type:`: `input_ids`, optional `labels` and `attention_mask`, validated against the vocab."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError

M = -100


def _cfg(make_cfg, path):
    return make_cfg(f"datasets:\n  - path: {path}\n")


def test_rows_pass_through(make_cfg, write_jsonl, tokenize):
    rows = [
        {"input_ids": [1, 50, 60, 70, 2]},
        {"input_ids": [1, 50, 60, 2], "labels": [M, M, 60, 2]},
        {"input_ids": [1, 50, 60, 0], "attention_mask": [1, 1, 1, 0]},
        {"input_ids": [1, 50, 60, 2], "labels": [M, 50, 60, 2], "attention_mask": [0, 1, 0, 1]},
    ]
    cfg = _cfg(make_cfg, write_jsonl(rows))
    assert cfg.datasets[0].type is None
    samples = tokenize(cfg)
    assert [s.input_ids for s in samples] == [r["input_ids"] for r in rows]
    assert [s.labels for s in samples] == [[1, 50, 60, 70, 2], [M, M, 60, 2], [1, 50, 60, M], [M, 50, M, 2]]
    assert [s.row for s in samples] == [0, 1, 2, 3]


@pytest.mark.parametrize("bad_ids", [[1, 50, 600], [1, -1], [1, "a"], "1 2 3"])
def test_ids_outside_the_vocab_are_an_error(tok, make_cfg, write_jsonl, tokenize, bad_ids):
    assert len(tok) == 600
    path = write_jsonl([{"input_ids": [1, 2]}, {"input_ids": bad_ids}])
    with pytest.raises(DataError) as caught:
        tokenize(_cfg(make_cfg, path))
    (problem,) = caught.value.problems
    assert (problem.origin, problem.line, problem.key) == (str(path), 2, "input_ids")
    assert "600" in problem.message


def test_labels_of_the_wrong_length(make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"input_ids": [1, 2, 3], "labels": [1, 2]}])
    with pytest.raises(DataError) as caught:
        tokenize(_cfg(make_cfg, path))
    assert caught.value.problems[0].key == "labels"


def test_attention_mask_of_the_wrong_length(make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"input_ids": [1, 2, 3], "attention_mask": [1, 1]}])
    with pytest.raises(DataError) as caught:
        tokenize(_cfg(make_cfg, path))
    assert caught.value.problems[0].key == "attention_mask"


def test_text_rows_without_type_point_at_type(make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"text": "hello"}])
    with pytest.raises(DataError) as caught:
        tokenize(_cfg(make_cfg, path))
    (problem,) = caught.value.problems
    assert problem.key == "input_ids" and problem.line == 1
    assert "type:" in problem.hint


def test_parquet_pretokenized(tmp_path, make_cfg, tokenize):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "tokens.parquet"
    pq.write_table(pa.table({"input_ids": [[1, 5, 6, 2], [1, 7, 2]], "labels": [[M, 5, 6, 2], [M, M, 2]]}), path)
    samples = tokenize(_cfg(make_cfg, path))
    assert [(s.input_ids, s.labels) for s in samples] == [([1, 5, 6, 2], [M, 5, 6, 2]), ([1, 7, 2], [M, M, 2])]
