"""Layer tars from snapshots (image/diff.py), checked by applying them back."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

from dockyard.image.diff import write_overlay_diff, write_tree_diff
from dockyard.snapshot._fs import copy_tree
from dockyard.util.tarlayer import WhiteoutMode, apply_layer

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (whiteout devices, trusted xattrs)")


def snapshot_tree(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            entry: tuple[Any, ...] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                                      st.st_gid)
            if stat.S_ISREG(st.st_mode):
                entry += (p.read_bytes(), int(st.st_mtime))
            elif stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(p),)
            out[rel] = entry
    return out


def make_lower(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0")
    (root / "etc/motd").write_text("hello")
    (root / "var/cache/app").mkdir(parents=True)
    (root / "var/cache/app/a").write_text("a")
    (root / "var/cache/app/b").write_text("b")
    (root / "bin").mkdir()
    (root / "bin/tool").write_text("v1")
    os.symlink("tool", root / "bin/alias")
    (root / "old").mkdir()
    (root / "old/x").write_text("x")


def entries(tar: bytes) -> list[tuple[str, str]]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        return [(m.name, "d" if m.isdir() else "l" if m.islnk() else "s" if m.issym() else "f")
                for m in tf.getmembers()]


def test_tree_diff_round_trip(tmp_path: Path) -> None:
    lower, upper, target = tmp_path / "lower", tmp_path / "upper", tmp_path / "target"
    for d in (lower, upper, target):
        d.mkdir()
    make_lower(lower)
    copy_tree(lower, upper)
    # the container's changes
    (upper / "etc/motd").unlink()
    (upper / "etc/passwd").write_text("root:x:0:0\nme:x:1000:1000")
    shutil.rmtree(upper / "old")
    (upper / "new/deep").mkdir(parents=True)
    (upper / "new/deep/file").write_text("n")
    os.link(upper / "new/deep/file", upper / "new/hard")
    os.chmod(upper / "bin/tool", 0o700)
    os.unlink(upper / "bin/alias")
    os.symlink("/bin/tool", upper / "bin/alias")

    out = io.BytesIO()
    r = write_tree_diff(lower, upper, out)
    tar = out.getvalue()
    assert r.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    names = dict(entries(tar))
    assert "etc/.wh.motd" in names and ".wh.old" in names
    assert "var" not in names and "var/cache/app/a" not in names   # unchanged: not written
    assert names["new/hard"] == "l"
    assert "etc" in names                                           # parent of a change

    copy_tree(lower, target)
    apply_layer(io.BytesIO(tar), target, whiteouts=WhiteoutMode.DELETE)
    assert snapshot_tree(target) == snapshot_tree(upper)


def test_tree_diff_from_nothing(tmp_path: Path) -> None:
    upper, target = tmp_path / "upper", tmp_path / "target"
    upper.mkdir()
    target.mkdir()
    make_lower(upper)
    out = io.BytesIO()
    write_tree_diff(None, upper, out)
    apply_layer(io.BytesIO(out.getvalue()), target)
    assert snapshot_tree(target) == snapshot_tree(upper)


def test_diff_is_deterministic(tmp_path: Path) -> None:
    make_lower(tmp_path / "u")
    a, b = io.BytesIO(), io.BytesIO()
    write_tree_diff(None, tmp_path / "u", a)
    write_tree_diff(None, tmp_path / "u", b)
    assert a.getvalue() == b.getvalue()


@needs_root
def test_overlay_upper_dir_to_layer(tmp_path: Path) -> None:
    lower, upper, target = tmp_path / "lower", tmp_path / "upper", tmp_path / "target"
    for d in (lower, upper, target):
        d.mkdir()
    make_lower(lower)
    # an upper dir as overlayfs leaves it
    (upper / "etc").mkdir()
    (upper / "etc/passwd").write_text("changed")
    os.mknod(upper / "etc/motd", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    os.mknod(upper / "old", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    (upper / "var/cache/app").mkdir(parents=True)
    os.setxattr(upper / "var/cache/app", "trusted.overlay.opaque", b"y")
    os.setxattr(upper / "var/cache/app", "trusted.overlay.origin", b"\x00junk")
    (upper / "var/cache/app/fresh").write_text("f")
    os.setxattr(upper / "var/cache/app/fresh", "user.keep", b"1")

    out = io.BytesIO()
    write_overlay_diff(upper, out)
    tar = out.getvalue()
    names = [n for n, _ in entries(tar)]
    assert "etc/.wh.motd" in names and ".wh.old" in names
    i = names.index("var/cache/app")
    assert names[i + 1] == "var/cache/app/.wh..wh..opq"
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        for m in tf.getmembers():
            assert not [k for k in m.pax_headers if "overlay" in k], m.name

    copy_tree(lower, target)
    apply_layer(io.BytesIO(tar), target, whiteouts=WhiteoutMode.DELETE)
    t = snapshot_tree(target)
    assert "etc/motd" not in t and "old" not in t and "old/x" not in t
    assert (target / "etc/passwd").read_text() == "changed"
    assert sorted(os.listdir(target / "var/cache/app")) == ["fresh"]
    assert os.getxattr(target / "var/cache/app/fresh", "user.keep") == b"1"

    # and applied in overlay form it reproduces the upper dir
    upper2 = tmp_path / "upper2"
    upper2.mkdir()
    apply_layer(io.BytesIO(tar), upper2, whiteouts=WhiteoutMode.OVERLAY)
    assert stat.S_ISCHR(os.lstat(upper2 / "etc/motd").st_mode)
    assert os.getxattr(upper2 / "var/cache/app", "trusted.overlay.opaque") == b"y"
    again = io.BytesIO()
    write_overlay_diff(upper2, again)
    assert [n for n, _ in entries(again.getvalue())] == names
