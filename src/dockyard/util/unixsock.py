"""AF_UNIX sockets at any path length.

``sun_path`` holds 108 bytes, and a shim's socket lives under the exec root, whose length
is the user's choice. For a longer path we bind or connect through the directory's file
descriptor: ``/proc/self/fd/<dirfd>/<name>`` names the same file and is always short.
"""

from __future__ import annotations

import os
import socket

__all__ = ["bind_unix", "connect_unix"]

_MAX = 100  # leave room below the kernel's 108 bytes


def _call(sock: socket.socket, path: str, bind: bool) -> None:
    fn = sock.bind if bind else sock.connect
    if len(os.fsencode(path)) <= _MAX:
        fn(path)
        return
    dirfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fn(f"/proc/self/fd/{dirfd}/{os.path.basename(path)}")
    finally:
        os.close(dirfd)


def bind_unix(sock: socket.socket, path: str) -> None:
    _call(sock, path, bind=True)


def connect_unix(path: str, *, blocking: bool = True) -> socket.socket:
    """A connected AF_UNIX stream socket; raises like ``socket.connect``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        _call(sock, path, bind=False)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(blocking)
    return sock
