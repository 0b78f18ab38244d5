"""Layer extraction: compression, diff ids, metadata, replacement rules and whiteouts."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
from pathlib import Path

import pytest

from dockyard.util.tarlayer import (
    Compression,
    WhiteoutMode,
    apply_layer,
    decompress,
    detect_compression,
)

from .tarhelp import E, make_tar

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (mknod, trusted.* xattrs, chown)")

SAMPLE = make_tar(
    E("etc", "dir"),
    E("etc/hostname", data=b"box\n", mode=0o600, mtime=1_500_000_000),
    E("bin", "dir", mode=0o711),
    E("bin/tool", data=b"#!/bin/sh\n", mode=0o4755),
    E("bin/alias", "symlink", link="tool", mtime=1_400_000_000),
    E("bin/hard", "hardlink", link="bin/tool"),
    E("ro", "dir", mode=0o555),
    E("ro/inside", data=b"still written", mode=0o444),
    E("pipe", "fifo", mode=0o640),
)


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


@pytest.mark.parametrize("compress,kind", [
    (lambda b: b, Compression.NONE),
    (gzip.compress, Compression.GZIP),
    (bz2.compress, Compression.BZIP2),
    (lzma.compress, Compression.XZ),
])
def test_decompress_and_diff_id(tmp_path: Path, compress: object, kind: Compression) -> None:
    blob = compress(SAMPLE)  # type: ignore[operator]
    assert detect_compression(blob[:6]) is kind
    stream, found = decompress(io.BytesIO(blob))
    assert found is kind
    r = apply_layer(stream, tmp_path)
    assert r.diff_id == sha(SAMPLE)
    assert r.tar_size == len(SAMPLE)
    assert (tmp_path / "etc/hostname").read_bytes() == b"box\n"


def test_zstd_layer(tmp_path: Path) -> None:
    """zstd layers (OCI ``+zstd``): ``zstandard`` is a dependency of dockyard."""
    import zstandard as zstd

    stream, kind = decompress(io.BytesIO(zstd.ZstdCompressor().compress(SAMPLE)))
    assert kind is Compression.ZSTD
    assert apply_layer(stream, tmp_path).diff_id == sha(SAMPLE)


def test_metadata_is_preserved(tmp_path: Path) -> None:
    r = apply_layer(io.BytesIO(SAMPLE), tmp_path)
    st = os.stat(tmp_path / "etc/hostname")
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_mtime == 1_500_000_000
    assert stat.S_IMODE(os.stat(tmp_path / "bin/tool").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(tmp_path / "bin").st_mode) == 0o711
    assert os.readlink(tmp_path / "bin/alias") == "tool"
    assert os.lstat(tmp_path / "bin/alias").st_mtime == 1_400_000_000
    assert os.stat(tmp_path / "bin/hard").st_ino == os.stat(tmp_path / "bin/tool").st_ino
    assert stat.S_IMODE(os.stat(tmp_path / "ro").st_mode) == 0o555
    assert (tmp_path / "ro/inside").read_bytes() == b"still written"
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)
    # each inode's content once: hostname + tool + inside + the symlink target
    assert r.size == 4 + 10 + 13 + 4
    os.chmod(tmp_path / "ro", 0o755)


def test_directory_mtime_is_set_after_its_children(tmp_path: Path) -> None:
    data = make_tar(E("d", "dir", mtime=1_000_000_000), E("d/a", data=b"1"), E("d/b", data=b"2"))
    apply_layer(io.BytesIO(data), tmp_path)
    assert os.stat(tmp_path / "d").st_mtime == 1_000_000_000


def test_user_xattrs_are_applied(tmp_path: Path) -> None:
    data = make_tar(E("f", data=b"1", xattrs={"user.note": b"hello"}))
    apply_layer(io.BytesIO(data), tmp_path)
    try:
        assert os.getxattr(tmp_path / "f", "user.note") == b"hello"
    except OSError:  # pragma: no cover - a filesystem without user xattrs
        pytest.skip("no user xattrs here")


@needs_root
def test_owners_and_security_xattrs_as_root(tmp_path: Path) -> None:
    cap = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    data = make_tar(
        E("./", "dir", mode=0o755, uid=7, gid=8),
        E("f", data=b"1", uid=1000, gid=1001, xattrs={"security.capability": cap}),
        E("l", "symlink", link="f", uid=5, gid=6),
    )
    apply_layer(io.BytesIO(data), tmp_path)
    st = os.stat(tmp_path / "f")
    assert (st.st_uid, st.st_gid) == (1000, 1001)
    assert os.getxattr(tmp_path / "f", "security.capability") == cap
    lst = os.lstat(tmp_path / "l")
    assert (lst.st_uid, lst.st_gid) == (5, 6)
    assert (os.stat(tmp_path).st_uid, os.stat(tmp_path).st_gid) == (7, 8)


def test_replacement_rules(tmp_path: Path) -> None:
    (tmp_path / "was_dir").mkdir()
    (tmp_path / "was_dir" / "child").write_text("x")
    (tmp_path / "was_file").write_text("x")
    (tmp_path / "keep_dir").mkdir()
    (tmp_path / "keep_dir" / "old").write_text("old")
    data = make_tar(
        E("was_dir", data=b"now a file"),
        E("was_file", "dir"),
        E("was_file/new", data=b"n"),
        E("keep_dir", "dir", mode=0o700),
        E("keep_dir/new", data=b"n"),
    )
    apply_layer(io.BytesIO(data), tmp_path)
    assert (tmp_path / "was_dir").read_bytes() == b"now a file"
    assert (tmp_path / "was_file/new").read_bytes() == b"n"
    assert sorted(os.listdir(tmp_path / "keep_dir")) == ["new", "old"]
    assert stat.S_IMODE(os.stat(tmp_path / "keep_dir").st_mode) == 0o700


def lower_tree(root: Path) -> None:
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root")
    (root / "etc/motd").write_text("hi")
    (root / "var/lib/app").mkdir(parents=True)
    (root / "var/lib/app/db").write_text("data")
    (root / "var/lib/app/sub").mkdir()
    (root / "var/lib/app/sub/x").write_text("x")
    (root / "gone_dir/deep").mkdir(parents=True)


WHITEOUT_LAYER = make_tar(
    E("etc", "dir"),
    E("etc/.wh.motd"),
    E("etc/.wh.nonexistent"),
    E("var", "dir"), E("var/lib", "dir"), E("var/lib/app", "dir"),
    E("var/lib/app/.wh..wh..opq"),
    E("var/lib/app/fresh", data=b"new"),
    E(".wh.gone_dir"),
    E(".wh..wh.plnk"),
    E("mine", data=b"mine"),
    E(".wh.mine"),            # whiteouts never hide this layer's own entries
)


def test_whiteouts_delete_mode(tmp_path: Path) -> None:
    lower_tree(tmp_path)
    apply_layer(io.BytesIO(WHITEOUT_LAYER), tmp_path, whiteouts=WhiteoutMode.DELETE)
    assert sorted(os.listdir(tmp_path / "etc")) == ["passwd"]
    assert sorted(os.listdir(tmp_path / "var/lib/app")) == ["fresh"]
    assert not (tmp_path / "gone_dir").exists()
    assert (tmp_path / "mine").read_bytes() == b"mine"
    assert not any(n.startswith(".wh.") for n in os.listdir(tmp_path))


def test_opaque_keeps_entries_written_before_the_marker(tmp_path: Path) -> None:
    lower_tree(tmp_path)
    data = make_tar(E("etc", "dir"), E("etc/early", data=b"e"), E("etc/.wh..wh..opq"),
                    E("etc/late", data=b"l"))
    apply_layer(io.BytesIO(data), tmp_path, whiteouts=WhiteoutMode.DELETE)
    assert sorted(os.listdir(tmp_path / "etc")) == ["early", "late"]


@needs_root
def test_whiteouts_overlay_mode(tmp_path: Path) -> None:
    # an overlay upper dir starts empty: lower layers are elsewhere
    apply_layer(io.BytesIO(WHITEOUT_LAYER), tmp_path, whiteouts=WhiteoutMode.OVERLAY)
    st = os.lstat(tmp_path / "etc/motd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert stat.S_ISCHR(os.lstat(tmp_path / "gone_dir").st_mode)
    assert stat.S_ISCHR(os.lstat(tmp_path / "etc/nonexistent").st_mode)
    assert os.getxattr(tmp_path / "var/lib/app", "trusted.overlay.opaque") == b"y"
    assert (tmp_path / "var/lib/app/fresh").read_bytes() == b"new"
    assert (tmp_path / "mine").read_bytes() == b"mine"
    assert not any(n.startswith(".wh.") for n in os.listdir(tmp_path))


@needs_root
def test_forged_overlay_xattr_is_not_applied(tmp_path: Path) -> None:
    data = make_tar(E("d", "dir", xattrs={"trusted.overlay.opaque": b"y",
                                          "trusted.overlay.redirect": b"/etc"}))
    apply_layer(io.BytesIO(data), tmp_path, whiteouts=WhiteoutMode.OVERLAY)
    assert not [x for x in os.listxattr(tmp_path / "d") if x.startswith("trusted.overlay.")]


def test_busybox_rootfs_extracts(tmp_path: Path, busybox_tar: Path) -> None:
    with open(busybox_tar, "rb") as f:
        r = apply_layer(f, tmp_path)
    assert r.diff_id == sha(busybox_tar.read_bytes())
    assert os.readlink(tmp_path / "bin/sh") in ("/bin/busybox", "busybox")
    assert (tmp_path / "etc/passwd").read_text().startswith("root:")
