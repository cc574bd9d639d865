"""Trainer callbacks: metrics.jsonl, loss.png and a live progress bar."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


def _memory_mib() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _log_ticks(low: float, high: float, count: int = 7) -> list[float]:
    """About `count` tick values evenly spaced on a log axis from `low` to `high`, each rounded to the fewest
    significant digits that keep them apart (1.2, 1.6, 2.1, ... rather than 1.2345)."""
    import numpy as np

    spaced = np.geomspace(low, high, count)
    for digits in range(1, 6):
        ticks = sorted({float(f"{value:.{digits}g}") for value in spaced})
        if len(ticks) == count:
            break
    return ticks


def _draw(axes: Any, train: list[tuple[int, float]], evaluation: list[tuple[int, float]], log: bool) -> None:
    """Train loss as a line and eval loss as marked points on `axes`; with `log`, a log y axis labelled with
    plain numbers when the loss spans more than a factor of 2 (a narrower span reads as well on a linear
    axis, with rounder ticks; a loss that is not positive has no log)."""
    from matplotlib.ticker import MaxNLocator, NullLocator

    if train:
        axes.plot(*zip(*train), color="C0", label="train loss")
    if evaluation:
        axes.plot(*zip(*evaluation), color="C1", marker="o", label="eval loss")
    values = [loss for _, loss in train + evaluation if math.isfinite(loss)]
    if log and values and 0 < 2 * min(values) < max(values):
        axes.set_yscale("log")
        axes.yaxis.set_minor_locator(NullLocator())  # its own minor ticks would read 2x10^0, 3x10^0, ...
        ticks = _log_ticks(min(values), max(values))
        axes.set_yticks(ticks, labels=[f"{tick:g}" for tick in ticks])
    axes.set_xlabel("step")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers, never "22.5"
    axes.grid(alpha=0.3)


def _draw_rewards(axes: Any, records: list[dict[str, Any]]) -> None:
    """Preference runs (DPO, IPO, KTO, ORPO, SimPO): the implicit rewards of the chosen and rejected answers and
    their margin against step (train lines, eval points), and the reward accuracy on a second axis."""
    for key, colour in (("rewards/chosen", "tab:green"), ("rewards/rejected", "tab:red"), ("rewards/margins", "tab:blue")):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            axes.plot(*zip(*points), color=colour, linewidth=1, label=key.split("/")[1])
        evaluated = [(r["step"], r["eval_" + key]) for r in records if "eval_" + key in r]
        if evaluated:
            axes.plot(*zip(*evaluated), "o", color=colour, markersize=4)
    axes.set_xlabel("step")
    axes.set_ylabel("implicit reward")
    axes.grid(alpha=0.3)
    accuracy = axes.twinx()
    for key, style in (("rewards/accuracies", "-"), ("eval_rewards/accuracies", "o")):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            accuracy.plot(*zip(*points), style, color="tab:gray", linewidth=1, markersize=4,
                          label="accuracy" if style == "-" else "eval accuracy")
    accuracy.set_ylim(-0.05, 1.05)
    accuracy.set_ylabel("reward accuracy")
    axes.set_title("preference rewards (eval: points)")
    axes.legend(loc="upper left", fontsize=8)


def plot_losses(records: list[dict[str, Any]], path: Path) -> None:
    """Train and eval loss against step, written atomically to `path` (PNG), in two panels.

    Left, the whole run on a log y axis (see `_draw`): the first steps' steep fall and the slower progress
    after it are both readable (on a linear axis, a fine-tune falling from ~6.5 squeezes everything after
    the first steps into the bottom tenth). Right, the second half of the run on a linear axis scaled to it
    alone, where a plateau, noise or eval loss turning up can be read to the second decimal.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evaluation = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    preference = any("rewards/margins" in r or "eval_rewards/margins" in r for r in records)
    figure, axes = plt.subplots(1, 3 if preference else 2, figsize=(16.5 if preference else 11, 4), dpi=100)
    whole, later = axes[0], axes[1]
    if preference:
        _draw_rewards(axes[2], records)
    _draw(whole, train, evaluation, log=True)
    whole.set_title("whole run" + (" (log scale)" if whole.get_yscale() == "log" else ""))
    whole.set_ylabel("loss")
    middle = max((step for step, _ in train + evaluation), default=0) // 2
    _draw(later, [p for p in train if p[0] >= middle], [p for p in evaluation if p[0] >= middle], log=False)
    later.set_title(f"second half, from step {middle}")
    if train or evaluation:
        whole.legend()
    figure.tight_layout()
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary)
    plt.close(figure)
    temporary.replace(path)


