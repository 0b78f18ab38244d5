"""mount(2), umount2(2), pivot_root(2), mount propagation, and OCI mount option parsing.

``parse_options`` turns the option words of an OCI ``mounts[]`` entry (``ro``, ``nosuid``,
``rbind``, ``rslave``, ``mode=755`` ...) into what mount(2) wants: flags, the propagation
flags (applied with a second call, as the kernel requires), and the fs-specific data.
"""

from __future__ import annotations

import ctypes
from typing import NamedTuple

from dockyard.linux.libc import LIBC, SYS, check, fs

__all__ = [
    "MNT_DETACH",
    "MNT_FORCE",
    "MS_BIND",
    "MS_DIRSYNC",
    "MS_LAZYTIME",
    "MS_MOVE",
    "MS_NOATIME",
    "MS_NODEV",
    "MS_NODIRATIME",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_NOSYMFOLLOW",
    "MS_PRIVATE",
    "MS_RDONLY",
    "MS_REC",
    "MS_RELATIME",
    "MS_REMOUNT",
    "MS_SHARED",
    "MS_SLAVE",
    "MS_STRICTATIME",
    "MS_SYNCHRONOUS",
    "MS_UNBINDABLE",
    "MountOptions",
    "PROPAGATION",
    "mount",
    "parse_options",
    "pivot_root",
    "statvfs_to_ms",
    "umount2",
]

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2

_mount = LIBC.mount
_mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_mount.restype = ctypes.c_int
_umount2 = LIBC.umount2
_umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_umount2.restype = ctypes.c_int


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    """mount(2). Raises OSError naming ``target``."""
    check(_mount(fs(source), fs(target), fs(fstype), flags, fs(data)), target)


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2). Raises OSError naming ``target``."""
    check(_umount2(fs(target), flags), target)


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) (glibc has no wrapper). Raises OSError naming ``new_root``."""
    check(LIBC.syscall(SYS["pivot_root"], fs(new_root), fs(put_old)), new_root)


# option word -> (flags to set, flags to clear)
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0),
    "ro": (MS_RDONLY, 0),
    "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0),
    "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0),
    "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0),
    "exec": (0, MS_NOEXEC),
    "sync": (MS_SYNCHRONOUS, 0),
    "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0),
    "mand": (MS_MANDLOCK, 0),
    "nomand": (0, MS_MANDLOCK),
    "noatime": (MS_NOATIME, 0),
    "atime": (0, MS_NOATIME),
    "nodiratime": (MS_NODIRATIME, 0),
    "diratime": (0, MS_NODIRATIME),
    "relatime": (MS_RELATIME, 0),
    "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0),
    "nostrictatime": (0, MS_STRICTATIME),
    "lazytime": (MS_LAZYTIME, 0),
    "nolazytime": (0, MS_LAZYTIME),
    "nosymfollow": (MS_NOSYMFOLLOW, 0),
    "symfollow": (0, MS_NOSYMFOLLOW),
    "bind": (MS_BIND, 0),
    "rbind": (MS_BIND | MS_REC, 0),
    "remount": (MS_REMOUNT, 0),
}

#: propagation option word -> flags for a separate mount(2) call
PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# words the OCI spec defines that change nothing for mount(2) here
_IGNORED = frozenset({"tmpcopyup", "rro", "rrw", "notmpcopyup"})


class MountOptions(NamedTuple):
    """The parsed form of OCI mount options."""

    flags: int  # MS_* for the first mount(2) call
    propagation: int  # MS_{PRIVATE,SLAVE,SHARED,UNBINDABLE}[|MS_REC], 0 for none
    data: str  # comma-joined fs-specific options ("mode=755,size=65536k")

    @property
    def bind(self) -> bool:
        return bool(self.flags & MS_BIND)


def parse_options(options: tuple[str, ...] | list[str]) -> MountOptions:
    """Split OCI mount option words into flags, propagation and data (pure)."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            set_, clear = _FLAG_OPTIONS[opt]
            flags = (flags | set_) & ~clear
        elif opt in PROPAGATION:
            propagation = PROPAGATION[opt]
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    return MountOptions(flags, propagation, ",".join(data))


_ST_TO_MS = (
    (1, MS_RDONLY),
    (2, MS_NOSUID),
    (4, MS_NODEV),
    (8, MS_NOEXEC),
    (1024, MS_NOATIME),
    (2048, MS_NODIRATIME),
    (4096, MS_RELATIME),
    (256, MS_NOSYMFOLLOW),
)


def statvfs_to_ms(f_flag: int) -> int:
    """The MS_* flags that keep a mount's current per-mount flags (ST_* from statvfs)."""
    out = 0
    for st, ms in _ST_TO_MS:
        if f_flag & st:
            out |= ms
    return out
