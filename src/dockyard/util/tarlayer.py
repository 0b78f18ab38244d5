"""Layer tars: decompression by magic bytes, safe extraction with whiteouts, diff ids.

Reading a layer::

    stream, compression = decompress(raw)             # gzip / zstd / bzip2 / xz / plain, sniffed
    result = apply_layer(stream, root, whiteouts=WhiteoutMode.OVERLAY)
    result.diff_id                                    # sha256 of the uncompressed tar bytes

Extraction rules (the same as docker's, whose layers we must accept):

* entry names are cleaned; a relative name that climbs above the root (``../x``,
  ``a/../../x``) is refused; an absolute name is taken relative to the root (``/etc/x`` →
  ``<root>/etc/x``), as docker and GNU tar do;
* every path is resolved *inside* the root, one component at a time, with ``O_NOFOLLOW``
  opens relative to directory fds: a symlink met on the way is followed as if the root were
  ``/`` (so ``evil -> /etc`` then ``evil/passwd`` writes ``<root>/etc/passwd``), never out;
* a symlink whose relative target climbs above the root, or a hard link whose target does,
  is refused (docker's "breakout" check); hard links are made with ``linkat`` on the
  resolved target, without following a final symlink;
* block and character devices are never created (they are skipped and listed in
  ``ApplyResult.skipped``); FIFOs are created; whiteout devices are made only by the
  whiteout rules below;
* ``trusted.overlay.*`` / ``user.overlay.*`` xattrs from the tar are dropped, so a layer
  cannot forge overlay metadata; other xattrs (``SCHILY.xattr.*``) are kept;
* modes (including setuid/setgid/sticky), numeric uid/gid (as root), mtimes, xattrs,
  symlinks and hard links are preserved; directory modes and times are set last;
* a malformed archive (bad header, truncated data, bad compression, over-long extended
  headers or names) raises ``InvalidArgument``; what was written so far stays in ``root``,
  which the caller throws away.

Whiteouts (``.wh.<name>`` deletes ``<name>`` of lower layers, ``.wh..wh..opq`` hides all
lower children of its directory) are applied in one of two forms:

* ``WhiteoutMode.DELETE`` — ``root`` holds the full tree of the lower layers (a copying
  snapshotter): the whited-out path is removed; an opaque directory loses every child
  that this layer did not write;
* ``WhiteoutMode.OVERLAY`` — ``root`` is an overlay upper/lower dir on top of the lower
  layers: ``.wh.x`` becomes a character device 0/0 named ``x``; an opaque directory gets
  ``trusted.overlay.opaque=y``. Needs CAP_MKNOD and CAP_SYS_ADMIN (root).
"""

from __future__ import annotations

import bz2
import collections
import enum
import errno
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from dockyard.errors import InvalidArgument, Unsupported
from dockyard.oci.digest import Digester

__all__ = [
    "ApplyResult",
    "Compression",
    "HashingReader",
    "OPAQUE_WHITEOUT",
    "WHITEOUT_META_PREFIX",
    "WHITEOUT_PREFIX",
    "WhiteoutMode",
    "apply_layer",
    "decompress",
    "detect_compression",
]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
_XATTR_PAX_PREFIX = "SCHILY.xattr."

#: refuse pax / GNU long-name headers bigger than this (a name never needs more)
MAX_EXTENDED_HEADER = 1 << 20
_MAX_SYMLINK_HOPS = 40
_CHUNK = 1 << 20


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"
    BZIP2 = "bzip2"
    XZ = "xz"


