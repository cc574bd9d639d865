"""The quickstart's files work as shipped: the data is what make_data.py writes, the config trains through
`axo train` and the held-out file evaluates through `axo evaluate` (with the tiny model in place of
SmolLM2-135M-Instruct, which ./quickstart.sh fetches from PyPI; its real run is timed in docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import runpy
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from axo.cli.main import app

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """make_data.py run into a scratch copy of the folder."""
    folder = tmp_path_factory.mktemp("quickstart")
    shutil.copy(QUICKSTART / "make_data.py", folder)
    runpy.run_path(str(folder / "make_data.py"), run_name="__main__")
    return folder


@pytest.mark.parametrize("name", ["train.jsonl", "held_out.jsonl"])
def test_committed_data_is_what_make_data_writes(regenerated, name):
    assert (regenerated / name).read_bytes() == (QUICKSTART / name).read_bytes()


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (QUICKSTART / name).read_text().splitlines()]


def test_held_out_messages_are_unseen_and_the_majority_baseline_is_above_chance():
    train = {row["messages"][0]["content"] for row in _rows("train.jsonl")}
    held_out = _rows("held_out.jsonl")
    assert not train & {row["messages"][0]["content"] for row in held_out}
    counts = Counter(row["ideal"] for row in held_out)
    assert set(counts) == {"billing", "shipping", "account", "technical"}
    assert counts.most_common(1)[0] == ("shipping", 35) and len(held_out) == 100


def test_config_trains_and_the_held_out_file_evaluates(train_example):
    run = train_example(QUICKSTART / "config.yml")
    evaluated = CliRunner().invoke(app, ["evaluate", str(run), "-r", str(QUICKSTART / "held_out.jsonl"),
                                         "--limit", "8", "--max-new-tokens", "2", "--compare-base"])
    assert evaluated.exit_code == 0, evaluated.output
    results = json.loads((run / "eval_results.json").read_text())
    for variant in ("adapter", "base"):
        generation = results[variant]["generation"]
        assert generation["rows"] == 8 and 0.0 <= generation["choice_accuracy"] <= 1.0
    first_eight = Counter(row["ideal"] for row in _rows("held_out.jsonl")[:8])
    label, hits = first_eight.most_common(1)[0]
    assert results["base"]["generation"]["majority_baseline"] == hits / 8
    assert results["base"]["generation"]["majority_label"] == label
