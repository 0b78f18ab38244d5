"""Filesystem helpers shared by the snapshotters: disk usage and a faithful tree copy."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from dockyard.snapshot.snapshotter import Usage

__all__ = ["copy_tree", "disk_usage", "remove_tree"]

_IGNORABLE_XATTR_ERRNOS = {errno.ENOTSUP, errno.EPERM, errno.EACCES}


def disk_usage(root: Path) -> Usage:
    """Bytes of file content (each inode once) and the number of inodes under ``root``."""
    size = 0
    inodes = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(root)]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except FileNotFoundError:
            continue
        with it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                ident = (st.st_dev, st.st_ino)
                if ident in seen:
                    continue
                seen.add(ident)
                inodes += 1
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
                else:
                    size += st.st_size
    return Usage(size=size, inodes=inodes)


def _copy_xattrs(src: str, dst: str, *, symlink: bool) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _IGNORABLE_XATTR_ERRNOS:
            return
        raise
    for name in names:
        try:
            value = os.getxattr(src, name, follow_symlinks=False)
            os.setxattr(dst, name, value, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _IGNORABLE_XATTR_ERRNOS or symlink:
                continue
            raise


def _meta(src_st: os.stat_result, src: str, dst: str, *, chown: bool, is_link: bool) -> None:
    if chown:
        os.chown(dst, src_st.st_uid, src_st.st_gid, follow_symlinks=False)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(src_st.st_mode))
    _copy_xattrs(src, dst, symlink=is_link)


def copy_tree(src: Path, dst: Path) -> None:
    """Copy the tree under ``src`` into the existing empty directory ``dst``, keeping file
    types, modes, owners (as root), times, xattrs, symlinks and hard links. Device nodes are
    copied only as root; sockets are skipped."""
    chown = os.geteuid() == 0
    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    root_st = os.stat(src)
    _meta(root_st, str(src), str(dst), chown=chown, is_link=False)
    dirs.append((str(dst), root_st))
    stack = [(str(src), str(dst))]
    while stack:
        s_dir, d_dir = stack.pop()
        with os.scandir(s_dir) as it:
            entries = list(it)
        for e in entries:
            s = e.path
            d = os.path.join(d_dir, e.name)
            st = e.stat(follow_symlinks=False)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(d, 0o700)
                _meta(st, s, d, chown=chown, is_link=False)
                os.chmod(d, 0o700 | stat.S_IMODE(mode))  # writable until its children are in
                dirs.append((d, st))
                stack.append((s, d))
                continue
            ident = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and ident in links:
                os.link(links[ident], d, follow_symlinks=False)
                continue
            if stat.S_ISREG(mode):
                shutil.copyfile(s, d, follow_symlinks=False)
                _meta(st, s, d, chown=chown, is_link=False)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(s), d)
                _meta(st, s, d, chown=chown, is_link=True)
            elif stat.S_ISFIFO(mode):
                os.mkfifo(d, stat.S_IMODE(mode))
                _meta(st, s, d, chown=chown, is_link=False)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                if not chown:
                    continue
                os.mknod(d, mode, st.st_rdev)
                _meta(st, s, d, chown=chown, is_link=False)
            else:
                continue  # sockets
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            if st.st_nlink > 1:
                links[ident] = d
    for d, st in reversed(dirs):
        os.chmod(d, stat.S_IMODE(st.st_mode))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything under it, whatever the modes inside (root bypasses
    them; as another user, directories are made writable first)."""
    if not os.path.lexists(path):
        return
    if not path.is_dir() or path.is_symlink():
        path.unlink()
        return

    def onerror(func: object, p: str, exc_info: object) -> None:
        parent = os.path.dirname(p)
        try:
            os.chmod(parent, 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
                shutil.rmtree(p)
            else:
                os.unlink(p)
        except FileNotFoundError:
            pass

    shutil.rmtree(path, onerror=onerror)
