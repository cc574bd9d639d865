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
    """Stops on a NaN/inf loss at once, and on a loss above `threshold` for `patience` logs in a row."""

    def __init__(self, threshold: float | None, patience: int):
        self.threshold = threshold
        self.patience = patience
        self.strikes = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        grad_norm = (logs or {}).get("grad_norm")
        if not math.isfinite(loss) or (grad_norm is not None and not math.isfinite(grad_norm)):
            what = f"the loss became {loss}" if not math.isfinite(loss) else f"the gradient norm became {grad_norm}"
            raise TrainingDiverged([Problem(
                Severity.ERROR, Kind.CONFLICT, "learning_rate", f"{what} at step {state.global_step}.",
                "Lower learning_rate, raise warmup_steps, keep max_grad_norm on (1.0), or use bf16 instead of fp16.")])
        if self.threshold is not None and loss > self.threshold:
            self.strikes += 1
            if self.strikes >= self.patience:
                raise TrainingDiverged([Problem(
                    Severity.ERROR, Kind.CONFLICT, "loss_watchdog_threshold",
                    f"the loss stayed above {self.threshold:g} for {self.strikes} logs (now {loss:.4g} at step "
                    f"{state.global_step}).", "Lower learning_rate or check the data; raise the threshold if expected.")])
        else:
            self.strikes = 0


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
