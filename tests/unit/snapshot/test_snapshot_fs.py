"""The copying snapshotter's tree copy and disk usage; overlay mount options."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dockyard.snapshot import OverlaySnapshotter, default_overlay_options, overlay_supported
from dockyard.snapshot._fs import copy_tree, disk_usage, remove_tree
from dockyard.store.db import Database


def test_copy_tree_keeps_everything(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "d").mkdir(mode=0o750)
    (src / "d" / "f").write_text("data")
    os.chmod(src / "d" / "f", 0o4711)
    os.utime(src / "d" / "f", (1_000_000_000, 1_100_000_000))
    os.link(src / "d" / "f", src / "hard")
    os.symlink("d/f", src / "link")
    os.mkfifo(src / "fifo")
    (src / "ro").mkdir()
    (src / "ro" / "x").write_text("x")
    os.chmod(src / "ro", 0o555)
    os.utime(src / "d", (1_200_000_000, 1_200_000_000))
    try:
        os.setxattr(src / "d" / "f", "user.k", b"v")
        have_xattr = True
    except OSError:
        have_xattr = False
    copy_tree(src, dst)
    st = os.stat(dst / "d" / "f")
    assert stat.S_IMODE(st.st_mode) == 0o4711
    assert st.st_mtime == 1_100_000_000
    assert os.stat(dst / "hard").st_ino == st.st_ino
    assert os.readlink(dst / "link") == "d/f"
    assert stat.S_ISFIFO(os.lstat(dst / "fifo").st_mode)
    assert stat.S_IMODE(os.stat(dst / "d").st_mode) == 0o750
    assert os.stat(dst / "d").st_mtime == 1_200_000_000
    assert stat.S_IMODE(os.stat(dst / "ro").st_mode) == 0o555
    if have_xattr:
        assert os.getxattr(dst / "d" / "f", "user.k") == b"v"
    remove_tree(dst)
    remove_tree(src)
    assert not dst.exists() and not src.exists()


def test_disk_usage_counts_inodes_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100)
    os.link(tmp_path / "a", tmp_path / "b")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "c").write_bytes(b"y" * 10)
    u = disk_usage(tmp_path)
    assert (u.size, u.inodes) == (110, 3)


def test_overlay_options_follow_the_module_parameters(tmp_path: Path) -> None:
    (tmp_path / "index").write_text("N")
    (tmp_path / "metacopy").write_text("N")
    assert default_overlay_options(tmp_path) == ("index=off", "metacopy=off")
    assert default_overlay_options(tmp_path / "none") == ()


def test_overlay_supported_reads_proc_filesystems(tmp_path: Path) -> None:
    (tmp_path / "filesystems").write_text("nodev\tproc\n\text4\nnodev\toverlay\n")
    assert overlay_supported(tmp_path)
    (tmp_path / "filesystems").write_text("nodev\tproc\n")
    assert not overlay_supported(tmp_path)


def test_overlay_mounts_are_data(tmp_path: Path) -> None:
    """The overlay snapshotter works without root: it only returns mounts."""
    db = Database(tmp_path / "db")
    s = OverlaySnapshotter(tmp_path / "snaps", db, options=("index=off",))
    assert s.prepare("a", "")[0].type == "bind"
    s.commit("l1", "a")
    s.prepare("b", "l1")
    s.commit("l2", "b")
    (m,) = s.prepare("c", "l2")
    assert m.type == "overlay"
    opts = list(m.options)
    assert opts[0] == "index=off"
    lower = [o for o in opts if o.startswith("lowerdir=")][0]
    assert lower == f"lowerdir={s.fs_dir('l2')}:{s.fs_dir('l1')}"
    assert f"upperdir={s.fs_dir('c')}" in opts
    assert any(o.startswith("workdir=") for o in opts)
    (v,) = s.view("v", "l2")
    assert v.type == "overlay" and not any(o.startswith("upperdir=") for o in v.options)
    (v1,) = s.view("v1", "l1")
    assert (v1.type, v1.source, v1.options) == ("bind", str(s.fs_dir("l1")), ("rbind", "ro"))
    # short numeric directory names keep the option string short
    assert all(p.name == "fs" and p.parent.name.isdigit() for p in map(s.fs_dir, ("l1", "l2", "c")))
    db.close()
