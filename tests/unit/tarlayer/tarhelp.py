"""Build layer tars in memory, including hostile ones the tarfile writer would not make."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class E:
    """One tar entry. ``kind``: file, dir, symlink, hardlink, chr, blk, fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    link: str = ""
    mode: int = -1
    uid: int = 0
    gid: int = 0
    mtime: float = 1_600_000_000
    xattrs: dict[str, bytes] = field(default_factory=dict)
    dev: tuple[int, int] = (0, 0)


_TYPES = {
    "file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def make_tar(*entries: E, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.type = _TYPES[e.kind]
            ti.mode = e.mode if e.mode >= 0 else (0o755 if e.kind == "dir" else 0o644)
            ti.uid, ti.gid = e.uid, e.gid
            ti.mtime = e.mtime
            ti.linkname = e.link
            ti.devmajor, ti.devminor = e.dev
            for k, v in e.xattrs.items():
                ti.pax_headers["SCHILY.xattr." + k] = v.decode("utf-8", "surrogateescape")
            if e.kind == "file":
                ti.size = len(e.data)
                tf.addfile(ti, io.BytesIO(e.data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def busybox_tar_path() -> Path | None:
    """The busybox rootfs tar: DOCKYARD_BUSYBOX_TAR, or build/busybox-rootfs.tar, built with
    scripts/mkbusybox.py when missing and busybox-static is installed; None if impossible."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[3]
    env = os.environ.get("DOCKYARD_BUSYBOX_TAR")
    p = Path(env) if env else repo / "build" / "busybox-rootfs.tar"
    if p.exists():
        return p
    if not os.path.exists("/bin/busybox"):
        return None
    p.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["/usr/bin/python3", str(repo / "scripts/mkbusybox.py"), "-o", str(p)],
                   check=True)
    return p
