"""Layer tars from snapshots: the reverse of ``dockyard.util.tarlayer.apply_layer``.

* ``write_overlay_diff(upper, out)`` — an overlay upper dir is already a diff: a character
  device 0/0 ``x`` becomes an empty ``.wh.x``; a directory with ``trusted.overlay.opaque=y``
  (or ``user.overlay.opaque``) is written, then ``dir/.wh..wh..opq``; ``trusted.overlay.*``
  and ``user.overlay.*`` xattrs are never written. The overlay snapshotter mounts with
  ``redirect_dir=off,metacopy=off`` so upper dirs hold no redirects or metadata-only files.
* ``write_tree_diff(lower, upper, out)`` — two full trees (the copying snapshotter): what is
  new or changed in ``upper`` is written with its parent directories; what is gone gets a
  ``.wh.`` entry.

Both write a PAX tar in a stable order (sorted names), keep modes, numeric owners, mtimes
(whole seconds), xattrs (``SCHILY.xattr.*``), symlinks and hard links (the second name of
an inode becomes a hard link entry), and return the diff id of what they wrote.

Mount-point artifacts: the runtime creates the bind-mount targets ``/etc/hosts``,
``/etc/hostname``, ``/etc/resolv.conf`` (and ``/dev``, ``/proc``, ``/sys`` when the image
lacks them) in the container's rootfs. Docker keeps them in a hidden init layer; here a
commit skips them (``ARTIFACTS``) when they are empty and absent from the image. With
``lower_dirs`` (the image's layer dirs, top first), ``write_overlay_diff`` also leaves out a
directory that was only copied up to hold such an artifact: a directory is written when it
is new, opaque, differs from the lower one in mode, owner or xattrs, or holds a change.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.oci.digest import Digester
from dockyard.util.tarlayer import OPAQUE_WHITEOUT, WHITEOUT_PREFIX

__all__ = ["ARTIFACTS", "DiffResult", "write_overlay_diff", "write_tree_diff"]

#: paths the runtime creates as mount points; never part of a committed layer when they
#: are empty and the image does not have them
ARTIFACTS = frozenset({"etc/hosts", "etc/hostname", "etc/resolv.conf", "dev", "dev/pts",
                       "dev/shm", "dev/mqueue", "proc", "sys"})

_SKIP_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


@dataclass(frozen=True)
class DiffResult:
    diff_id: str         # sha256 of the tar bytes written
    tar_size: int
    entries: int


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.digester = Digester("sha256")

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self.digester.update(data)
        return len(data)

    def tell(self) -> int:
        return self.digester.size

    def flush(self) -> None:
        self._out.flush()


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[str, bytes] = {}
    for n in names:
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            continue
    return out


def _is_whiteout_dev(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class _TarOut:
    def __init__(self, out: BinaryIO) -> None:
        self.hw = _HashingWriter(out)
        self.tf = tarfile.open(  # type: ignore[call-overload]
            fileobj=self.hw, mode="w", format=tarfile.PAX_FORMAT)
        self.links: dict[tuple[int, int], str] = {}
        self.entries = 0

    def add(self, path: str, rel: str, st: os.stat_result,
            xattrs: dict[str, bytes] | None = None) -> None:
        ti = tarfile.TarInfo(rel)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = int(st.st_mtime)
        if xattrs is None:
            xattrs = _xattrs(path)
        for k, v in sorted(xattrs.items()):
            if k.startswith(_SKIP_XATTR_PREFIXES):
                continue
            ti.pax_headers["SCHILY.xattr." + k] = v.decode(  # type: ignore[index]
                "utf-8", "surrogateescape")
        mode = st.st_mode
        ident = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(mode) and st.st_nlink > 1 and ident in self.links:
            ti.type = tarfile.LNKTYPE
            ti.linkname = self.links[ident]
            self._emit(ti)
            return
        if stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
            self._emit(ti)
        elif stat.S_ISREG(mode):
            ti.type = tarfile.REGTYPE
            ti.size = st.st_size
            with open(path, "rb") as f:
                self._emit(ti, f)
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(path)
            self._emit(ti)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
            self._emit(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self._emit(ti)
        else:
            return  # sockets
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            self.links[ident] = rel

    def whiteout(self, rel: str, mtime: float, *, opaque_marker: bool = False) -> None:
        ti = tarfile.TarInfo(rel)
        ti.type = tarfile.REGTYPE
        ti.mode = 0 if opaque_marker else 0o600
        ti.mtime = int(mtime)
        ti.uname = ti.gname = ""
        self._emit(ti)

    def _emit(self, ti: tarfile.TarInfo, f: BinaryIO | None = None) -> None:
        self.tf.addfile(ti, f)
        self.entries += 1

    def close(self) -> DiffResult:
        self.tf.close()
        self.hw.flush()
        return DiffResult(self.hw.digester.digest(), self.hw.digester.size, self.entries)


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _artifact(rel: str, path: str, st: os.stat_result, in_lower: bool) -> bool:
    if rel not in ARTIFACTS or in_lower:
        return False
    if stat.S_ISREG(st.st_mode):
        return st.st_size == 0
    return stat.S_ISDIR(st.st_mode)


def write_overlay_diff(upper: str | os.PathLike[str], out: BinaryIO, *,
                       lower_dirs: Sequence[str | os.PathLike[str]] | None = None) -> DiffResult:
    """Write the overlay upper dir ``upper`` as a layer tar to ``out``.

    ``lower_dirs`` (top first) lets unchanged copied-up directories and mount-point
    artifacts be left out; without it every directory of the upper dir is written.
    """
    t = _TarOut(out)
    lowers = [os.fspath(d) for d in lower_dirs] if lower_dirs is not None else None

    def lower_stat(rel: str) -> os.stat_result | None:
        for d in lowers or ():
            try:
                return os.lstat(os.path.join(d, rel))
            except (FileNotFoundError, NotADirectoryError):
                continue
        return None

    # directories waiting to be written: only if something below them is
    pending: list[tuple[str, str, os.stat_result, dict[str, bytes]]] = []

    def flush() -> None:
        for p, r, st, xattrs in pending:
            t.add(p, r, st, xattrs)
        pending.clear()

    def walk(path: str, rel: str) -> None:
        for name in sorted(os.listdir(path)):
            p = os.path.join(path, name)
            r = _join(rel, name)
            st = os.lstat(p)
            if _is_whiteout_dev(st):
                flush()
                t.whiteout(_join(rel, WHITEOUT_PREFIX + name), st.st_mtime)
                continue
            low = lower_stat(r) if lowers is not None else None
            if lowers is not None and _artifact(r, p, st, low is not None):
                if stat.S_ISDIR(st.st_mode):
                    depth = len(pending)
                    pending.append((p, r, st, _xattrs(p)))
                    walk(p, r)
                    del pending[depth:]
                continue
            if stat.S_ISDIR(st.st_mode):
                xattrs = _xattrs(p)
                opaque = any(xattrs.get(k) == b"y" for k in _OPAQUE_XATTRS)
                must = (lowers is None or opaque or low is None
                        or not stat.S_ISDIR(low.st_mode)
                        or (low.st_mode, low.st_uid, low.st_gid) != (st.st_mode, st.st_uid,
                                                                     st.st_gid)
                        or _strip(_xattrs(_first_lower(lowers, r))) != _strip(xattrs))
                depth = len(pending)
                pending.append((p, r, st, xattrs))
                if must:
                    flush()
                if opaque:
                    t.whiteout(_join(r, OPAQUE_WHITEOUT), st.st_mtime, opaque_marker=True)
                walk(p, r)
                del pending[depth:]
            else:
                flush()
                t.add(p, r, st)

    walk(os.fspath(upper), "")
    return t.close()


def _first_lower(lowers: Sequence[str] | None, rel: str) -> str:
    for d in lowers or ():
        p = os.path.join(d, rel)
        if os.path.lexists(p):
            return p
    return ""


def _strip(xattrs: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in xattrs.items() if not k.startswith(_SKIP_XATTR_PREFIXES)}


def _same(a: os.stat_result, b: os.stat_result, pa: str, pb: str) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return False
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(a.st_mode):
        return _xattrs(pa) == _xattrs(pb)
    if a.st_mtime_ns != b.st_mtime_ns or a.st_size != b.st_size or a.st_rdev != b.st_rdev:
        return False
    if stat.S_ISLNK(a.st_mode) and os.readlink(pa) != os.readlink(pb):
        return False
    return _xattrs(pa) == _xattrs(pb)


def write_tree_diff(lower: str | os.PathLike[str] | None, upper: str | os.PathLike[str],
                    out: BinaryIO) -> DiffResult:
    """Write the changes from the tree ``lower`` (None: the empty tree) to ``upper``.

    A path is written when it is new, or differs in type, mode, owner, size, mtime,
    symlink target or xattrs; a directory also when anything below it is written. A path
    of ``lower`` missing from ``upper`` gets a whiteout.
    """

    def lstat(p: str) -> os.stat_result | None:
        try:
            return os.lstat(p)
        except FileNotFoundError:
            return None

    # ops: ("add", path, rel, stat) | ("wh", rel, mtime)
    Op = tuple[str, str, str, os.stat_result | None, float]

    def walk(rel: str, up: str, lo: str | None) -> list[Op]:
        up_names = set(os.listdir(up))
        lo_names = set(os.listdir(lo)) if lo is not None else set()
        ops: list[Op] = []
        for name in sorted(up_names | lo_names):
            r = _join(rel, name)
            if name not in up_names:
                wh = _join(rel, WHITEOUT_PREFIX + name)
                ops.append(("wh", "", wh, None, os.lstat(up).st_mtime))
                continue
            p = os.path.join(up, name)
            st = os.lstat(p)
            lp = os.path.join(lo, name) if (lo is not None and name in lo_names) else None
            lst = lstat(lp) if lp is not None else None
            changed = lst is None or lp is None or not _same(lst, st, lp, p)
            artifact = _artifact(r, p, st, lst is not None)
            if artifact and not stat.S_ISDIR(st.st_mode):
                continue
            if stat.S_ISDIR(st.st_mode):
                below_lo = lp if (lst is not None and stat.S_ISDIR(lst.st_mode)) else None
                sub = walk(r, p, below_lo)
                if (changed and not artifact) or sub:
                    ops.append(("add", p, r, st, 0.0))
                    ops.extend(sub)
            elif changed:
                ops.append(("add", p, r, st, 0.0))
        return ops

    t = _TarOut(out)
    for kind, path, rel, st, mtime in walk("", os.fspath(upper),
                                           os.fspath(lower) if lower is not None else None):
        if kind == "wh":
            t.whiteout(rel, mtime)
        else:
            assert st is not None
            t.add(path, rel, st)
    return t.close()
