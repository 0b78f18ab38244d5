"""The C library, loaded once, and the errno → OSError convention of ``dockyard.linux``.

Functions here and in the sibling modules follow C semantics: a failing call raises
``OSError(errno, strerror[, path])`` and nothing is retried.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["LIBC", "SYS", "check", "fs", "raise_errno"]

#: glibc, already mapped into the interpreter; ``use_errno`` makes ctypes save errno
LIBC = ctypes.CDLL(None, use_errno=True)

_SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"pivot_root": 155, "close_range": 436, "pidfd_open": 434},
    "aarch64": {"pivot_root": 41, "close_range": 436, "pidfd_open": 434},
}
#: raw syscall numbers for calls glibc does not wrap on every version
SYS: dict[str, int] = _SYSCALL_NUMBERS.get(os.uname().machine, _SYSCALL_NUMBERS["x86_64"])

LIBC.syscall.restype = ctypes.c_long


def raise_errno(path: str | None = None) -> None:
    """Raise OSError from the saved errno, naming ``path`` when given."""
    err = ctypes.get_errno()
    if path is None:
        raise OSError(err, os.strerror(err))
    raise OSError(err, os.strerror(err), path)


def check(ret: int, path: str | None = None) -> int:
    """Return ``ret``, or raise OSError from errno when ``ret`` is negative."""
    if ret < 0:
        raise_errno(path)
    return ret


def fs(path: str | os.PathLike[str] | None) -> bytes | None:
    """A path as the bytes C wants (``None`` stays ``None``)."""
    return None if path is None else os.fsencode(path)
