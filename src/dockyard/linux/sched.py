"""The priority of work done ahead of need.

The launcher prepares spare processes (a shim, a container init in fresh namespaces)
before anyone asks for them. That work must not take a CPU from a container being
started at the same moment, so it runs at the lowest priority: nice 19 (not SCHED_IDLE:
a spare may hold a kernel lock such as the mount namespace semaphore for a moment, and
nice 19 still gets a share of a busy CPU to release it). A spare that gets its job is
raised back to the nice value it was made from: by itself (``restore``) or, for a child
still busy with its own preparation, by its parent (``share_with``). Raising a priority
needs CAP_SYS_NICE; without it a process stays where it is.
"""

from __future__ import annotations

import os

__all__ = ["LOWEST", "lower", "restore", "share_with"]

LOWEST = 19


def lower() -> int:
    """Run the caller at nice 19; return its nice value before, for ``restore``."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, LOWEST)
    return before


def restore(nice: int, pid: int = 0) -> None:
    """Set the nice value of ``pid`` (0: the caller); a refusal (EPERM, ESRCH) is ignored."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError:
        pass


def share_with(pid: int) -> None:
    """Give the caller's nice value to ``pid``, a child of the caller not yet reaped (so
    the pid cannot name another process)."""
    restore(os.getpriority(os.PRIO_PROCESS, 0), pid)
