"""Pseudo-terminals from a given devpts instance, the controlling tty, the window size.

A container allocates its pty from its own ``/dev/pts`` (``newinstance``), so ``open_pty``
takes the ptmx path instead of assuming the host's ``/dev/ptmx``.
"""

from __future__ import annotations

import fcntl
import os
import struct

__all__ = ["open_pty", "set_ctty", "set_winsize", "get_winsize"]

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCSCTTY = 0x540E
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414


def open_pty(ptmx: str = "/dev/ptmx") -> tuple[int, int, str]:
    """Open a new pty pair from ``ptmx``: (master fd, slave fd, slave path).

    Both fds are close-on-exec and O_NOCTTY; the slave path is ``<pts dir>/<n>`` of the
    instance that ``ptmx`` belongs to."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        (num,) = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))
        pts_dir = os.path.dirname(os.path.realpath(ptmx))
        if os.path.basename(pts_dir) != "pts":
            pts_dir = os.path.join(os.path.dirname(ptmx), "pts")
        path = f"{pts_dir}/{num}"
        slave = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave, path


def set_ctty(fd: int) -> None:
    """Make the terminal at ``fd`` the caller's controlling tty (caller is a session leader)."""
    fcntl.ioctl(fd, TIOCSCTTY, 0)


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ on the terminal at ``fd``."""
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_winsize(fd: int) -> tuple[int, int]:
    """(rows, cols) of the terminal at ``fd``."""
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8))
    return rows, cols
