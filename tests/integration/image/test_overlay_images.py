"""The image store on the real kernel (root): overlay snapshots, container root
filesystems mounted from the returned mounts, whiteouts and opaque directories through
overlayfs, and the diff of an upper dir round-tripping into a new image."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dockyard.content import write_blob
from dockyard.daemon.app import api_middleware
from dockyard.daemon.routes import images as image_routes
from dockyard.engine.images import ImageBackend
from dockyard.errors import InvalidArgument
from dockyard.image import ImageService
from dockyard.image.diff import write_overlay_diff
from dockyard.image.unpack import LayerSource
from dockyard.oci.mediatypes import OCI_LAYER
from dockyard.snapshot import OverlaySnapshotter, overlay_supported
from dockyard.store.db import Database
from tests.unit.tarlayer.tarhelp import E, busybox_tar_path, make_tar

from .mounts import mounted

pytestmark = pytest.mark.skipif(not overlay_supported(), reason="the kernel has no overlayfs")


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    db = Database(tmp_path / "state.db")
    s = ImageService.open(tmp_path / "root", db, snapshotter="overlay")
    assert isinstance(s.snapshotter, OverlaySnapshotter)
    yield s
    db.close()


@pytest.fixture(scope="module")
def busybox_tar() -> Path:
    p = busybox_tar_path()
    if p is None:
        pytest.skip("no busybox rootfs tar (scripts/mkbusybox.py needs busybox-static)")
    return p


def tree(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = os.lstat(p)
            entry: tuple[Any, ...] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                      st.st_uid, st.st_gid)
            if stat.S_ISREG(st.st_mode):
                entry += (hashlib.sha256(p.read_bytes()).hexdigest(), int(st.st_mtime))
            elif stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(p),)
            out[str(p.relative_to(root))] = entry
    return out


def add_layer_image(svc: ImageService, base: str, layer_tar: bytes, repo: str) -> str:
    """A new image: ``base``'s layers plus ``layer_tar`` on top."""
    from dockyard.oci.reference import parse

    b = svc.get(base)
    with ExitStack() as hold:
        _, blob = write_blob(svc.content, f"layer-{repo}", layer_tar)
        hold.enter_context(svc.leases.hold(blob))
        sources = [LayerSource(d["digest"], d["mediaType"], did)
                   for d, did in zip(b.doc["layers"], b.diff_ids)]
        layers = svc.unpacker.unpack([*sources, LayerSource(blob, OCI_LAYER)], hold)
        cfg = json.loads(json.dumps(b.config))
        cfg["rootfs"]["diff_ids"] = [ly.diff_id for ly in layers]
        cfg["history"].append({"created": cfg["created"], "created_by": "test layer"})
        return svc.create_image(
            cfg, [*b.doc["layers"], {"mediaType": OCI_LAYER, "digest": blob,
                                     "size": len(layer_tar)}],
            chain=layers[-1].chain_id, size=sum(ly.size for ly in layers), parent=b.id,
            refs=[parse(repo)])


def test_busybox_rootfs_through_overlay(svc: ImageService, tmp_path: Path,
                                        busybox_tar: Path) -> None:
    with open(busybox_tar, "rb") as f:
        iid = svc.import_image(f, repo="busybox", changes=['CMD ["sh"]'])
    with tarfile.open(busybox_tar) as tf:
        member = tf.getmember("bin/busybox")
        extracted = tf.extractfile(member)
        assert extracted is not None
        want = hashlib.sha256(extracted.read()).hexdigest()

    (m,) = svc.prepare_rootfs(iid, "c1")
    assert m.type == "overlay" and len([o for o in m.options if o.startswith("lowerdir=")]) == 1
    with mounted([m], tmp_path / "mnt1") as root:
        assert hashlib.sha256((root / "bin/busybox").read_bytes()).hexdigest() == want
    svc.remove_rootfs("c1")
    top = add_layer_image(svc, iid, make_tar(E("etc", "dir"), E("etc/motd", data=b"hi\n")),
                          "busybox:2")
    mounts = svc.prepare_rootfs(top, "c2")
    assert [m.type for m in mounts] == ["overlay"]
    assert {"index=off", "redirect_dir=off", "metacopy=off"} & set(mounts[0].options)
    with mounted(mounts, tmp_path / "mnt") as root:
        assert hashlib.sha256((root / "bin/busybox").read_bytes()).hexdigest() == want
        assert os.readlink(root / "bin/sh") in ("/bin/busybox", "busybox")
        assert (root / "etc/passwd").read_text().startswith("root:x:0:0")
        assert (root / "etc/motd").read_text() == "hi\n"
        assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
        (root / "written").write_text("by the container")
        os.unlink(root / "etc/passwd")
    upper = svc.upper_dir("c2")
    assert (upper / "written").read_text() == "by the container"
    wh = os.lstat(upper / "etc/passwd")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    size_rw, size_rootfs = svc.rootfs_usage("c2")
    assert size_rw == len("by the container")
    assert size_rootfs == size_rw + svc.get(top).size
    svc.remove_rootfs("c2")
    svc.remove("busybox:2")
    svc.remove("busybox")
    assert list(svc.snapshotter.walk()) == [] and list(svc.content.walk()) == []


