"""`type: input_output`: segments concatenated as written, no BOS/EOS, only `label: true` trained."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError

M = -100


def test_segments_exact_ids_and_labels(tok, enc, make_cfg, write_jsonl, tokenize):
    rows = [
        {"segments": [{"label": False, "text": "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"},
                      {"label": True, "text": "<|im_start|>assistant\nParis.<|im_end|>"},
                      {"label": False, "text": "\n"}]},
        {"segments": [{"label": True, "text": "Hello"}, {"label": False, "text": " world"}]},
    ]
    path = write_jsonl(rows)
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: input_output\n")
    first, second = tokenize(cfg)
    start, end = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    prompt = [start] + enc("user\n") + enc("What is the capital of France?") + [end] + enc("\n")
    answer = [start] + enc("assistant\nParis.") + [end]
    assert first.input_ids == prompt + answer + enc("\n")
    assert first.labels == [M] * len(prompt) + answer + [M] * len(enc("\n"))
    assert tok.bos_token_id not in first.input_ids and tok.eos_token_id not in first.input_ids
    # segments are tokenized one by one: " world" keeps its own tokens
    assert second.input_ids == enc("Hello") + enc(" world")
    assert second.labels == enc("Hello") + [M] * len(enc(" world"))
    assert (first.row, second.row) == (0, 1)


def test_all_false_segments_give_no_trained_token(enc, make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"segments": [{"label": False, "text": "Hello"}]}])
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: input_output\n")
    (sample,) = tokenize(cfg)
    assert sample.input_ids == enc("Hello") and sample.labels == [M] * len(enc("Hello"))


@pytest.mark.parametrize("bad", [{"segments": "text"}, {"segments": [{"label": "yes", "text": "a"}]},
                                 {"segments": [{"label": True}]}, {"text": "no segments"}])
def test_malformed_segments(make_cfg, write_jsonl, tokenize, bad):
    path = write_jsonl([{"segments": [{"label": True, "text": "ok"}]}, bad])
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: input_output\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    (problem,) = caught.value.problems
    assert problem.origin == str(path) and problem.line == 2
    assert problem.key.startswith("segments")
