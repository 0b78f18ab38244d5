"""unshare(2), setns(2), the CLONE_NEW* flags and the OCI namespace names."""

from __future__ import annotations

import ctypes

from dockyard.linux.libc import LIBC, check

__all__ = [
    "CLONE_NEWCGROUP",
    "CLONE_NEWIPC",
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "CLONE_NEWTIME",
    "CLONE_NEWUSER",
    "CLONE_NEWUTS",
    "NAMESPACES",
    "ns_path",
    "setns",
    "unshare",
]

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

#: OCI namespace type -> (CLONE_NEW* flag, the name under /proc/<pid>/ns/)
NAMESPACES: dict[str, tuple[int, str]] = {
    "mount": (CLONE_NEWNS, "mnt"),
    "uts": (CLONE_NEWUTS, "uts"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "user": (CLONE_NEWUSER, "user"),
    "time": (CLONE_NEWTIME, "time"),
}

_unshare = LIBC.unshare
_unshare.argtypes = [ctypes.c_int]
_unshare.restype = ctypes.c_int
_setns = LIBC.setns
_setns.argtypes = [ctypes.c_int, ctypes.c_int]
_setns.restype = ctypes.c_int


def unshare(flags: int) -> None:
    """unshare(2) with CLONE_* ``flags``."""
    check(_unshare(flags))


def setns(fd: int, nstype: int) -> None:
    """setns(2): join the namespace open at ``fd`` (``nstype`` 0 accepts any type)."""
    check(_setns(fd, nstype))


def ns_path(pid: int | str, oci_type: str, proc_root: str = "/proc") -> str:
    """The /proc path of ``pid``'s namespace of OCI type ``oci_type`` (``"self"`` works)."""
    return f"{proc_root}/{pid}/ns/{NAMESPACES[oci_type][1]}"
