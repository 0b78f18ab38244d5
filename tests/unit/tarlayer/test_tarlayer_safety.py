"""Hostile and malformed layer tars: nothing is ever written outside the target root."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.util.tarlayer import apply_layer

from .tarhelp import E, make_tar


@pytest.fixture
def box(tmp_path: Path) -> tuple[Path, Path]:
    """(root, outside): the extraction root and a sibling directory that must stay empty."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


def apply(data: bytes, root: Path) -> object:
    return apply_layer(io.BytesIO(data), root)


def tree(p: Path) -> set[str]:
    return {str(x.relative_to(p)) for x in p.rglob("*")}


@pytest.mark.parametrize("name", ["../x", "a/../../x", "./../x", "a/b/../../../outside/x"])
def test_relative_escape_is_refused(box: tuple[Path, Path], name: str) -> None:
    root, outside = box
    with pytest.raises(InvalidArgument, match="escapes the layer root"):
        apply(make_tar(E("a", "dir"), E(name, data=b"pwned")), root)
    assert tree(outside) == set()
    assert not (root.parent / "x").exists()


def test_absolute_name_lands_inside_the_root(box: tuple[Path, Path]) -> None:
    root, outside = box
    target = outside / "x"
    apply(make_tar(E(str(target), data=b"inside"), E("/../../y", data=b"clamped")), root)
    assert not target.exists()
    assert (root / str(target).lstrip("/")).read_bytes() == b"inside"
    assert (root / "y").read_bytes() == b"clamped"


def test_symlink_then_write_through_stays_inside(box: tuple[Path, Path]) -> None:
    root, outside = box
    data = make_tar(
        E("evil", "symlink", link=str(outside)),           # absolute: re-rooted
        E("evil/passwd", data=b"pwned"),
        E("rel", "symlink", link="sub/../evil"),             # relative, stays inside
        E("rel/shadow", data=b"also pwned"),
    )
    apply(data, root)
    assert tree(outside) == set()
    inner = root / str(outside).lstrip("/")
    assert (inner / "passwd").read_bytes() == b"pwned"
    assert (inner / "shadow").read_bytes() == b"also pwned"
    assert os.readlink(root / "evil") == str(outside)


def test_symlink_with_escaping_relative_target_is_refused(box: tuple[Path, Path]) -> None:
    root, outside = box
    with pytest.raises(InvalidArgument, match="escapes the layer root"):
        apply(make_tar(E("a", "dir"), E("a/up", "symlink", link="../../outside")), root)
    assert not (root / "a" / "up").exists()


def test_symlink_chain_loop_is_an_error_not_a_hang(box: tuple[Path, Path]) -> None:
    root, _ = box
    with pytest.raises(InvalidArgument):
        apply(make_tar(E("a", "symlink", link="b"), E("b", "symlink", link="a"),
                       E("a/x", data=b"1")), root)


def test_preexisting_symlink_in_root_is_resolved_inside(box: tuple[Path, Path]) -> None:
    """A symlink left by a lower layer (copying snapshotter) is also followed in-root."""
    root, outside = box
    os.symlink(str(outside), root / "lower-link")
    os.symlink("../../../../..", root / "up")
    apply(make_tar(E("lower-link/f", data=b"x"), E("up/g", data=b"y")), root)
    assert tree(outside) == set()
    assert (root / str(outside).lstrip("/") / "f").read_bytes() == b"x"
    assert (root / "g").read_bytes() == b"y"


def test_hardlink_out_of_the_root_is_refused(box: tuple[Path, Path]) -> None:
    root, outside = box
    secret = outside / "secret"
    secret.write_text("s")
    with pytest.raises(InvalidArgument, match="escapes the layer root"):
        apply(make_tar(E("h", "hardlink", link="../outside/secret")), root)
    assert secret.stat().st_nlink == 1


def test_hardlink_through_symlink_does_not_reach_outside(box: tuple[Path, Path]) -> None:
    root, outside = box
    secret = outside / "secret"
    secret.write_text("s")
    data = make_tar(E("evil", "symlink", link=str(outside)), E("h", "hardlink", link="evil/secret"))
    with pytest.raises(InvalidArgument, match="target not found"):
        apply(data, root)
    assert secret.stat().st_nlink == 1
    assert not (root / "h").exists()


def test_hardlink_to_a_symlink_links_the_symlink_itself(box: tuple[Path, Path]) -> None:
    root, outside = box
    apply(make_tar(E("s", "symlink", link="/etc/passwd"), E("h", "hardlink", link="s")), root)
    assert os.path.islink(root / "h")
    assert os.readlink(root / "h") == "/etc/passwd"
    assert os.lstat(root / "h").st_ino == os.lstat(root / "s").st_ino


