"""capget(2)/capset(2), capability names, and prctl(2) for the bounding and ambient sets,
NO_NEW_PRIVS, PDEATHSIG, CHILD_SUBREAPER and KEEPCAPS.

Capability sets are plain ints, bit ``n`` = capability number ``n``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable

from dockyard.linux.libc import LIBC, check

__all__ = [
    "CAPABILITIES",
    "CAP_NUMBERS",
    "CapState",
    "ambient_clear_all",
    "ambient_raise",
    "bounding_drop",
    "bounding_has",
    "capget",
    "capset",
    "last_cap",
    "mask_of",
    "names_of",
    "prctl",
    "set_child_subreaper",
    "set_dumpable",
    "set_keepcaps",
    "set_no_new_privs",
    "set_pdeathsig",
]

#: capability names in kernel order (index = number), as in linux/capability.h
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(CAPABILITIES)}

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_DataPair = _Data * 2

_capget = LIBC.capget
_capget.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]
_capget.restype = ctypes.c_int
_capset = LIBC.capset
_capset.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]
_capset.restype = ctypes.c_int
_prctl = LIBC.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def mask_of(names: Iterable[str]) -> int:
    """The bit mask of capability ``names`` (``CAP_X``); KeyError on an unknown name."""
    mask = 0
    for name in names:
        mask |= 1 << CAP_NUMBERS[name]
    return mask


def names_of(mask: int) -> list[str]:
    """The capability names set in ``mask``, in kernel order."""
    return [name for i, name in enumerate(CAPABILITIES) if mask >> i & 1]


def last_cap(proc_root: str = "/proc") -> int:
    """The highest capability number this kernel knows."""
    try:
        with open(f"{proc_root}/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITIES) - 1


class CapState(tuple[int, int, int]):
    """(effective, permitted, inheritable) of a thread."""

    @property
    def effective(self) -> int:
        return self[0]

    @property
    def permitted(self) -> int:
        return self[1]

    @property
    def inheritable(self) -> int:
        return self[2]


def capget(pid: int = 0) -> CapState:
    """capget(2) of ``pid`` (0 = the calling thread)."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, pid)
    data = _DataPair()
    check(_capget(ctypes.byref(hdr), data))
    return CapState(
        (
            data[0].effective | data[1].effective << 32,
            data[0].permitted | data[1].permitted << 32,
            data[0].inheritable | data[1].inheritable << 32,
        )
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) of the calling thread."""
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _DataPair()
    m = 0xFFFFFFFF
    data[0].effective, data[1].effective = effective & m, effective >> 32 & m
    data[0].permitted, data[1].permitted = permitted & m, permitted >> 32 & m
    data[0].inheritable, data[1].inheritable = inheritable & m, inheritable >> 32 & m
    check(_capset(ctypes.byref(hdr), data))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2); returns its non-negative result."""
    return check(_prctl(option, arg2, arg3, arg4, arg5))


def bounding_drop(cap: int) -> None:
    """Drop capability number ``cap`` from the bounding set (needs CAP_SETPCAP)."""
    prctl(PR_CAPBSET_DROP, cap)


def bounding_has(cap: int) -> bool:
    """Whether capability number ``cap`` is in the bounding set."""
    return prctl(PR_CAPBSET_READ, cap) == 1


def ambient_raise(cap: int) -> None:
    """Raise ``cap`` in the ambient set (it must be permitted and inheritable)."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def ambient_clear_all() -> None:
    """Empty the ambient set."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: execve never grants privileges again (irreversible)."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_keepcaps(on: bool) -> None:
    """PR_SET_KEEPCAPS: keep permitted capabilities across a change away from uid 0."""
    prctl(PR_SET_KEEPCAPS, int(on))


def set_pdeathsig(sig: int) -> None:
    """PR_SET_PDEATHSIG: receive ``sig`` when the parent thread dies (0 clears)."""
    prctl(PR_SET_PDEATHSIG, sig)


def set_child_subreaper(on: bool) -> None:
    """PR_SET_CHILD_SUBREAPER: orphaned descendants are reparented to this process."""
    prctl(PR_SET_CHILD_SUBREAPER, int(on))


def set_dumpable(on: bool) -> None:
    """PR_SET_DUMPABLE."""
    prctl(PR_SET_DUMPABLE, int(on))
