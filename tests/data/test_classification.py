"""`type: classification`: the text tokenized with BOS, no token labels, one class id per row."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError

M = -100


def test_string_labels_numbered_in_sorted_order(tok, make_cfg, write_jsonl, tokenize):
    rows = [{"text": "This movie was wonderful.", "label": "positive"},
            {"text": "Hello", "label": "negative"},
            {"text": "import numpy as np", "label": "neutral"},
            {"text": "Paris", "label": "positive"}]
    cfg = make_cfg(f"num_labels: 3\ndatasets:\n  - path: {write_jsonl(rows)}\n    type: classification\n")
    samples = tokenize(cfg)
    # sorted: negative=0, neutral=1, positive=2
    assert [s.label for s in samples] == [2, 0, 1, 2]
    for sample, row in zip(samples, rows):
        ids = tok(row["text"])["input_ids"]
        assert ids[0] == tok.bos_token_id
        assert sample.input_ids == ids
        assert sample.labels == [M] * len(ids)


def test_integer_labels_and_field(tok, make_cfg, write_jsonl, tokenize):
    rows = [{"review": "Hello", "label": 1}, {"review": "Paris", "label": 0}]
    cfg = make_cfg(f"num_labels: 2\ndatasets:\n  - path: {write_jsonl(rows)}\n    type: classification\n"
                   "    field: review\n")
    samples = tokenize(cfg)
    assert [s.label for s in samples] == [1, 0]
    assert samples[1].input_ids == tok("Paris")["input_ids"]


@pytest.mark.parametrize("labels, bad_line", [([0, 1, 2], 3), ([0, -1], 2), ([0, 1.5], 2)])
def test_label_out_of_range(make_cfg, write_jsonl, tokenize, labels, bad_line):
    rows = [{"text": "a", "label": value} for value in labels]
    path = write_jsonl(rows)
    cfg = make_cfg(f"num_labels: 2\ndatasets:\n  - path: {path}\n    type: classification\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    (problem,) = caught.value.problems
    assert (problem.origin, problem.line, problem.key) == (str(path), bad_line, "label")


def test_string_names_beyond_num_labels(make_cfg, write_jsonl, tokenize):
    rows = [{"text": "a", "label": name} for name in ("x", "y", "z")]
    cfg = make_cfg(f"num_labels: 2\ndatasets:\n  - path: {write_jsonl(rows)}\n    type: classification\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    assert caught.value.problems[0].line == 3  # "z" is class 2


def test_mixed_label_kinds(make_cfg, write_jsonl, tokenize):
    rows = [{"text": "a", "label": "x"}, {"text": "b", "label": 1}]
    cfg = make_cfg(f"datasets:\n  - path: {write_jsonl(rows)}\n    type: classification\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    assert caught.value.problems[0].key == "label"


def test_missing_label(make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"text": "a", "label": 0}, {"text": "b"}])
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: classification\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    (problem,) = caught.value.problems
    assert (problem.line, problem.key) == (2, "label")