def test_device_nodes_are_never_created(box: tuple[Path, Path]) -> None:
    root, _ = box
    r = apply(make_tar(E("dev", "dir"), E("dev/sda", "blk", dev=(8, 0)),
                       E("dev/mem", "chr", dev=(1, 1)), E("dev/wh", "chr", dev=(0, 0)),
                       E("dev/hl", "hardlink", link="dev/mem"), E("dev/fifo", "fifo")), root)
    assert sorted(os.listdir(root / "dev")) == ["fifo"]
    assert sorted(r.skipped) == ["dev/hl", "dev/mem", "dev/sda", "dev/wh"]  # type: ignore[attr-defined]


def test_overlong_component_is_invalid(box: tuple[Path, Path]) -> None:
    root, _ = box
    with pytest.raises(InvalidArgument):
        apply(make_tar(E("d/" + "x" * 300, data=b"1")), root)
    with pytest.raises(InvalidArgument):
        apply(make_tar(E("y" * 300 + "/f", data=b"1")), root)


def test_overlong_extended_header_is_invalid(box: tuple[Path, Path]) -> None:
    root, _ = box
    with pytest.raises(InvalidArgument, match="too large"):
        apply(make_tar(E("a/" * 600_000 + "f", data=b"1")), root)


def test_deep_but_legal_paths_work(box: tuple[Path, Path]) -> None:
    root, _ = box
    name = "/".join(["d" * 200] * 30) + "/f"   # 6000 characters: longer than PATH_MAX/ok via fds
    apply(make_tar(E(name, data=b"deep")), root)
    p = os.path.join(*(["d" * 200] * 3))
    assert (root / p).is_dir()


def test_nul_in_name_never_creates_a_truncated_path(box: tuple[Path, Path]) -> None:
    root, _ = box
    ti = tarfile.TarInfo("x")
    ti.pax_headers["path"] = "a\x00b"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(ti, io.BytesIO(b""))
    with pytest.raises(InvalidArgument):
        apply(buf.getvalue(), root)
    assert tree(root) == set()


@pytest.mark.parametrize("cut", [100, 512 + 10, 1024 + 300])
def test_truncated_archive_is_invalid(box: tuple[Path, Path], cut: int) -> None:
    root, _ = box
    data = make_tar(E("a", data=b"x" * 2000), E("b", data=b"y" * 10))
    with pytest.raises(InvalidArgument):
        apply(data[:cut], root)


def test_garbage_is_invalid(box: tuple[Path, Path]) -> None:
    root, _ = box
    with pytest.raises(InvalidArgument):
        apply(b"this is not a tar archive" * 40, root)


def test_corrupt_header_after_good_entries_is_invalid(box: tuple[Path, Path]) -> None:
    root, _ = box
    data = bytearray(make_tar(E("a", data=b"x"), E("b", data=b"y")))
    data[1024:1024 + 100] = b"\xff" * 100   # second header's name + mode: checksum now wrong
    with pytest.raises(InvalidArgument):
        apply(bytes(data), root)


def test_corrupt_gzip_is_invalid(box: tuple[Path, Path]) -> None:
    from dockyard.util.tarlayer import decompress

    root, _ = box
    gz = bytearray(gzip.compress(make_tar(E("a", data=b"x" * 5000))))
    gz[40:60] = b"\x00" * 20
    stream, _ = decompress(io.BytesIO(bytes(gz)))
    with pytest.raises(InvalidArgument):
        apply_layer(stream, root)


def test_empty_input_is_an_empty_layer(box: tuple[Path, Path]) -> None:
    root, _ = box
    r = apply(b"", root)
    assert r.diff_id == "sha256:" + hashlib.sha256(b"").hexdigest()  # type: ignore[attr-defined]
    assert tree(root) == set()


def test_overlay_xattrs_from_the_tar_are_dropped() -> None:
    from dockyard.util.tarlayer import _xattrs

    ti = tarfile.TarInfo("d")
    ti.pax_headers = {
        "SCHILY.xattr.trusted.overlay.opaque": "y",
        "SCHILY.xattr.user.overlay.redirect": "/x",
        "SCHILY.xattr.user.keep": "v",
        "SCHILY.xattr.security.capability": b"\x01\x00\x00\x02\xff".decode("utf-8", "surrogateescape"),
    }
    assert _xattrs(ti) == {"user.keep": b"v", "security.capability": b"\x01\x00\x00\x02\xff"}
