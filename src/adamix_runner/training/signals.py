"""SIGINT/SIGTERM during training: stop at the next optimizer step, save a checkpoint, report `interrupted`.

The first signal only sets a flag that the loop reads after each optimizer step, never inside an accumulation
window (no work is lost, the checkpoint is written from a consistent state and resumes exactly). A second
signal means "now": the process exits at once with 128 + the signal number.
"""

from __future__ import annotations

import os
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint; rerunning the same command resumes."""

    def __init__(self, signum: int, step: int, checkpoint: str | None) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"{name} at step {step}; checkpoint {checkpoint}; run the same command again to resume")


class StopSignals:
    """Context manager that turns the first SIGINT/SIGTERM into a stop request (main thread only)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            os._exit(128 + signum)
        self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in HANDLED}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
