"""Replace a file atomically: temp file in the same directory, fsync, rename, fsync dir.

This is the only way dockyard replaces a file whose previous content must survive a crash
(state files, exit status, configs). Readers see the old content or the new, never a mix.
"""

from __future__ import annotations

import os
import threading

__all__ = ["write_atomic", "fsync_dir"]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that a rename inside it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: str | os.PathLike[str], data: bytes | str, mode: int = 0o644, *, durable: bool = True
) -> None:
    """Write ``data`` to ``path`` so that the file is replaced in one step.

    With ``durable=False`` the fsyncs are skipped: the replacement is still atomic for
    concurrent readers, but may be lost (never torn) on a power failure. Use that only for
    state that is rebuilt on restart anyway.
    """
    # os.path, not pathlib: this runs in every shim, where each module touched costs memory
    p = os.fspath(path)
    if isinstance(data, str):
        data = data.encode()
    head, name = os.path.split(p)
    # unique per process and thread: two writers of the same file never share a temp file
    tmp = os.path.join(head, f".{name}.tmp.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    try:
        os.rename(tmp, p)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
        fsync_dir(head or ".")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
