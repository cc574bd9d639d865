"""metrics.jsonl and loss.png from real tiny runs: rates only where tokens were trained, the closing record's
whole-run averages, and a loss plot that stays readable after a steep first fall."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from config_helpers import load
from train_helpers import tiny_lora_config

from axo.train.callbacks import _draw, _log_ticks
from axo.train.run import train

RATES = ("tokens_per_s", "trained_tokens_per_s")


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_no_record_carries_a_zero_rate_and_the_closing_record_averages_the_whole_run(tmp_path, tiny_llama_dir):
    cfg = load(tiny_lora_config(tmp_path, tiny_llama_dir, "run", "save_strategy: 'no'\nval_set_size: 0.25\n"
                                "eval_steps: 2\n", rows=16, steps="max_steps: 4")).require()
    train(cfg, progress=False)
    records = _records(tmp_path / "run")
    steps = [r for r in records if "loss" in r]
    evaluations = [r for r in records if "eval_loss" in r]
    (closing,) = [r for r in records if "train_loss" in r]  # the Trainer's summary: train_runtime, train_loss
    assert [r["step"] for r in steps] == [1, 2, 3, 4] and [r["step"] for r in evaluations] == [2, 4, 4]
    for record in steps:
        assert record["tokens_per_s"] > 0 and record["trained_tokens_per_s"] > 0
    for record in evaluations:  # evaluation trains no tokens: no rate rather than 0.0
        assert not set(RATES) & set(record)
    # Whole-run averages: every token of the run over the seconds from the start of training to its end.
    assert closing["tokens_per_s"] == pytest.approx(closing["tokens_seen"] / closing["elapsed_s"], rel=5e-3)
    assert closing["trained_tokens_per_s"] == pytest.approx(closing["trained_tokens"] / closing["elapsed_s"], rel=5e-3)
    assert closing["trained_tokens"] == steps[-1]["trained_tokens"] > 0
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert provenance["trained_tokens_per_s"] == closing["trained_tokens_per_s"]
    assert provenance["train_seconds"] == closing["elapsed_s"]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_loss_plot_reads_a_steep_fall_on_a_log_axis_and_zooms_into_the_second_half(tmp_path, tiny_llama_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # A full fine-tune at a high constant rate: the loss falls from ~6.4 to under half of it in 16 steps.
    text = tiny_lora_config(tmp_path, tiny_llama_dir, "run", "save_strategy: 'no'\nval_set_size: 0.25\n"
                            "eval_steps: 4\nlr_scheduler: constant\nwarmup_steps: 0\n", rows=16, micro_batch=4,
                            steps="max_steps: 16").replace("adapter: lora\n", "").replace("1e-2", "3e-3")
    result = train(load(text).require(), progress=False)
    losses = [r["loss"] for r in result.metrics if "loss" in r]
    assert losses[0] > 6 and losses[-1] < losses[0] / 2
    assert _png_size(tmp_path / "run" / "loss.png") == (1100, 400)  # two panels: whole run, second half

    train_points = [(r["step"], r["loss"]) for r in result.metrics if "loss" in r]
    eval_points = [(r["step"], r["eval_loss"]) for r in result.metrics if "eval_loss" in r]
    figure, axes = plt.subplots()
    _draw(axes, train_points, eval_points, log=True)
    labels = [label.get_text() for label in axes.get_yticklabels()]
    plt.close(figure)
    assert axes.get_yscale() == "log"
    assert labels == [f"{tick:g}" for tick in _log_ticks(min(losses + [p[1] for p in eval_points]), losses[0])]
    assert all("10^" not in label and "e" not in label for label in labels)  # plain numbers


def test_log_ticks_are_evenly_spread_plain_and_distinct():
    assert _log_ticks(0.2, 6.4) == [0.2, 0.4, 0.6, 1.0, 2.0, 4.0, 6.0]
    assert _log_ticks(1.2, 6.5) == [1.2, 1.6, 2.1, 2.8, 3.7, 4.9, 6.5]
    assert _log_ticks(2.0, 2.0) == [2.0]


def test_a_loss_that_barely_moves_or_goes_negative_keeps_a_linear_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for points in ([(1, 6.40), (2, 6.35), (3, 6.31)], [(1, 2.0), (2, -0.5)]):
        figure, axes = plt.subplots()
        _draw(axes, points, [], log=True)
        plt.close(figure)
        assert axes.get_yscale() == "linear"