class RunRecorder(TrainerCallback):
    """Writes every log to `metrics.jsonl` and redraws `loss.png` at each evaluation and at the end.

    Each record adds the step, the token counts so far, peak memory and the seconds since training began.
    Rates (`tokens_per_s`: input tokens, `trained_tokens_per_s`: tokens with a loss) appear only where
    tokens were trained:
    - a training log (it has `loss`): the rate since the previous training log, evaluation time excluded;
    - the Trainer's closing summary (it has `train_loss`, the mean over the run): the average over the whole
      training of this call, evaluations and checkpoint saves included (what the run as a whole achieved);
    - an evaluation record has none (it trains no tokens; its own `eval_samples_per_second` says how fast
      evaluation ran).
    """

    def __init__(self, output_dir: Path):
        self.output_dir = output_dir
        self.trainer: Any = None  # set once the trainer exists; it counts the trained tokens
        self.records: list[dict[str, Any]] = []
        self.started = time.perf_counter()
        self._first = self._last = (self.started, 0, 0)  # (time, tokens seen, trained tokens)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "metrics.jsonl").write_text("")
        self.started = time.perf_counter()
        # A resumed run starts from the checkpoint's token count: rates count this call's tokens only.
        self._first = self._last = (self.started, state.num_input_tokens_seen, self._trained())

    def _trained(self) -> int:
        """All processes' trained tokens: every process must call it at the same point (a collective)."""
        return self.trainer.trained_tokens if self.trainer is not None else 0

    def _rates(self, logs: dict[str, Any], now: float, seen: int, trained: int) -> dict[str, float]:
        """Token rates for a log record (see the class docstring), and the mark the next training log counts
        from: every training log or evaluation moves it, so evaluation time never dilutes a training rate."""
        since = self._last if "loss" in logs else self._first if "train_loss" in logs else None
        if "loss" in logs or "eval_loss" in logs:
            self._last = (now, seen, trained)
        if since is None:
            return {}
        then, seen_before, trained_before = since
        elapsed = max(now - then, 1e-9)
        return {"tokens_per_s": (seen - seen_before) / elapsed,
                "trained_tokens_per_s": (trained - trained_before) / elapsed}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        trained = self._trained()  # on every process: with several it sums across them
        now, seen = time.perf_counter(), int(state.num_input_tokens_seen)
        rates = self._rates(logs, now, seen, trained)
        if not state.is_world_process_zero:
            return
        record = {"step": state.global_step, "epoch": state.epoch, **logs, "tokens_seen": seen,
                  "trained_tokens": trained, **rates, "memory_mib": round(_memory_mib(), 1),
                  "elapsed_s": round(now - self.started, 3)}
        self.records.append(record)
        with (self.output_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def on_step_end(self, args, state, control, **kwargs):
        # The last step always logs its loss (the mean since the previous log), whatever `logging_steps` is:
        # otherwise a run shorter than `logging_steps` ends without any train loss to report or record.
        if state.global_step >= state.max_steps:
            control.should_log = True
        return control

    def on_evaluate(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            plot_losses(self.records, self.output_dir / "loss.png")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            plot_losses(self.records, self.output_dir / "loss.png")


class ProgressBar(TrainerCallback):
    """step/total, loss, lr, tokens/s and ETA on one live line (rich)."""

    def __init__(self, recorder: RunRecorder):
        self.recorder = recorder
        self.progress = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        if not state.is_world_process_zero:
            return
        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
        self.task = self.progress.add_task("train", total=state.max_steps, info="")
        self.progress.start()

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is None:
            return
        last = next((r for r in reversed(self.recorder.records) if "loss" in r), None)
        info = ""
        if last:
            info = (f"loss {last['loss']:.4f}  lr {last.get('learning_rate', 0):.2e}  "
                    f"{last['tokens_per_s']:,.0f} tok/s")
            if "rewards/accuracies" in last:  # preference runs: is the chosen answer winning, and by how much
                info += f"  acc {last['rewards/accuracies']:.2f}  margin {last.get('rewards/margins', 0):.3f}"
        self.progress.update(self.task, completed=state.global_step, info=info)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()


def early_stopping(cfg: Any, arguments: Any) -> list[TrainerCallback]:
    """transformers' EarlyStoppingCallback for `early_stopping_patience` (as Axolotl), when the run evaluates;
    `arguments.training_arguments` set the metric and best-checkpoint loading it reads."""
    if not cfg.early_stopping_patience or arguments.eval_strategy == "no":
        return []
    from transformers import EarlyStoppingCallback

    return [EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]