_MAGIC = (
    (b"\x1f\x8b\x08", Compression.GZIP),
    (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
    (b"BZh", Compression.BZIP2),
    (b"\xfd7zXZ\x00", Compression.XZ),
)


def detect_compression(head: bytes) -> Compression:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return Compression.NONE


class _Prefixed(io.RawIOBase):
    """A readable stream that returns ``prefix`` first, then the rest of ``inner``."""

    def __init__(self, prefix: bytes, inner: BinaryIO) -> None:
        self._prefix = prefix
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        if self._prefix:
            n = min(len(mv), len(self._prefix))
            mv[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._inner.read(len(mv))
        if not data:
            return 0
        mv[: len(data)] = data
        return len(data)


def _read_head(stream: BinaryIO, n: int) -> bytes:
    head = b""
    while len(head) < n:
        chunk = stream.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


class _ErrorMapping(io.RawIOBase):
    """Turns a decompressor's errors into InvalidArgument (a corrupt upload)."""

    def __init__(self, inner: Any, kind: Compression) -> None:
        self._inner = inner
        self._kind = kind

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        try:
            data = self._inner.read(len(mv))
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise InvalidArgument(f"invalid {self._kind.value} stream: {exc}") from None
        except Exception as exc:  # zstandard.ZstdError and friends
            if type(exc).__module__.startswith("zstandard"):
                raise InvalidArgument(f"invalid zstd stream: {exc}") from None
            raise
        mv[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def decompress(stream: BinaryIO) -> tuple[BinaryIO, Compression]:
    """Sniff the first bytes and return a reader of the uncompressed data.

    zstd needs the optional ``zstandard`` module (``Unsupported`` otherwise). Decompressor
    errors surface as ``InvalidArgument`` when the returned stream is read.
    """
    head = _read_head(stream, 6)
    kind = detect_compression(head)
    raw: BinaryIO = io.BufferedReader(_Prefixed(head, stream), _CHUNK)
    if kind is Compression.NONE:
        return raw, kind
    inner: Any
    if kind is Compression.GZIP:
        inner = gzip.GzipFile(fileobj=raw, mode="rb")
    elif kind is Compression.BZIP2:
        inner = bz2.BZ2File(raw, "rb")
    elif kind is Compression.XZ:
        inner = lzma.LZMAFile(raw, "rb")
    else:
        try:
            import zstandard
        except ImportError:
            raise Unsupported("zstd-compressed layers need the python 'zstandard' module") from None
        inner = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return io.BufferedReader(_ErrorMapping(inner, kind), _CHUNK), kind


class HashingReader:
    """Reads through to ``inner`` and digests every byte read (the diff id of a layer)."""

    def __init__(self, inner: BinaryIO, algorithm: str = "sha256") -> None:
        self._inner = inner
        self.digester = Digester(algorithm)

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        if data:
            self.digester.update(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def size(self) -> int:
        return self.digester.size

    def digest(self) -> str:
        return self.digester.digest()


class WhiteoutMode(enum.Enum):
    DELETE = "delete"
    OVERLAY = "overlay"


@dataclass
class ApplyResult:
    diff_id: str                     # sha256 of the uncompressed tar stream
    tar_size: int                    # bytes of the uncompressed tar stream
    size: int                        # bytes of file content written (each inode once)
    entries: int = 0
    skipped: list[str] = field(default_factory=list)   # device nodes etc. not created


# -- strict tar headers ----------------------------------------------------------------

_EXTENDED_TYPES = {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                   tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}


class _StrictTarInfo(tarfile.TarInfo):
    """A TarInfo whose reader refuses what the stdlib would silently stop at.

    ``tarfile`` ends iteration quietly on a corrupt or truncated header after the first
    one; Go's archive/tar (docker) reports an error. We follow Go: a clean end of stream
    at a header boundary or a zero block ends the archive; anything else is an error.
    """

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        buf = tf.fileobj.read(tarfile.BLOCKSIZE)  # type: ignore[union-attr,unused-ignore]
        if len(buf) == 0:
            raise tarfile.EmptyHeaderError("empty header")  # type: ignore[attr-defined]  # clean end of stream
        if len(buf) != tarfile.BLOCKSIZE:
            raise InvalidArgument("invalid tar archive: truncated header")
        if buf.count(tarfile.NUL) == tarfile.BLOCKSIZE:
            raise tarfile.EOFHeaderError("end of file header")  # type: ignore[attr-defined]
        try:
            obj = cls.frombuf(buf, tf.encoding, tf.errors)
        except tarfile.HeaderError as exc:
            raise InvalidArgument(f"invalid tar archive: {exc}") from None
        if obj.type in _EXTENDED_TYPES and obj.size > MAX_EXTENDED_HEADER:
            raise InvalidArgument(
                f"invalid tar archive: extended header of {obj.size} bytes is too large")
        obj.offset = tf.fileobj.tell() - tarfile.BLOCKSIZE  # type: ignore[union-attr,unused-ignore]
        try:
            return obj._proc_member(tf)  # type: ignore[attr-defined,no-any-return]
        except tarfile.HeaderError as exc:
            raise InvalidArgument(f"invalid tar archive: {exc}") from None


def iter_tar(stream: Any) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Iterate a tar stream strictly; errors become InvalidArgument."""
    try:
        tf = tarfile.open(fileobj=stream, mode="r|", tarinfo=_StrictTarInfo)
    except tarfile.ReadError as exc:
        if str(exc) == "empty file":
            return
        raise InvalidArgument(f"invalid tar archive: {exc}") from None
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidArgument(f"invalid tar archive: {exc}") from None
    with tf:
        while True:
            try:
                member = tf.next()
            except (tarfile.TarError, EOFError) as exc:
                raise InvalidArgument(f"invalid tar archive: {exc}") from None
            if member is None:
                return
            tf.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every member otherwise
            yield tf, member


# -- path helpers ----------------------------------------------------------------------

def _clean(name: str, what: str = "entry") -> list[str]:
    """Split a tar path into components; '.' and '' dropped, '..' applied.

    An absolute path is clamped at the root (as filepath.Clean does); a relative one that
    climbs above it is refused.
    """
    absolute = name.startswith("/")
    parts: list[str] = []
    for c in name.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if parts:
                parts.pop()
            elif not absolute:
                raise InvalidArgument(f"invalid tar {what} {name!r}: path escapes the layer root")
            continue
        if "\x00" in c:
            raise InvalidArgument(f"invalid tar {what} {name!r}: NUL in name")
        parts.append(c)
    return parts


def _symlink_escapes(parent: list[str], target: str) -> bool:
    """docker's rule: a relative symlink target may not climb above the layer root."""
    if target.startswith("/"):
        return False
    depth = len(parent)
    for c in target.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Root:
    """Path resolution confined to one directory, through dir fds (no path strings)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.fd = os.open(root, _O_DIR)

    def close(self) -> None:
        os.close(self.fd)

    def open_dir(self, parts: list[str], *, create: bool) -> int:
        """An fd of the directory at ``parts``, resolving symlinks inside the root.

        Missing directories are created (0755) when ``create``; otherwise FileNotFoundError.
        A non-directory on the way raises NotADirectoryError.
        """
        stack = [os.dup(self.fd)]
        todo = collections.deque(parts)
        hops = 0
        try:
            while todo:
                c = todo.popleft()
                if c in ("", "."):
                    continue
                if c == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                cur = stack[-1]
                try:
                    st = os.stat(c, dir_fd=cur, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(c, 0o755, dir_fd=cur)
                    st = os.stat(c, dir_fd=cur, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > _MAX_SYMLINK_HOPS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links", c)
                    target = os.readlink(c, dir_fd=cur)
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    todo.extendleft(reversed(target.split("/")))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", c)
                stack.append(os.open(c, _O_DIR, dir_fd=cur))
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(name: str, dir_fd: int, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in member.pax_headers.items():
        if not k.startswith(_XATTR_PAX_PREFIX):
            continue
        name = k[len(_XATTR_PAX_PREFIX):]
        if not name or name.startswith(_OVERLAY_XATTR_PREFIXES):
            continue
        out[name] = v.encode("utf-8", "surrogateescape")
    return out


class _Applier:
    def __init__(self, root: str | os.PathLike[str], mode: WhiteoutMode, chown: bool) -> None:
        self.root = _Root(root)
        self.mode = mode
        self.chown = chown
        self.written: set[tuple[str, ...]] = set()
        self.dirs: list[tuple[list[str], tarfile.TarInfo]] = []
        self.inodes: set[tuple[int, int]] = set()
        self.skipped: list[str] = []
        self.size = 0
        self.entries = 0

    def close(self) -> None:
        self.root.close()

    # -- one entry ---------------------------------------------------------------------

    def apply(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.entries += 1
        parts = _clean(member.name)
        if not parts:
            if member.isdir():  # "./": the root's own owner, mode and times
                if self.chown:
                    os.fchown(self.root.fd, member.uid, member.gid)
                self.dirs.append(([], member))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts[:-1], base, member.name)
            return
        if member.ischr() or member.isblk():
            self.skipped.append("/".join(parts))
            return
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()
                or member.isfifo()):
            self.skipped.append("/".join(parts))
            return
        try:
            pfd = self.root.open_dir(parts[:-1], create=True)
        except NotADirectoryError:
            raise InvalidArgument(
                f"invalid tar entry {member.name!r}: a parent is not a directory") from None
        try:
            self._entry(tf, member, parts, pfd)
        finally:
            os.close(pfd)
        self.written.add(tuple(parts))

    def _entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo, parts: list[str], pfd: int) -> None:
        name = parts[-1]
        existing = _lstat(name, pfd)
        if existing is not None and not (m.isdir() and stat.S_ISDIR(existing.st_mode)):
            _remove(name, pfd, existing)
            existing = None
        if m.isdir():
            if existing is None:
                os.mkdir(name, 0o700, dir_fd=pfd)
            self._owner(name, pfd, m)
            self._set_xattrs(name, pfd, m, symlink=False)
            self.dirs.append((parts, m))
            return
        if m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=pfd)
            try:
                src = tf.extractfile(m)
                remaining = m.size
                if src is not None:
                    while remaining > 0:
                        try:
                            chunk = src.read(min(_CHUNK, remaining))
                        except tarfile.ReadError as exc:
                            raise InvalidArgument(f"invalid tar archive: {exc}") from None
                        if not chunk:
                            raise InvalidArgument("invalid tar archive: unexpected end of data")
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view):]
                        remaining -= len(chunk)
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) not in self.inodes:
                    self.inodes.add((st.st_dev, st.st_ino))
                    self.size += m.size
                if self.chown:
                    os.fchown(fd, m.uid, m.gid)
                os.fchmod(fd, m.mode & 0o7777)
                self._set_xattrs(fd, None, m, symlink=False)
                os.utime(fd, ns=self._times(m))
            finally:
                os.close(fd)
            return
        if m.issym():
            if _symlink_escapes(parts[:-1], m.linkname):
                raise InvalidArgument(
                    f"invalid symlink {m.name!r} -> {m.linkname!r}: target escapes the layer root")
            os.symlink(m.linkname, name, dir_fd=pfd)
            self.size += len(m.linkname)
            if self.chown:
                os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            self._set_xattrs(name, pfd, m, symlink=True)
            os.utime(name, ns=self._times(m), dir_fd=pfd, follow_symlinks=False)
            return
        if m.islnk():
            self._hardlink(m, name, pfd)
            return
        if m.isfifo():
            os.mkfifo(name, 0o600, dir_fd=pfd)
            self._owner(name, pfd, m)
            os.chmod(name, m.mode & 0o7777, dir_fd=pfd)
            self._set_xattrs(name, pfd, m, symlink=False)
            os.utime(name, ns=self._times(m), dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, m: tarfile.TarInfo, name: str, pfd: int) -> None:
        target = _clean(m.linkname, "hard link target")
        if not target:
            raise InvalidArgument(f"invalid hard link {m.name!r}: empty target")
        if "/".join(target) in self.skipped:
            self.skipped.append(m.name)
            return
        try:
            tfd = self.root.open_dir(target[:-1], create=False)
        except (FileNotFoundError, NotADirectoryError):
            raise InvalidArgument(
                f"invalid hard link {m.name!r} -> {m.linkname!r}: target not found") from None
        try:
            os.link(target[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            raise InvalidArgument(
                f"invalid hard link {m.name!r} -> {m.linkname!r}: target not found") from None
        except PermissionError:
            raise InvalidArgument(
                f"invalid hard link {m.name!r} -> {m.linkname!r}: cannot link to that target"
            ) from None
        finally:
            os.close(tfd)

    @staticmethod
    def _times(m: tarfile.TarInfo) -> tuple[int, int]:
        mtime = int(float(m.mtime) * 1_000_000_000)
        atime = mtime
        raw = m.pax_headers.get("atime")
        if raw:
            try:
                atime = max(int(float(raw) * 1_000_000_000), mtime)
            except ValueError:
                pass
        return atime, mtime

    def _owner(self, name: str, pfd: int, m: tarfile.TarInfo) -> None:
        if self.chown:
            os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)

    def _set_xattrs(self, target: str | int, pfd: int | None, m: tarfile.TarInfo, *,
                    symlink: bool) -> None:
        attrs = _xattrs(m)
        if not attrs:
            return
        path: str | int = target if pfd is None else f"/proc/self/fd/{pfd}/{target}"
        for k, v in attrs.items():
            try:
                os.setxattr(path, k, v, follow_symlinks=isinstance(path, int))
            except OSError as exc:
                if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) or symlink:
                    continue
                if exc.errno == errno.EPERM and not self.chown:
                    continue  # trusted.* / security.* need root
                raise

    # -- whiteouts ---------------------------------------------------------------------

    def _whiteout(self, dir_parts: list[str], base: str, raw: str) -> None:
        if base == OPAQUE_WHITEOUT:
            self._opaque(dir_parts)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # aufs metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless here
        victim = base[len(WHITEOUT_PREFIX):]
        if victim in ("", ".", "..") or "/" in victim:
            raise InvalidArgument(f"invalid whiteout {raw!r}")
        if tuple(dir_parts + [victim]) in self.written:
            return  # a whiteout only hides lower layers, never this layer's own entries
        if self.mode is WhiteoutMode.DELETE:
            try:
                pfd = self.root.open_dir(dir_parts, create=False)
            except (FileNotFoundError, NotADirectoryError):
                return
            try:
                st = _lstat(victim, pfd)
                if st is not None:
                    _remove(victim, pfd, st)
            finally:
                os.close(pfd)
            return
        try:
            pfd = self.root.open_dir(dir_parts, create=True)
        except NotADirectoryError:
            raise InvalidArgument(
                f"invalid whiteout {raw!r}: a parent is not a directory") from None
        try:
            st = _lstat(victim, pfd)
            if st is not None:
                _remove(victim, pfd, st)
            os.mknod(victim, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
        finally:
            os.close(pfd)
        self.written.add(tuple(dir_parts + [victim]))

    def _opaque(self, dir_parts: list[str]) -> None:
        try:
            dfd = self.root.open_dir(dir_parts, create=True)
        except NotADirectoryError:
            raise InvalidArgument(
                f"invalid opaque whiteout in {'/'.join(dir_parts)!r}: not a directory") from None
        try:
            if self.mode is WhiteoutMode.OVERLAY:
                os.setxattr(dfd, OVERLAY_OPAQUE_XATTR, b"y")
                return
            for child in os.listdir(dfd):
                if tuple(dir_parts + [child]) in self.written:
                    continue
                st = _lstat(child, dfd)
                if st is not None:
                    _remove(child, dfd, st)
        finally:
            os.close(dfd)

    # -- end ---------------------------------------------------------------------------

    def finish(self) -> None:
        """Directory modes and times last: writing children changes a directory's mtime,
        and a read-only directory mode would stop us (as non-root) from filling it."""
        for parts, m in reversed(self.dirs):
            try:
                dfd = self.root.open_dir(parts, create=False)
            except (FileNotFoundError, NotADirectoryError):
                continue  # replaced later in the same layer
            try:
                os.fchmod(dfd, m.mode & 0o7777)
                os.utime(dfd, ns=self._times(m))
            finally:
                os.close(dfd)


def apply_layer(stream: BinaryIO, root: str | os.PathLike[str], *,
                whiteouts: WhiteoutMode = WhiteoutMode.DELETE,
                chown: bool | None = None) -> ApplyResult:
    """Extract the *uncompressed* tar ``stream`` into the existing directory ``root``.

    Returns the diff id (sha256 of every byte of the stream, trailing padding included),
    the sizes and what was skipped. ``chown`` defaults to "running as root". Raises
    ``InvalidArgument`` for a malformed or hostile archive (see the module docstring).
    """
    hashing = HashingReader(stream)
    applier = _Applier(root, whiteouts, os.geteuid() == 0 if chown is None else chown)
    try:
        for tf, member in iter_tar(hashing):
            try:
                applier.apply(tf, member)
            except InvalidArgument:
                raise
            except OSError as exc:
                if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP, errno.EEXIST, errno.ENOTDIR,
                                 errno.EISDIR, errno.EINVAL):
                    raise InvalidArgument(
                        f"invalid tar entry {member.name[:200]!r}: {exc.strerror}") from None
                raise
        applier.finish()
        hashing.drain()
    finally:
        applier.close()
    return ApplyResult(diff_id=hashing.digest(), tar_size=hashing.size, size=applier.size,
                       entries=applier.entries, skipped=applier.skipped)
