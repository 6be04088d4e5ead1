"""Sweep isolation: a failing point is recorded and the others still run; the sweep then exits non-zero.

Every job of a multirun catches its own error (run.py has already written `results.json` with
`status: failed`) and appends it to a failures file whose path the sweep's process puts in the environment, so
that jobs in other processes (joblib, submitit) report to the same place. At the end the callback prints which
points failed, and `cli.main` turns that into exit code 1.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

FAILURES_ENV = "ADAMIX_SWEEP_FAILURES"
_failed_sweep: list[dict[str, Any]] = []
_rejected: list[dict[str, Any]] = []


def reject(values: list[tuple[str, str]]) -> None:
    """Sweep values that the preflight refused (`key=value`, message): the sweep runs without them, and the report
    lists each as failed (every point that would have had it; those points get no run folder)."""
    _rejected[:] = [
        {"overrides": [override, "(every point with this value)"], "error": msg} for override, msg in values
    ]


def log_failure(overrides: list[str], error: BaseException) -> None:
    record = {"overrides": overrides, "error": f"{type(error).__name__}: {error}"}
    path = os.environ.get(FAILURES_ENV)
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def failed_points() -> list[dict[str, Any]]:
    """The failures of the sweep that just ended in this process (empty when it all went well)."""
    return list(_failed_sweep)


class SweepReport(Callback):
    """Hydra callback (conf/config.yaml, hydra.callbacks): collects the failures of one multirun."""

    def on_multirun_start(self, config, **kwargs) -> None:
        handle, path = tempfile.mkstemp(prefix="adamix-sweep-", suffix=".jsonl")
        os.close(handle)
        os.environ[FAILURES_ENV] = path
        _failed_sweep.clear()
        Path(path).write_text("".join(json.dumps(record) + "\n" for record in _rejected))
        _rejected.clear()  # this sweep's: a later sweep in the same process starts with none

    def on_multirun_end(self, config, **kwargs) -> None:
        path = Path(os.environ.pop(FAILURES_ENV, ""))
        if not path.is_file():
            return
        _failed_sweep.extend(json.loads(line) for line in path.read_text().splitlines() if line)
        path.unlink()
        for failure in _failed_sweep:
            print(f"failed: {' '.join(failure['overrides'])}\n  {failure['error']}")
        if _failed_sweep:
            print(f"{len(_failed_sweep)} sweep point(s) failed; their results.json say status: failed.")
