"""The shipped examples train through the real CLI with the tiny model in place of their base model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from axo.cli.main import app


@pytest.fixture
def train_example(tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], Path]:
    """train_example(config[, name][, *overrides]) -> the run folder: 2 steps of `axo train config [overrides]` on the
    tiny llama (adapting its layer 1, as the examples adapt only their top layers), run from a temporary working
    directory."""
    monkeypatch.chdir(tmp_path)

    def train(config: Path, name: str = "run", *overrides: str) -> Path:
        run = tmp_path / name
        result = CliRunner().invoke(app, ["train", str(config), "--base_model", str(tiny_llama_dir), "--max_steps", "2",
                                          "--peft_layers_to_transform", "[1]", "--output_dir", str(run),
                                          "--dataset_prepared_path", str(tmp_path / f"prepared-{name}"), *overrides])
        assert result.exit_code == 0, result.output
        return run

    return train
