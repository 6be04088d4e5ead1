"""SIGINT, SIGTERM and SLURM's USR2 during a run: stop at the next optimizer step, save a checkpoint, report
`interrupted`.

The first signal only sets a flag that the loop reads after each optimizer step, never inside an accumulation
window (the work lost is at most one optimizer step, the checkpoint is written from a consistent state and resumes
exactly). Under DDP the ranks agree on the stop (:func:`agreed_stop`), so a signal that reaches one rank first stops
every rank at the same step. A second signal means "now": the process exits at once with 128 + the signal number.

USR2 is what SLURM sends ``signal_delay_s`` before a time limit (``--signal=USR2@...``); submitit installs its own
USR2 handler, which requeues the job and exits. That handler is kept and called once the checkpoint and the
`interrupted` record are written (:meth:`Interrupted.hand_over`), so the requeued job resumes from this step's
checkpoint instead of the last periodic one. ``$SUBMITIT_PREEMPT_SIGNAL`` (submitit's setting) names another
signal to treat the same way.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

PREEMPT_SIGNAL_ENV = "SUBMITIT_PREEMPT_SIGNAL"


def preempt_signal() -> signal.Signals:
    """The signal a scheduler sends before a time limit: submitit's ``$SUBMITIT_PREEMPT_SIGNAL``, else USR2."""
    name = os.environ.get(PREEMPT_SIGNAL_ENV, "USR2")
    found = getattr(signal, "SIG" + name.upper().removeprefix("SIG"), None)
    if found is None:
        raise ValueError(f"${PREEMPT_SIGNAL_ENV}={name} names no signal; unset it or set it to e.g. USR2.")
    return found


def handled() -> tuple[signal.Signals, ...]:
    return tuple(dict.fromkeys((signal.SIGINT, signal.SIGTERM, preempt_signal())))


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint; rerunning the same command resumes."""

    def __init__(self, signum: int, step: int, checkpoint: str | None) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.exit_code = 128 + signum
        self.handover: Callable | None = None  # the preempt signal's previous handler (submitit's requeue)
        name = signal.Signals(signum).name
        super().__init__(f"{name} at step {step}; checkpoint {checkpoint}; run the same command again to resume")

    def hand_over(self) -> None:
        """Call the handler the signal had before the run (submitit requeues the job and exits), if any."""
        if self.handover is not None:
            self.handover(self.signum, None)


class StopSignals:
    """Context manager that turns the first stop signal into a stop request (main thread only).

    Handlers that were installed before (submitit's requeue on USR2) are kept for :meth:`Interrupted.hand_over`."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            os._exit(128 + signum)
        self.received = signum
        name = signal.Signals(signum).name
        os.write(2, f"{name}: stopping at the next optimizer step with a checkpoint; again to exit now\n".encode())

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in handled()}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def previous_handler(self, signum: int) -> Callable | None:
        """The Python handler the preempt signal had before this block (submitit's requeue), if any: submitit
        requeues the job and exits (``SystemExit``) on the main task and returns on the others."""
        handler = self._previous.get(signum)
        if signum != preempt_signal() or not callable(handler):
            return None
        return handler


def agreed_stop(received: int | None, due: bool, accelerator) -> tuple[int | None, bool]:
    """(signal to stop on, whether a clock checkpoint is due), the same on every rank: one tiny all-reduce (max)
    per optimizer step under DDP, nothing on one process. Without it a signal that lands between two ranks' checks
    stops them at different steps, and the survivor waits forever in the next gradient all-reduce."""
    if accelerator.num_processes == 1:
        return received, due
    import torch
    import torch.distributed as dist

    flags = torch.tensor([received or 0, int(due)], device=accelerator.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    signum, due_anywhere = flags.tolist()
    return (signum or None), bool(due_anywhere)
