"""Turns on the one model `axo serve` holds: first come, first served, a bounded line, and jobs that stop
when their client leaves, their time is up or the server shuts down."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from axo.infer.api_errors import busy


@dataclass
class Job:
    """One request's claim on the model: cancelled when its client leaves or the server stops, expired at
    `deadline` (time.monotonic())."""

    deadline: float
    cancelled: threading.Event = field(default_factory=threading.Event)

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() > self.deadline


class TurnQueue:
    """First come, first served turns on the model, at most `max_waiting` waiting; `close()` cancels them all."""

    def __init__(self, max_waiting: int):
        self.max_waiting = max_waiting
        self._changed = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._closed = False

    def join(self, job: Job) -> None:
        """Put `job` at the back of the line. Raises ApiError (503) when the line is full or the server stops."""
        with self._changed:
            if self._closed:
                raise busy("The server is shutting down.")
            if len(self._waiting) >= self.max_waiting:
                raise busy(f"The server is busy: {len(self._waiting)} requests are waiting; retry later.")
            self._waiting.append(job)

    def wait_turn(self, job: Job) -> bool:
        """Block until `job` is first in line and the model is free (True), or it stops first (False; it leaves)."""
        with self._changed:
            while self._running is not None or self._waiting[0] is not job:
                if job.should_stop():
                    self._waiting.remove(job)
                    self._changed.notify_all()
                    return False
                self._changed.wait(timeout=0.1)  # wakes on `done`, and polls the job's cancel flag and deadline
            self._running = self._waiting.popleft()
            return True

    def done(self) -> None:
        """The running job gave the model back."""
        with self._changed:
            self._running = None
            self._changed.notify_all()

    def close(self) -> None:
        """Refuse new jobs and cancel every waiting and running one (shutdown)."""
        with self._changed:
            self._closed = True
            for job in [*self._waiting, *([self._running] if self._running else [])]:
                job.cancelled.set()
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def status(self) -> dict[str, int]:
        with self._changed:
            return {"running": int(self._running is not None), "waiting": len(self._waiting),
                    "max_queue": self.max_waiting}
