"""Session-wide fixtures: the tiny tokenizer and models from `tiny_models`, built once per test run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny_models


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the tiny tokenizer (tokenizer.json, tokenizer_config.json, chat template)."""
    directory = tmp_path_factory.mktemp("tiny-tokenizer")
    tiny_models.build_tokenizer(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path) -> dict[str, Path]:
    """One saved tiny model directory per architecture: {"llama": path, "qwen2": path, "mistral": path}."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        arch: tiny_models.build_model(arch, root / arch, tiny_tokenizer_dir) for arch in tiny_models.ARCHITECTURES
    }


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_model_dirs: dict[str, Path]) -> Path:
    return tiny_model_dirs["llama"]


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT encoder with its WordPiece tokenizer (`tiny_models.build_bert`), for sequence classification."""
    return tiny_models.build_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working directory holding `data.jsonl` with 8 short alpaca rows (test modules that
    need other data define their own `workspace`)."""
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "data.jsonl").open("w") as handle:
        for i in range(8):
            handle.write(json.dumps({"instruction": f"Tip {i}?", "input": "", "output": f"Drink water {i}."}) + "\n")
    return tmp_path
