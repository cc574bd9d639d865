"""`type: classification`: the text (or text pair, `field_pair`) tokenized as the tokenizer encodes it, no token
labels, one class id (or score, `problem_type: regression`) per row; pairs keep BERT's token type ids through
the length rules and the cache."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError
from axo.data.prepare import prepare_data

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
    cfg = make_cfg(f"num_labels: 2\ndatasets:\n  - path: {write_jsonl(rows)}\n    type: classification\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    assert caught.value.problems[0].key == "label"


def test_missing_label(make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"text": "a", "label": 0}, {"text": "b"}])
    cfg = make_cfg(f"num_labels: 2\ndatasets:\n  - path: {path}\n    type: classification\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    (problem,) = caught.value.problems
    assert (problem.line, problem.key) == (2, "label")


PAIRS = [{"query": "What is the capital of France?", "response": "Paris.", "score": 9},
         {"query": "Hello", "response": "The quick brown fox jumps over the lazy dog.", "score": 0}]
PAIR_ENTRY = "    type: classification\n    field: query\n    field_pair: response\n    field_label: score\n"


@pytest.fixture(scope="module")
def bert_tok(tiny_bert_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert_dir)


def test_pairs_are_the_tokenizers_pair_encoding_with_token_types(bert_tok, make_cfg, write_jsonl, tokenize):
    cfg = make_cfg(f"num_labels: 11\ndatasets:\n  - path: {write_jsonl(PAIRS)}\n" + PAIR_ENTRY)
    samples = tokenize(cfg, tokenizer=bert_tok)
    assert [s.label for s in samples] == [9, 0]
    for sample, row in zip(samples, PAIRS):
        expected = bert_tok(row["query"], row["response"])
        assert sample.input_ids == expected["input_ids"]
        assert sample.token_type_ids == expected["token_type_ids"]
        assert sample.labels == [M] * len(sample.input_ids)
    first = samples[0]
    assert first.input_ids[0] == bert_tok.cls_token_id and first.input_ids.count(bert_tok.sep_token_id) == 2
    assert 0 < sum(first.token_type_ids) < len(first.token_type_ids)  # the response is segment 1


def test_pairs_without_token_types_for_models_that_read_none(tok, make_cfg, write_jsonl, tokenize):
    # the tiny Llama tokenizer's model_input_names hold no token_type_ids: the pair is its template, nothing more
    cfg = make_cfg(f"num_labels: 11\ndatasets:\n  - path: {write_jsonl(PAIRS)}\n" + PAIR_ENTRY)
    (sample, _) = tokenize(cfg)
    assert sample.input_ids == tok("What is the capital of France?", "Paris.")["input_ids"]
    assert sample.token_type_ids is None


@pytest.mark.parametrize("strategy", ["truncate", "drop"])
def test_a_long_pair_follows_the_length_rule_and_the_cache_keeps_token_types(bert_tok, make_cfg, write_jsonl,
                                                                               strategy):
    rows = PAIRS * 4
    cfg = make_cfg(f"num_labels: 11\nsequence_len: 12\nexcess_length_strategy: {strategy}\nval_set_size: 0\n"
                   f"datasets:\n  - path: {write_jsonl(rows)}\n" + PAIR_ENTRY)
    prepared = prepare_data(cfg, bert_tok)
    full = [bert_tok(r["query"], r["response"]) for r in rows]
    if strategy == "drop":
        assert len(prepared.train) == sum(len(f["input_ids"]) <= 12 for f in full) == len(rows) // 2
    else:
        assert len(prepared.train) == len(rows) and prepared.meta["datasets"][0]["truncated"] > 0
    again = prepare_data(cfg, bert_tok)
    assert again.from_cache
    for fresh, cached in zip(prepared.train, again.train):
        expected = next(f for f in full if f["input_ids"][:12] == fresh.input_ids)
        assert fresh.token_type_ids == expected["token_type_ids"][:12] == cached.token_type_ids
        assert len(fresh.token_type_ids) == len(fresh.input_ids) <= 12


def test_regression_scores_are_floats(make_cfg, write_jsonl, tokenize):
    rows = [{"text": "a", "score": 7}, {"text": "b", "score": 0.25}]
    cfg = make_cfg(f"num_labels: 1\nproblem_type: regression\ndatasets:\n  - path: {write_jsonl(rows)}\n"
                   "    type: classification\n    field_label: score\n")
    assert [s.label for s in tokenize(cfg)] == [7.0, 0.25]
    cfg = cfg.model_copy(update={"val_set_size": 0})
    assert sorted(s.label for s in prepare_data(cfg).train) == [0.25, 7.0]
    cached = prepare_data(cfg)  # the cache stores scores as floats, not class ids
    assert cached.from_cache and sorted(s.label for s in cached.train) == [0.25, 7.0]


@pytest.mark.parametrize("score", ["high", True, None])
def test_regression_score_must_be_a_number(make_cfg, write_jsonl, tokenize, score):
    path = write_jsonl([{"text": "a", "score": 1.5}, {"text": "b", "score": score}])
    cfg = make_cfg(f"num_labels: 1\nproblem_type: regression\ndatasets:\n  - path: {path}\n"
                   "    type: classification\n    field_label: score\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    (problem,) = caught.value.problems
    assert (problem.origin, problem.line, problem.key) == (str(path), 2, "score")


def test_label_names_reach_the_prepared_meta(make_cfg, write_jsonl):
    rows = [{"text": f"t{i}", "label": name} for i, name in enumerate(["pos", "neg", "pos", "neu"])]
    cfg = make_cfg(f"num_labels: 3\nval_set_size: 0\ndatasets:\n  - path: {write_jsonl(rows)}\n"
                   "    type: classification\n")
    assert prepare_data(cfg).meta["datasets"][0]["label_names"] == ["neg", "neu", "pos"]
