"""Trainer callbacks: metrics.jsonl, loss.png and a live progress bar."""

from __future__ import annotations

import json
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


def plot_losses(records: list[dict[str, Any]], path: Path) -> None:
    """Train and eval loss against step, written atomically to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evaluation = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        axes.plot(*zip(*train), label="train loss")
    if evaluation:
        axes.plot(*zip(*evaluation), marker="o", label="eval loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary)
    plt.close(figure)
    temporary.replace(path)


class RunRecorder(TrainerCallback):
    """Writes every log to `metrics.jsonl` (with tokens/s and memory) and redraws `loss.png` at each
    evaluation and at the end."""

    def __init__(self, output_dir: Path):
        self.output_dir = output_dir
        self.trainer: Any = None  # set once the trainer exists; it counts the trained tokens
        self.records: list[dict[str, Any]] = []
        self.started = time.perf_counter()
        self._last = (self.started, 0, 0)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "metrics.jsonl").write_text("")
        self.started = time.perf_counter()
        self._last = (self.started, state.num_input_tokens_seen, self._trained())

    def _trained(self) -> int:
        """All processes' trained tokens: every process must call it at the same point (a collective)."""
        return self.trainer.trained_tokens if self.trainer is not None else 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        trained = self._trained()  # on every process: with several it sums across them
        if not state.is_world_process_zero:
            if "loss" in logs or "eval_loss" in logs:
                self._last = (time.perf_counter(), state.num_input_tokens_seen, trained)
            return
        now = time.perf_counter()
        then, seen_before, trained_before = self._last
        elapsed = max(now - then, 1e-9)
        record = {"step": state.global_step, "epoch": state.epoch, **logs,
                  "tokens_seen": int(state.num_input_tokens_seen), "trained_tokens": trained,
                  "tokens_per_s": (state.num_input_tokens_seen - seen_before) / elapsed,
                  "trained_tokens_per_s": (trained - trained_before) / elapsed,
                  "memory_mib": round(_memory_mib(), 1), "elapsed_s": round(now - self.started, 3)}
        if "loss" in logs or "eval_loss" in logs:
            self._last = (now, state.num_input_tokens_seen, trained)
        self.records.append(record)
        with (self.output_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")

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
        self.progress.update(self.task, completed=state.global_step, info=info)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
