"""The first SIGINT/SIGTERM becomes a stop request; a second one exits at once with 128 + signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from adamix_runner.training.signals import Interrupted

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from adamix_runner.training.signals import StopSignals
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.{name})
        assert stop.received == signal.{name}, stop.received
        print("first: stop requested", flush=True)
        os.kill(os.getpid(), signal.{name})
        time.sleep(30)
    print("not reached")
    """
)


def _run(name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(name=name)], capture_output=True, text=True, timeout=20)


def test_second_sigint_exits_at_once():
    done = _run("SIGINT")
    assert done.stdout == "first: stop requested\n", done.stderr
    assert done.returncode == 128 + signal.SIGINT


def test_second_sigterm_exits_at_once():
    done = _run("SIGTERM")
    assert done.stdout == "first: stop requested\n", done.stderr
    assert done.returncode == 128 + signal.SIGTERM


def test_handlers_are_restored_after_the_block():
    before = signal.getsignal(signal.SIGINT)
    from adamix_runner.training.signals import StopSignals

    with StopSignals():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_interrupted_names_signal_step_and_checkpoint():
    stop = Interrupted(signal.SIGTERM, 12, "/runs/x/checkpoint/step-00000012")
    assert stop.exit_code == 143
    assert str(stop) == (
        "SIGTERM at step 12; checkpoint /runs/x/checkpoint/step-00000012; run the same command again to resume"
    )


def test_second_usr2_exits_at_once():
    """USR2 (SLURM's warning before a time limit) is a stop signal like SIGTERM."""
    done = _run("SIGUSR2")
    assert done.stdout == "first: stop requested\n", done.stderr
    assert done.returncode == 128 + signal.SIGUSR2


def test_only_the_preempt_signals_previous_python_handler_is_handed_over():
    from adamix_runner.training.signals import StopSignals

    def submitit_requeue(signum, frame):
        raise AssertionError("not called here")

    before = signal.signal(signal.SIGUSR2, submitit_requeue)
    try:
        with StopSignals() as stop:
            assert stop.previous_handler(signal.SIGUSR2) is submitit_requeue
            assert stop.previous_handler(signal.SIGTERM) is None  # the default action: nothing to hand over
            assert stop.previous_handler(signal.SIGINT) is None  # KeyboardInterrupt would hide the clean stop
    finally:
        signal.signal(signal.SIGUSR2, before)


def test_submitits_preempt_signal_setting_is_followed(monkeypatch):
    from adamix_runner.training import signals

    monkeypatch.setenv(signals.PREEMPT_SIGNAL_ENV, "USR1")
    assert signals.handled() == (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    monkeypatch.setenv(signals.PREEMPT_SIGNAL_ENV, "NOPE")
    with pytest.raises(ValueError, match=r"SUBMITIT_PREEMPT_SIGNAL=NOPE names no signal"):
        signals.handled()