def test_two_layer_whiteouts_and_opaque_dirs(svc: ImageService, tmp_path: Path) -> None:
    l1 = make_tar(E("a", data=b"a"), E("gone", data=b"g"), E("d", "dir"),
                  E("d/x", data=b"x"), E("d/sub", "dir"), E("d/sub/y", data=b"y"),
                  E("keep", "dir"), E("keep/k", data=b"k"), E("olddir", "dir"),
                  E("olddir/f", data=b"f"))
    base = svc.import_image(io.BytesIO(l1), repo="base")
    l2 = make_tar(E(".wh.gone"), E(".wh.olddir"), E("d", "dir"), E("d/.wh..wh..opq"),
                  E("d/z", data=b"z"), E("keep", "dir"), E("keep/k2", data=b"k2"))
    top = add_layer_image(svc, base, l2, "top")
    with mounted(svc.prepare_rootfs(top, "c"), tmp_path / "mnt") as root:
        assert sorted(os.listdir(root)) == ["a", "d", "keep"]
        assert sorted(os.listdir(root / "d")) == ["z"]
        assert sorted(os.listdir(root / "keep")) == ["k", "k2"]
    # the lower layer is untouched and shared
    with mounted(svc.prepare_rootfs(base, "c0"), tmp_path / "mnt0") as root:
        assert sorted(os.listdir(root)) == ["a", "d", "gone", "keep", "olddir"]
    svc.remove_rootfs("c")
    svc.remove_rootfs("c0")


def test_upper_dir_diff_round_trips(svc: ImageService, tmp_path: Path) -> None:
    l1 = make_tar(E("etc", "dir"), E("etc/conf", data=b"v1", mode=0o640),
                  E("etc/remove-me", data=b"r"), E("var", "dir"), E("var/cache", "dir"),
                  E("var/cache/a", data=b"a"), E("var/cache/b", data=b"b"),
                  E("srv", "dir"), E("srv/data", data=b"d"), E("bin", "dir"),
                  E("bin/tool", data=b"#!", mode=0o755))
    l2 = make_tar(E("etc", "dir"), E("etc/extra", data=b"e"))
    base = add_layer_image(svc, svc.import_image(io.BytesIO(l1), repo="l1"), l2, "base")
    with mounted(svc.prepare_rootfs(base, "ctr"), tmp_path / "mnt") as root:
        (root / "etc/conf").write_text("v2")                  # copy-up
        os.unlink(root / "etc/remove-me")                     # whiteout
        os.unlink(root / "etc/extra")                         # whiteout of layer 2's file
        shutil.rmtree(root / "var/cache")                     # opaque dir after re-creation
        (root / "var/cache").mkdir()
        (root / "var/cache/fresh").write_text("f")
        shutil.move(root / "srv", root / "srv2")              # EXDEV with redirect_dir=off
        os.chmod(root / "bin/tool", 0o700)                    # metadata-only change
        os.symlink("tool", root / "bin/alias")
        os.link(root / "var/cache/fresh", root / "var/cache/fresh2")
        want = tree(root)
    out = io.BytesIO()
    write_overlay_diff(svc.upper_dir("ctr"), out)
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(out.getvalue())).getmembers()]
    assert "etc/.wh.remove-me" in names and ".wh.srv" in names
    assert "var/cache/.wh..wh..opq" in names
    committed = add_layer_image(svc, base, out.getvalue(), "committed")
    with mounted(svc.prepare_rootfs(committed, "check"), tmp_path / "mnt2") as root:
        got = tree(root)
        assert os.stat(root / "var/cache/fresh").st_ino == os.stat(root / "var/cache/fresh2").st_ino
    assert got == want
    for k in ("ctr", "check"):
        svc.remove_rootfs(k)


def test_hostile_import_on_overlay_leaves_nothing(svc: ImageService, tmp_path: Path) -> None:
    ok = svc.import_image(io.BytesIO(make_tar(E("f", data=b"1"))), repo="ok")
    bad = make_tar(E("x", data=b"1"), E("evil", "symlink", link=str(tmp_path)),
                   E("evil/planted", data=b"pwned"), E("y", "hardlink", link="../../etc/shadow"))
    before = sorted(os.listdir(svc.snapshotter.root))     # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument):
        svc.import_image(io.BytesIO(bad), repo="bad")
    assert not (tmp_path / "planted").exists()
    assert sorted(os.listdir(svc.snapshotter.root)) == before  # type: ignore[attr-defined]
    assert [i.id for i in svc.list(all=True)] == [ok]
    assert len(list(svc.content.walk())) == 2


def test_import_over_http_with_the_real_backend(svc: ImageService, busybox_tar: Path) -> None:
    async def main() -> None:
        backend = ImageBackend(svc, containers_using=lambda image_id: [])
        app = web.Application(middlewares=[api_middleware])
        image_routes.setup(app, backend)
        async with TestClient(TestServer(app)) as c:
            async def body() -> Any:
                with open(busybox_tar, "rb") as f:
                    while chunk := f.read(100_000):
                        yield chunk

            r = await c.post("/v1.47/images/create?fromSrc=-&repo=busybox:http"
                             "&changes=ENTRYPOINT+%5B%22%2Fbin%2Fsh%22%5D", data=body())
            assert r.status == 200
            iid = json.loads(await r.text())["status"]
            r = await c.get("/v1.47/images/busybox:http/json")
            data = await r.json()
            assert data["Id"] == iid and data["Config"]["Entrypoint"] == ["/bin/sh"]
            assert data["GraphDriver"]["Name"] == "overlay2"
            assert data["RootFS"]["Layers"] == [
                "sha256:" + hashlib.sha256(busybox_tar.read_bytes()).hexdigest()]
            r = await c.get("/images/json")
            assert [i["RepoTags"] for i in await r.json()] == [["busybox:http"]]
            r = await c.post("/images/create?fromSrc=-&repo=junk", data=b"\x1f\x8b\x08junk")
            assert r.status == 400
            r = await c.delete("/images/busybox:http")
            assert (await r.json())[1] == {"Deleted": iid}

    asyncio.run(main())
    assert list(svc.snapshotter.walk()) == []
