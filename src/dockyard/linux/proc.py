"""Process identity and limits: sethostname/setdomainname, setgroups, setresuid/setresgid,
rlimits (prlimit), close_range, pidfd_open, and the /proc/<pid>/stat start time."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence

from dockyard.linux.libc import LIBC, SYS, check

__all__ = [
    "CLOSE_RANGE_CLOEXEC",
    "RLIMITS",
    "RLIM_INFINITY",
    "close_range",
    "pidfd_open",
    "process_start_time",
    "process_state",
    "sethostname",
    "setdomainname",
    "setgroups",
    "setresgid",
    "setresuid",
    "setrlimit",
]

#: OCI rlimit type -> RLIMIT_* number (asm-generic/resource.h)
RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}
RLIM_INFINITY = (1 << 64) - 1
CLOSE_RANGE_CLOEXEC = 4


class _Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint64), ("max", ctypes.c_uint64)]


_prlimit = LIBC.prlimit
_prlimit.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Rlimit), ctypes.POINTER(_Rlimit)]
_prlimit.restype = ctypes.c_int
_sethostname = LIBC.sethostname
_sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_sethostname.restype = ctypes.c_int
_setdomainname = LIBC.setdomainname
_setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_setdomainname.restype = ctypes.c_int


def sethostname(name: str) -> None:
    """sethostname(2) in the caller's UTS namespace."""
    b = name.encode()
    check(_sethostname(b, len(b)))


def setdomainname(name: str) -> None:
    """setdomainname(2) in the caller's UTS namespace."""
    b = name.encode()
    check(_setdomainname(b, len(b)))


def setgroups(gids: Sequence[int]) -> None:
    """setgroups(2): the supplementary groups."""
    os.setgroups(list(gids))


def setresuid(ruid: int, euid: int, suid: int) -> None:
    """setresuid(2) (glibc applies it to every thread)."""
    os.setresuid(ruid, euid, suid)


def setresgid(rgid: int, egid: int, sgid: int) -> None:
    """setresgid(2) (glibc applies it to every thread)."""
    os.setresgid(rgid, egid, sgid)


def setrlimit(resource: int, soft: int, hard: int) -> None:
    """prlimit(2) on the calling process; values above 2**64-1 mean unlimited."""
    new = _Rlimit(min(soft, RLIM_INFINITY), min(hard, RLIM_INFINITY))
    check(_prlimit(0, resource, ctypes.byref(new), None))


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    """close_range(2); with CLOSE_RANGE_CLOEXEC the fds are only marked close-on-exec."""
    check(
        LIBC.syscall(
            SYS["close_range"], ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags)
        )
    )


def pidfd_open(pid: int) -> int:
    """pidfd_open(2): a file descriptor that refers to process ``pid``."""
    return check(LIBC.syscall(SYS["pidfd_open"], ctypes.c_int(pid), ctypes.c_uint(0)))


def _stat_fields(pid: int, proc_root: str) -> list[str] | None:
    try:
        with open(f"{proc_root}/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    return raw[raw.rfind(b")") + 2 :].decode().split()


def process_start_time(pid: int, proc_root: str = "/proc") -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), None if there is no such pid.

    Together with the pid it names one process across pid reuse."""
    fields = _stat_fields(pid, proc_root)
    return int(fields[19]) if fields else None


def process_state(pid: int, proc_root: str = "/proc") -> str | None:
    """The one-letter state of ``pid`` (``R``, ``S``, ``Z`` ...), None if there is no such pid."""
    fields = _stat_fields(pid, proc_root)
    return fields[0] if fields else None
