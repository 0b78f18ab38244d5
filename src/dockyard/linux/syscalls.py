"""The ``Syscalls`` interface: every kernel call the runtime makes, injectable.

Logic in ``dockyard.runtime`` takes ``syscalls: Syscalls`` and never calls the kernel
itself, so it is unit-tested with ``dockyard.linux.fake.RecordingSyscalls`` (records the
calls, touches nothing) and runs for real with ``LinuxSyscalls``.

The interface is composed of narrow Protocols, one per family; a helper that only
mounts asks for ``MountSyscalls``. Contract for every mutating method: C semantics, it
raises ``OSError`` (errno set, path named when there is one) and retries nothing. Query
methods (``stat``, ``readlink``, ``read_file``, ``access``, ``statvfs_flags``) return
``None``/``False`` for a path that does not exist instead of raising.
"""

from __future__ import annotations

import os
import signal
import stat as stat_mod
from collections.abc import Sequence
from typing import Protocol

from dockyard.linux import caps, mount, net, ns, proc, tty

__all__ = [
    "CapabilitySyscalls",
    "FileSyscalls",
    "IdentitySyscalls",
    "LinuxSyscalls",
    "MountSyscalls",
    "NamespaceSyscalls",
    "ProcessSyscalls",
    "Syscalls",
    "TerminalSyscalls",
]


class MountSyscalls(Protocol):
    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None: ...
    def umount2(self, target: str, flags: int) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def chroot(self, path: str) -> None: ...


class NamespaceSyscalls(Protocol):
    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int) -> None: ...
    def link_up(self, name: str) -> None: ...


class IdentitySyscalls(Protocol):
    def sethostname(self, name: str) -> None: ...
    def setdomainname(self, name: str) -> None: ...
    def setgroups(self, gids: Sequence[int]) -> None: ...
    def setresgid(self, rgid: int, egid: int, sgid: int) -> None: ...
    def setresuid(self, ruid: int, euid: int, suid: int) -> None: ...
    def setrlimit(self, resource: int, soft: int, hard: int) -> None: ...


class CapabilitySyscalls(Protocol):
    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def bounding_drop(self, cap: int) -> None: ...
    def ambient_raise(self, cap: int) -> None: ...
    def ambient_clear_all(self) -> None: ...
    def set_keepcaps(self, on: bool) -> None: ...
    def set_no_new_privs(self) -> None: ...


class FileSyscalls(Protocol):
    def mkdir(self, path: str, mode: int) -> None: ...
    def create_file(self, path: str, mode: int) -> None: ...
    def mknod(self, path: str, mode: int, device: int) -> None: ...
    def symlink(self, target: str, path: str) -> None: ...
    def chown(self, path: str, uid: int, gid: int) -> None: ...
    def write_file(self, path: str, data: str) -> None: ...
    # queries: None / False when the path does not exist
    def stat(self, path: str) -> os.stat_result | None: ...
    def readlink(self, path: str) -> str | None: ...
    def read_file(self, path: str) -> bytes | None: ...
    def access(self, path: str, mode: int) -> bool: ...
    def statvfs_flags(self, path: str) -> int: ...


class ProcessSyscalls(Protocol):
    def chdir(self, path: str) -> None: ...
    def umask(self, mask: int) -> int: ...
    def setsid(self) -> None: ...
    def dup(self, fd: int) -> int: ...
    def dup2(self, fd: int, fd2: int) -> None: ...
    def close(self, fd: int) -> None: ...
    def fchown(self, fd: int, uid: int, gid: int) -> None: ...
    def fstat(self, fd: int) -> os.stat_result: ...
    def close_range_cloexec(self, first: int) -> None: ...
    def reset_signals(self) -> None: ...
    def execve(self, path: str, argv: Sequence[str], env: Sequence[str]) -> None: ...


class TerminalSyscalls(Protocol):
    def open_pty(self, ptmx: str) -> tuple[int, int, str]: ...
    def set_ctty(self, fd: int) -> None: ...
    def set_winsize(self, fd: int, rows: int, cols: int) -> None: ...


class Syscalls(
    MountSyscalls,
    NamespaceSyscalls,
    IdentitySyscalls,
    CapabilitySyscalls,
    FileSyscalls,
    ProcessSyscalls,
    TerminalSyscalls,
    Protocol,
):
    """Every kernel call of the runtime (the union of the families above)."""


