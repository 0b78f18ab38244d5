"""``RecordingSyscalls``: a ``Syscalls`` that records every call and touches nothing.

Unit tests run runtime logic against it and assert the recorded calls and their order
(youki's ``syscall/test.rs`` pattern)::

    sc = RecordingSyscalls(dirs={"/b/rootfs"})
    setup_rootfs(sc, plan)
    assert sc.names()[:2] == ["mount", "mount"]
    assert ("proc", "/b/rootfs/proc", "proc", 14, "") in sc.args("mount")

Queries answer from the in-memory tree given to the constructor (``dirs``, ``files``,
``links``, ``modes``); mutating calls update that tree (``mkdir`` adds a directory), so a
sequence of calls sees its own effects. ``fail`` makes the named method raise an OSError.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["RecordingSyscalls"]


def _st(mode: int, uid: int = 0, gid: int = 0, rdev: int = 0) -> os.stat_result:
    return os.stat_result((mode, 0, rdev, 1, uid, gid, 0, 0, 0, 0))


class RecordingSyscalls:
    """Records ``(name, args)`` for each call in ``calls``; see the module docstring."""

    def __init__(
        self,
        *,
        dirs: Iterable[str] = (),
        files: Mapping[str, bytes] | None = None,
        links: Mapping[str, str] | None = None,
        modes: Mapping[str, int] | None = None,
        fail: Mapping[str, int] | None = None,
        statvfs: int = 0,
    ) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.dirs: set[str] = set(dirs) | {"/"}
        self.files: dict[str, bytes] = dict(files or {})
        self.links: dict[str, str] = dict(links or {})
        #: extra st_mode per path, for stat (e.g. a non-executable regular file)
        self.modes: dict[str, int] = dict(modes or {})
        self.fail: dict[str, int] = dict(fail or {})
        self.statvfs = statvfs
        self._umask = 0o022
        self._next_fd = 100

    # ---- helpers for tests
    def names(self) -> list[str]:
        """The recorded call names, in order."""
        return [name for name, _ in self.calls]

    def args(self, name: str) -> list[tuple[Any, ...]]:
        """The argument tuples of every recorded call of ``name``, in order."""
        return [a for n, a in self.calls if n == name]

    def _rec(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if name in self.fail:
            code = self.fail[name]
            raise OSError(code, os.strerror(code), *(a for a in args[:1] if isinstance(a, str)))

    # ---- mount family
    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None:
        self._rec("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int) -> None:
        self._rec("umount2", target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._rec("pivot_root", new_root, put_old)

    def chroot(self, path: str) -> None:
        self._rec("chroot", path)

    # ---- namespaces
    def unshare(self, flags: int) -> None:
        self._rec("unshare", flags)

    def setns(self, fd: int, nstype: int) -> None:
        self._rec("setns", fd, nstype)

    def link_up(self, name: str) -> None:
        self._rec("link_up", name)

    # ---- identity
    def sethostname(self, name: str) -> None:
        self._rec("sethostname", name)

    def setdomainname(self, name: str) -> None:
        self._rec("setdomainname", name)

    def setgroups(self, gids: Sequence[int]) -> None:
        self._rec("setgroups", tuple(gids))

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        self._rec("setresgid", rgid, egid, sgid)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        self._rec("setresuid", ruid, euid, suid)

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        self._rec("setrlimit", resource, soft, hard)

    # ---- capabilities
    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._rec("capset", effective, permitted, inheritable)

    def bounding_drop(self, cap: int) -> None:
        self._rec("bounding_drop", cap)

    def ambient_raise(self, cap: int) -> None:
        self._rec("ambient_raise", cap)

    def ambient_clear_all(self) -> None:
        self._rec("ambient_clear_all")

    def set_keepcaps(self, on: bool) -> None:
        self._rec("set_keepcaps", on)

    def set_no_new_privs(self) -> None:
        self._rec("set_no_new_privs")

    # ---- files
    def mkdir(self, path: str, mode: int) -> None:
        self._rec("mkdir", path, mode)
        if path in self.dirs or path in self.files:
            raise FileExistsError(errno.EEXIST, "File exists", path)
        self.dirs.add(path)

    def create_file(self, path: str, mode: int) -> None:
        self._rec("create_file", path, mode)
        self.files.setdefault(path, b"")

    def mknod(self, path: str, mode: int, device: int) -> None:
        self._rec("mknod", path, mode, device)
        self.files[path] = b""
        self.modes[path] = mode

    def symlink(self, target: str, path: str) -> None:
        self._rec("symlink", target, path)
        self.links[path] = target

    def chown(self, path: str, uid: int, gid: int) -> None:
        self._rec("chown", path, uid, gid)

    def write_file(self, path: str, data: str) -> None:
        self._rec("write_file", path, data)

    def stat(self, path: str) -> os.stat_result | None:
        if path in self.dirs:
            return _st(stat_mod.S_IFDIR | 0o755)
        if path in self.files:
            return _st(self.modes.get(path, stat_mod.S_IFREG | 0o755))
        return None

    def readlink(self, path: str) -> str | None:
        return self.links.get(path)

    def read_file(self, path: str) -> bytes | None:
        return self.files.get(path)

    def access(self, path: str, mode: int) -> bool:
        st = self.stat(path)
        if st is None:
            return False
        return not mode & os.X_OK or bool(st.st_mode & 0o111)

    def statvfs_flags(self, path: str) -> int:
        return self.statvfs

    # ---- process
    def chdir(self, path: str) -> None:
        self._rec("chdir", path)

    def umask(self, mask: int) -> int:
        self._rec("umask", mask)
        old, self._umask = self._umask, mask
        return old

    def setsid(self) -> None:
        self._rec("setsid")

    def dup(self, fd: int) -> int:
        self._rec("dup", fd)
        self._next_fd += 1
        return self._next_fd - 1

    def dup2(self, fd: int, fd2: int) -> None:
        self._rec("dup2", fd, fd2)

    def close(self, fd: int) -> None:
        self._rec("close", fd)

    def fchown(self, fd: int, uid: int, gid: int) -> None:
        self._rec("fchown", fd, uid, gid)

    def fstat(self, fd: int) -> os.stat_result:
        return _st(stat_mod.S_IFIFO | 0o600)

    def close_range_cloexec(self, first: int) -> None:
        self._rec("close_range_cloexec", first)

    def reset_signals(self) -> None:
        self._rec("reset_signals")

    def execve(self, path: str, argv: Sequence[str], env: Sequence[str]) -> None:
        self._rec("execve", path, tuple(argv), tuple(env))

    # ---- terminal
    def open_pty(self, ptmx: str) -> tuple[int, int, str]:
        self._rec("open_pty", ptmx)
        master, slave = self._next_fd, self._next_fd + 1
        self._next_fd += 2
        return master, slave, "/dev/pts/0"

    def set_ctty(self, fd: int) -> None:
        self._rec("set_ctty", fd)

    def set_winsize(self, fd: int, rows: int, cols: int) -> None:
        self._rec("set_winsize", fd, rows, cols)
