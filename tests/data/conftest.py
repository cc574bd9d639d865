"""Fixtures for the data tests: the real tiny tokenizer, configs built from YAML, rows written to files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Callable

import config_helpers
import pytest

from axo.config.schema import AxoConfig
from axo.data.formats import Sample, format_for
from axo.data.formats.base import IGNORE_INDEX
from axo.data.sources import read_rows


@pytest.fixture(scope="session")
def tok(tiny_tokenizer_dir: Path):
    """The tiny tokenizer, loaded as a user's would be (BOS `<s>` added by the post-processor)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


@pytest.fixture
def make_cfg(tiny_tokenizer_dir: Path, tmp_path: Path) -> Callable[..., AxoConfig]:
    """make_cfg(yaml_body) -> the typed config; the body holds `datasets:` and any other keys."""

    def make(body: str) -> AxoConfig:
        head = (f"base_model: {tiny_tokenizer_dir}\nlearning_rate: 2e-4\n"
                f"dataset_prepared_path: {tmp_path / 'prepared'}\n")
        return config_helpers.load(head + textwrap.dedent(body)).require()

    return make


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    def write(rows: list[dict[str, Any]], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path

    return write


@pytest.fixture
def tokenize(tok) -> Callable[..., list[Sample]]:
    """tokenize(cfg, index=0): the samples of dataset `index` through read_rows + format_for."""

    def run(cfg: AxoConfig, index: int = 0, tokenizer=None) -> list[Sample]:
        entry = cfg.datasets[index]
        return format_for(tokenizer or tok, cfg, entry).tokenize(read_rows(entry))

    return run


@pytest.fixture
def enc(tok) -> Callable[[str], list[int]]:
    """Ids of `text` with no special tokens added."""
    return lambda text: tok(text, add_special_tokens=False)["input_ids"]


MASK = IGNORE_INDEX
