"""`type: completion`: BOS + text + EOS, every token trained, cut into `sequence_len` chunks."""

from __future__ import annotations

import pytest

from axo.data.errors import DataError
from axo.data.prepare import prepare_data

TEXT = "The quick brown fox jumps over the lazy dog. What is the capital of France? The capital of France is Paris."


def test_short_text_is_bos_text_eos_all_trained(tok, enc, make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"text": "Hello, how are you today?"}])
    cfg = make_cfg(f"sequence_len: 256\ndatasets:\n  - path: {path}\n    type: completion\n")
    (sample,) = tokenize(cfg)
    expected = [tok.bos_token_id] + enc("Hello, how are you today?") + [tok.eos_token_id]
    assert sample.input_ids == expected
    assert sample.labels == expected
    assert sample.row == 0


def test_long_text_is_chunked_into_sequence_len_pieces(tok, enc, make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"text": TEXT}, {"text": "import numpy as np"}])
    cfg = make_cfg(f"sequence_len: 8\ndatasets:\n  - path: {path}\n    type: completion\n")
    samples = tokenize(cfg)
    whole = [tok.bos_token_id] + enc(TEXT) + [tok.eos_token_id]
    assert len(whole) > 16 and len(whole) % 8  # at least three chunks, the last one short
    chunks = [whole[i:i + 8] for i in range(0, len(whole), 8)]
    short = [tok.bos_token_id] + enc("import numpy as np") + [tok.eos_token_id]
    assert [s.input_ids for s in samples] == chunks + [short]
    assert [s.labels for s in samples] == chunks + [short]
    assert [s.row for s in samples] == [0] * len(chunks) + [1]
    assert all(len(s.input_ids) <= 8 for s in samples)
    assert samples[0].input_ids[0] == tok.bos_token_id and samples[len(chunks) - 1].input_ids[-1] == tok.eos_token_id


def test_field_names_the_text_column(tok, enc, make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"body": "import numpy as np", "text": "ignored"}])
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: completion\n    field: body\n")
    (sample,) = tokenize(cfg)
    assert sample.input_ids == [tok.bos_token_id] + enc("import numpy as np") + [tok.eos_token_id]


def test_txt_file_rows_are_lines(tok, enc, make_cfg, tmp_path, tokenize):
    path = tmp_path / "corpus.txt"
    path.write_text("import numpy as np\n\nHello\n", encoding="utf-8")
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: completion\n")
    samples = tokenize(cfg)
    assert [s.input_ids for s in samples] == [[tok.bos_token_id] + enc(t) + [tok.eos_token_id]
                                              for t in ("import numpy as np", "Hello")]


def test_missing_text_column(make_cfg, write_jsonl, tokenize):
    path = write_jsonl([{"text": "a"}, {"content": "b"}])
    cfg = make_cfg(f"datasets:\n  - path: {path}\n    type: completion\n")
    with pytest.raises(DataError) as caught:
        tokenize(cfg)
    (problem,) = caught.value.problems
    assert (problem.origin, problem.line, problem.key) == (str(path), 2, "text")


def test_completion_through_prepare_data(tok, enc, make_cfg, write_jsonl):
    path = write_jsonl([{"text": TEXT}])
    cfg = make_cfg(f"sequence_len: 16\nshuffle_merged_datasets: false\n"
                   f"datasets:\n  - path: {path}\n    type: completion\n")
    prepared = prepare_data(cfg, tok)
    whole = [tok.bos_token_id] + enc(TEXT) + [tok.eos_token_id]
    kept = [whole[i:i + 16] for i in range(0, len(whole), 16)]
    kept = [chunk for chunk in kept if len(chunk) >= cfg.min_sample_len]
    assert [s.input_ids for s in prepared.train] == kept
    assert prepared.meta["datasets"][0]["rows"] == 1
    assert prepared.meta["datasets"][0]["samples"] == len(kept)
