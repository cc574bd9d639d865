"""Streamed pretraining (`pretraining_dataset:`): a local JSONL/text file streamed, tokenized with EOS after each
document and laid out in rows of exactly micro_batch_size × sequence_len tokens (documents kept apart when
packed), deterministic with the seed; 3 steps of training on the tiny llama; Axolotl's own streaming example
(tests/fixtures/axolotl_examples/streaming-pretrain.yaml, unchanged) validates and trains 3 steps."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from axo.cli.main import app
from axo.config.load import load_config
from axo.config.problems import ConfigError, Severity
from axo.data.formats.base import IGNORE_INDEX
from axo.data.streaming import PretrainingStream, stream_layout
from axo.train.modes import mode_for

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "axolotl_examples"
WORDS = ["river", "stone", "light", "cloud", "maple", "ember", "frost", "harbor", "meadow", "quartz"]


def _documents(count: int = 40) -> list[str]:
    """Documents of growing length (2 to ~120 words), so some are longer than a small sequence_len."""
    return [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(2 + 3 * i)) for i in range(count)]


def _config(tmp_path: Path, model: Path, data: Path, **extra) -> object:
    lines = {"base_model": str(model), "pretraining_dataset": [{"path": str(data), "type": "pretrain"}],
             "max_steps": 3, "sequence_len": 64, "micro_batch_size": 2, "gradient_accumulation_steps": 1,
             "sample_packing": True, "streaming_multipack_buffer_size": 16, "learning_rate": 1e-3,
             "output_dir": str(tmp_path / "out"), "save_strategy": "no", "logging_steps": 1, **extra}
    path = tmp_path / "config.yml"
    path.write_text(json.dumps(lines))  # JSON is YAML
    loaded = load_config(path)
    assert loaded.ok, [p.render() for p in loaded.errors]
    return loaded.config


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": text, "id": i}) + "\n" for i, text in enumerate(_documents())))
    return path


@pytest.fixture
def tokenizer(tiny_llama_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


def _blocks(row: dict) -> list[tuple[int, int]]:
    """(start, end) of each block of restarting positions."""
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0] + [len(row["position_ids"])]
    return list(pairwise(starts))


def test_packed_rows_are_exactly_micro_batch_times_sequence_len_with_documents_apart(
        tmp_path, tiny_llama_dir, jsonl, tokenizer):
    cfg = _config(tmp_path, tiny_llama_dir, jsonl, shuffle_merged_datasets=False)
    rows = list(PretrainingStream(cfg, tokenizer).rows())
    assert stream_layout(cfg).isolate and all(len(r["input_ids"]) == 2 * 64 for r in rows)
    expected = [tokenizer(text)["input_ids"] + [tokenizer.eos_token_id] for text in _documents()]
    assert all(ids[0] == tokenizer.bos_token_id for ids in expected)
    pieces = []  # every block is a document piece (<= sequence_len) or the padding at a row's end
    for row in rows:
        for start, end in _blocks(row):
            ids, labels = row["input_ids"][start:end], row["labels"][start:end]
            if all(t == tokenizer.pad_token_id for t in ids):
                assert set(labels) == {IGNORE_INDEX} and end == len(row["input_ids"])
                continue
            assert end - start <= 64 and labels == [IGNORE_INDEX, *ids[1:]]  # first label of each piece masked
            pieces.append(ids)
    # the pieces are the documents (EOS after each) cut at sequence_len, each exactly once
    cut = sorted(tuple(ids[s:s + 64]) for ids in expected for s in range(0, len(ids), 64))
    assert sorted(map(tuple, pieces)) == cut
    assert sum(p[-1] == tokenizer.eos_token_id for p in pieces) == len(expected)


def test_concatenation_runs_documents_on_with_eos_between(tmp_path, tiny_llama_dir, jsonl, tokenizer):
    cfg = _config(tmp_path, tiny_llama_dir, jsonl, pretrain_multipack_attn=False, shuffle_merged_datasets=False)
    rows = list(PretrainingStream(cfg, tokenizer).rows())
    joined = [t for text in _documents() for t in [*tokenizer(text)["input_ids"], tokenizer.eos_token_id]]
    assert all(len(r["input_ids"]) == 128 for r in rows) and len(rows) == -(-len(joined) // 128)
    assert [t for r in rows for t in r["input_ids"]][:len(joined)] == joined
    assert rows[0]["position_ids"] == list(range(128)) and rows[0]["labels"] == rows[0]["input_ids"]


def test_one_document_per_row_without_packing(tmp_path, tiny_llama_dir, jsonl, tokenizer):
    cfg = _config(tmp_path, tiny_llama_dir, jsonl, sample_packing=False, shuffle_merged_datasets=False)
    rows = list(PretrainingStream(cfg, tokenizer).rows())
    assert len(rows) == 40 and all(len(r["input_ids"]) == 64 for r in rows)
    first = [*tokenizer(_documents()[0])["input_ids"], tokenizer.eos_token_id]
    assert rows[0]["input_ids"][:len(first)] == first and rows[0]["labels"][len(first):] == [IGNORE_INDEX] * (64 - len(first))
    assert rows[-1]["input_ids"][-1] == tokenizer.eos_token_id  # a truncated document keeps its EOS


def test_shuffle_is_deterministic_with_the_seed_and_a_new_pass_reshuffles(tmp_path, tiny_llama_dir, jsonl, tokenizer):
    first = [n for n, _ in PretrainingStream(_config(tmp_path, tiny_llama_dir, jsonl), tokenizer).documents()]
    again = [n for n, _ in PretrainingStream(_config(tmp_path, tiny_llama_dir, jsonl), tokenizer).documents()]
    other = [n for n, _ in PretrainingStream(_config(tmp_path, tiny_llama_dir, jsonl, seed=7), tokenizer).documents()]
    assert first == again and first != other and sorted(first) == list(range(1, 41)) and first != sorted(first)
    stream = PretrainingStream(_config(tmp_path, tiny_llama_dir, jsonl), tokenizer)
    passes = [[r["input_ids"] for r in stream], [r["input_ids"] for r in stream]]
    assert passes[0] == [r["input_ids"] for r in PretrainingStream(_config(tmp_path, tiny_llama_dir, jsonl),
                                                                   tokenizer).rows()]
    assert passes[0] != passes[1] and sorted(map(tuple, passes[0])) != []


def test_text_file_and_skip(tmp_path, tiny_llama_dir, tokenizer):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(_documents(6)) + "\n")
    cfg = _config(tmp_path, tiny_llama_dir, text, shuffle_merged_datasets=False,
                  pretraining_dataset=[{"path": str(text), "type": "pretrain", "skip": 2}])
    assert [n for n, _ in PretrainingStream(cfg, tokenizer).documents()] == [3, 4, 5, 6]


def test_missing_text_column_names_file_row_and_field(tmp_path, tiny_llama_dir, tokenizer):
    data = tmp_path / "docs.jsonl"
    data.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"body": "no text"}) + "\n")
    cfg = _config(tmp_path, tiny_llama_dir, data, shuffle_merged_datasets=False)
    with pytest.raises(ConfigError) as caught:
        list(PretrainingStream(cfg, tokenizer).rows())
    problem = caught.value.problems[0]
    assert (problem.origin, problem.line, problem.key) == (str(data), 2, "text") and "it has: body" in problem.message
    cfg = _config(tmp_path, tiny_llama_dir, data, pretraining_dataset=[{"path": str(data), "text_column": "body"}],
                  shuffle_merged_datasets=False)
    with pytest.raises(ConfigError) as caught:
        mode_for(cfg).prepare(tokenizer, None)  # the first document is read when the run starts
    assert caught.value.problems[0].line == 1 and caught.value.problems[0].key == "body"


def _load(tmp_path: Path, text: str):
    path = tmp_path / "c.yml"
    path.write_text(text)
    return load_config(path)


def test_config_rules_max_steps_type_and_eval(tmp_path):
    base = "base_model: ./m\nlearning_rate: 1e-4\npretraining_dataset:\n  - path: allenai/c4\n    name: en\n    type: pretrain\n"
    loaded = _load(tmp_path, base)
    assert [p.key for p in loaded.errors] == ["max_steps"] and "a stream has no length" in loaded.errors[0].message
    loaded = _load(tmp_path, base.replace("type: pretrain", "type: alpaca") + "max_steps: 5\nval_set_size: 0.1\n")
    assert sorted(p.key for p in loaded.errors) == ["pretraining_dataset[0].type", "val_set_size"]
    loaded = _load(tmp_path, base.replace("type: pretrain", "type: completion\n    field: body") + "max_steps: 5\n")
    assert loaded.ok and loaded.config.pretraining_dataset[0].text_column == "body"  # Axolotl's completion spelling
    loaded = _load(tmp_path, base + "max_steps: 5\n")
    assert loaded.ok and mode_for(loaded.config).name == "pretraining"
    assert not [p for p in loaded.problems if p.severity is Severity.WARNING and "pretrain" in p.key]


def test_trains_three_steps_on_the_tiny_llama(tmp_path, tiny_llama_dir, jsonl, monkeypatch):
    from axo.train.run import train

    monkeypatch.chdir(tmp_path)
    cfg = _config(tmp_path, tiny_llama_dir, jsonl)
    result = train(cfg, progress=False)
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert result.steps == 3 and provenance["method"] == "pretraining (streamed)"
    assert provenance["train_rows"] == 3 and result.train_loss is not None and result.eval_loss is None
    # every token of a packed row but each piece's first and the padding is trained
    assert 3 * 64 < provenance["trained_tokens"] <= 3 * 128


def test_preprocess_shows_rows_and_says_streams_are_not_cached(tmp_path, tiny_llama_dir, jsonl, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _config(tmp_path, tiny_llama_dir, jsonl)
    result = CliRunner().invoke(app, ["preprocess", str(tmp_path / "config.yml"), "--debug", "1"])
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    assert "streams are not cached" in shown and "row 0: 128 tokens" in shown and "row 2: 128 tokens" in shown
    assert "blocks [" in shown and "trained" in shown


def test_axolotl_streaming_example_validates_and_trains_three_steps(tmp_path, tiny_llama_dir, jsonl, monkeypatch):
    example = EXAMPLES / "streaming-pretrain.yaml"
    assert load_config(example).ok
    monkeypatch.chdir(tmp_path)
    args = ["train", str(example), "--base_model", str(tiny_llama_dir), "--pretraining_dataset.0.path", str(jsonl),
            "--pretraining_dataset.0.name", "null", "--attn_implementation", "sdpa", "--bf16", "false",
            "--tf32", "false", "--special_tokens.pad_token", "<pad>", "--max_steps", "3", "--sequence_len", "64",
            "--gradient_accumulation_steps", "1", "--streaming_multipack_buffer_size", "16",
            "--save_strategy", "no", "--logging_steps", "1", "--output_dir", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["steps"] == 3 and provenance["method"] == "pretraining (streamed)"
    assert provenance["train_loss"] is not None and 3 * 32 < provenance["trained_tokens"] <= 3 * 64
    assert provenance["datasets"][0]["path"] == str(jsonl)
