"""exit_status: the exit code, or 128+signal."""

from __future__ import annotations

import os
import signal

from dockyard.runtime import exit_status


def _status_of(code: int | None = None, sig: int | None = None) -> int:
    pid = os.fork()
    if pid == 0:
        if sig is not None:
            os.kill(os.getpid(), sig)
        os._exit(code or 0)
    return os.waitpid(pid, 0)[1]


def test_exit_codes() -> None:
    assert exit_status(_status_of(0)) == 0
    assert exit_status(_status_of(3)) == 3


def test_signals_are_128_plus() -> None:
    assert exit_status(_status_of(sig=signal.SIGKILL)) == 137
    assert exit_status(_status_of(sig=signal.SIGTERM)) == 143