_DEFAULT_SIGNALS = tuple(
    s
    for s in (
        signal.SIGPIPE,
        signal.SIGXFSZ,
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGCHLD,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    )
)


class LinuxSyscalls:
    """The real kernel, through the ``dockyard.linux`` modules."""

    # mount family
    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None:
        mount.mount(source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int) -> None:
        mount.umount2(target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        mount.pivot_root(new_root, put_old)

    def chroot(self, path: str) -> None:
        os.chroot(path)

    # namespaces
    def unshare(self, flags: int) -> None:
        ns.unshare(flags)

    def setns(self, fd: int, nstype: int) -> None:
        ns.setns(fd, nstype)

    def link_up(self, name: str) -> None:
        net.link_up(name)

    # identity and limits
    def sethostname(self, name: str) -> None:
        proc.sethostname(name)

    def setdomainname(self, name: str) -> None:
        proc.setdomainname(name)

    def setgroups(self, gids: Sequence[int]) -> None:
        proc.setgroups(gids)

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        proc.setresgid(rgid, egid, sgid)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        proc.setresuid(ruid, euid, suid)

    def setrlimit(self, resource: int, soft: int, hard: int) -> None:
        proc.setrlimit(resource, soft, hard)

    # capabilities
    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        caps.capset(effective, permitted, inheritable)

    def bounding_drop(self, cap: int) -> None:
        caps.bounding_drop(cap)

    def ambient_raise(self, cap: int) -> None:
        caps.ambient_raise(cap)

    def ambient_clear_all(self) -> None:
        caps.ambient_clear_all()

    def set_keepcaps(self, on: bool) -> None:
        caps.set_keepcaps(on)

    def set_no_new_privs(self) -> None:
        caps.set_no_new_privs()

    # files
    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(path, mode)

    def create_file(self, path: str, mode: int) -> None:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, mode))

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(path, uid, gid)

    def write_file(self, path: str, data: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)

    def stat(self, path: str) -> os.stat_result | None:
        try:
            return os.stat(path)
        except OSError:
            return None

    def readlink(self, path: str) -> str | None:
        try:
            return os.readlink(path)
        except OSError:
            return None

    def read_file(self, path: str) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            chunks: list[bytes] = []
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        except OSError:
            return None
        finally:
            os.close(fd)

    def access(self, path: str, mode: int) -> bool:
        return os.access(path, mode)

    def statvfs_flags(self, path: str) -> int:
        return mount.statvfs_to_ms(os.statvfs(path).f_flag)

    # process
    def chdir(self, path: str) -> None:
        os.chdir(path)

    def umask(self, mask: int) -> int:
        return os.umask(mask)

    def setsid(self) -> None:
        os.setsid()

    def dup(self, fd: int) -> int:
        return os.dup(fd)

    def dup2(self, fd: int, fd2: int) -> None:
        os.dup2(fd, fd2)

    def close(self, fd: int) -> None:
        os.close(fd)

    def fchown(self, fd: int, uid: int, gid: int) -> None:
        os.fchown(fd, uid, gid)

    def fstat(self, fd: int) -> os.stat_result:
        return os.fstat(fd)

    def close_range_cloexec(self, first: int) -> None:
        proc.close_range(first, 0xFFFFFFFF, proc.CLOSE_RANGE_CLOEXEC)

    def reset_signals(self) -> None:
        """Default dispositions (Python ignores SIGPIPE/SIGXFSZ; exec keeps SIG_IGN) and
        an empty signal mask, so the container process starts like one from a shell."""
        for sig in _DEFAULT_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())

    def execve(self, path: str, argv: Sequence[str], env: Sequence[str]) -> None:
        os.execve(path, list(argv), dict(_split_env(env)))

    # terminal
    def open_pty(self, ptmx: str) -> tuple[int, int, str]:
        return tty.open_pty(ptmx)

    def set_ctty(self, fd: int) -> None:
        tty.set_ctty(fd)

    def set_winsize(self, fd: int, rows: int, cols: int) -> None:
        tty.set_winsize(fd, rows, cols)


def _split_env(env: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for item in env:
        k, sep, v = item.partition("=")
        if sep and k:
            out.append((k, v))
    return out


def is_dir(st: os.stat_result | None) -> bool:
    """Whether a ``stat`` query result is a directory."""
    return st is not None and stat_mod.S_ISDIR(st.st_mode)


__all__ += ["is_dir"]
