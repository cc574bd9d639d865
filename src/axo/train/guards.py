"""Callbacks that stop a run cleanly: on SIGINT/SIGTERM (after saving), and when the loss diverges."""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from typing import Any

from transformers import TrainerCallback

from axo.config.problems import ConfigError, Kind, Problem, Severity


class TrainingDiverged(ConfigError):
    """The loss became NaN/inf or stayed above the watchdog threshold."""


class StopOnSignal(TrainerCallback):
    """The first SIGINT/SIGTERM asks for a checkpoint at the next step boundary and a clean stop; a second
    one exits at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread (e.g. not inside a notebook worker)
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            print(f"\nsecond {signal.Signals(signum).name}: exiting now without saving.", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.received = signum
        print(f"\n{signal.Signals(signum).name} received: saving a checkpoint at the end of this step, then "
              "stopping (send it again to exit at once).", file=sys.stderr, flush=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True
        return control


class LossWatchdog(TrainerCallback):
    """Stops on a NaN/inf loss at once, and on a loss above `threshold` for `patience` logs in a row.

    With `trainer` set (an AxoTrainer, which counts trained tokens), the NaN message says whether the
    batches since the previous log had any trained token: with none, the loss is 0/0 and the data's masking
    is to blame, not the learning rate."""

    def __init__(self, threshold: float | None, patience: int):
        self.threshold = threshold
        self.patience = patience
        self.strikes = 0
        self.trainer: Any = None  # set once the trainer exists
        self._counted = (0, 0)  # (step, trained tokens) at the previous training log

    def _trained_since_last_log(self, step: int) -> tuple[int, int] | None:
        """(step of the previous log, tokens trained since): every process calls it at each training log, as
        reading the count is a collective with several processes."""
        if self.trainer is None:
            return None
        total = self.trainer.trained_tokens
        (before_step, before), self._counted = self._counted, (step, total)
        return before_step, total - before

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed run starts counting at the checkpoint's step; the token counter starts at 0 in this process.
        self._counted = (state.global_step, 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        since = self._trained_since_last_log(state.global_step)
        grad_norm = (logs or {}).get("grad_norm")
        if not math.isfinite(loss) or (grad_norm is not None and not math.isfinite(grad_norm)):
            raise TrainingDiverged([_diverged(loss, grad_norm, state.global_step, since)])
        if self.threshold is not None and loss > self.threshold:
            self.strikes += 1
            if self.strikes >= self.patience:
                raise TrainingDiverged([Problem(
                    Severity.ERROR, Kind.CONFLICT, "loss_watchdog_threshold",
                    f"the loss stayed above {self.threshold:g} for {self.strikes} logs (now {loss:.4g} at step "
                    f"{state.global_step}).", "Lower learning_rate or check the data; raise the threshold if expected.")])
        else:
            self.strikes = 0


def _diverged(loss: float, grad_norm: float | None, step: int, since: tuple[int, int] | None) -> Problem:
    """The problem for a NaN/inf loss or gradient norm at `step`; `since` is (previous log's step, tokens
    trained since then) when known."""
    what = f"the loss became {loss}" if not math.isfinite(loss) else f"the gradient norm became {grad_norm}"
    steps = f"steps {since[0] + 1}–{step}" if since and since[0] + 1 < step else f"step {step}"
    if since is not None and since[1] == 0:
        return Problem(
            Severity.ERROR, Kind.CONFLICT, "datasets",
            f"{what} at step {step}, and no token of the batches of {steps} carried loss (every label was masked): "
            "the loss was 0/0. This is the data's masking, not the learning rate.",
            "Find the samples with no trained token (`axo preprocess CONFIG --debug 5` colours what is trained) and "
            "fix their masking (roles_to_train, train_on_inputs, empty answers), or set `sample_packing: true`, "
            "which drops such samples.")
    hint = "Lower learning_rate, raise warmup_steps, keep max_grad_norm on (1.0), or use bf16 instead of fp16."
    if since is None:
        return Problem(Severity.ERROR, Kind.CONFLICT, "learning_rate", f"{what} at step {step}.", hint)
    if steps.startswith("step "):  # one step: its batches had trained tokens, so the loss was no 0/0
        counted = f" (its batches had {since[1]:,} trained tokens, so the masking is not the cause)"
    else:  # several steps: one of them may still have had none
        counted = f" (the batches of {steps} had {since[1]:,} trained tokens)"
        hint += (" If `axo preprocess` reports samples with no trained token, a step made only of them is 0/0 "
                 "too: `logging_steps: 1` shows which step it was.")
    return Problem(Severity.ERROR, Kind.CONFLICT, "learning_rate", f"{what} at step {step}{counted}.", hint)


class FaultInjector(TrainerCallback):
    """Test support: `AXO_FAULT=kill_after_step:N` kills the process with SIGKILL after step N (the crash
    tests in tests/train/test_resume.py). Inactive unless the variable is set."""

    def __init__(self, spec: str):
        self.spec = spec

    def on_step_end(self, args, state, control, **kwargs):
        if self.spec == f"kill_after_step:{state.global_step}":
            os.kill(os.getpid(), signal.SIGKILL)


def fault_during_save(step: int) -> None:
    """Test support: `AXO_FAULT=kill_during_save:N` kills the process while checkpoint N is half-written."""
    if os.environ.get("AXO_FAULT") == f"kill_during_save:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
