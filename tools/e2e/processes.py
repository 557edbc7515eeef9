"""Stopping a server the harness started in a session of its own: it and whatever it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Signal a server and whatever it started (each server leads its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)


def stop_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM, ``grace`` seconds to end, then SIGKILL; returns once the process is gone."""
    if proc.poll() is not None:
        return
    signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=grace)
