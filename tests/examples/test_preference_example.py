"""The preference example's files work as shipped: the pairs are what make_data.py writes, held-out prompts are
unseen, and the config trains with DPO through `axo train` and its held-out pairs score through `axo evaluate
--pairs` (with the tiny model in place of SmolLM2-135M-Instruct; the real run's numbers are in the example's
README)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from axo.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "preference"
TEAMS = {"billing", "shipping", "account", "technical"}


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (EXAMPLE / name).read_text().splitlines()]


def test_committed_pairs_are_what_make_data_writes(tmp_path):
    subprocess.run([sys.executable, str(EXAMPLE / "make_data.py"), str(tmp_path)], check=True)
    for name in ("train.jsonl", "held_out.jsonl"):
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes()


def test_pairs_are_balanced_and_held_out_prompts_are_unseen():
    train, held_out = _rows("train.jsonl"), _rows("held_out.jsonl")
    assert (len(train), len(held_out)) == (200, 80)
    assert not {r["messages"][0]["content"] for r in train} & {r["messages"][0]["content"] for r in held_out}
    for rows in (train, held_out):
        chosen = Counter(r["chosen"]["content"] for r in rows)
        rejected = Counter(r["rejected"]["content"] for r in rows)
        assert set(chosen) == set(rejected) == TEAMS and len(set(chosen.values())) == 1
        assert max(rejected.values()) - min(rejected.values()) <= 3
        assert all(r["chosen"]["content"] != r["rejected"]["content"] for r in rows)
        assert all(r["chosen"]["role"] == r["rejected"]["role"] == "assistant" for r in rows)


def test_config_trains_with_dpo_and_the_held_out_pairs_evaluate(train_example):
    run = train_example(EXAMPLE / "config.yml")
    evaluated = CliRunner().invoke(app, ["evaluate", str(run), "--pairs", str(EXAMPLE / "held_out.jsonl"),
                                         "--limit", "8", "--compare-base"])
    assert evaluated.exit_code == 0, evaluated.output
    results = json.loads((run / "eval_results.json").read_text())
    adapter, base = results["adapter"]["preference"], results["base"]["preference"]
    assert adapter["pairs"] == base["pairs"] == 8
    assert 0.0 <= adapter["reward_accuracy"] <= 1.0 and "reward_accuracy" not in base
    assert 0.0 <= base["preference_accuracy"] <= 1.0
