"""ImageService over the copying snapshotter: import, names, list, history, rmi's rules,
prune, gc and container root filesystems. No root needed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from dockyard.content import write_blob
from dockyard.errors import Conflict, InvalidArgument, NoSuchImage, Unsupported
from dockyard.image import ContainerUse, ImageService
from dockyard.image.unpack import LayerSource, chain_ids
from dockyard.oci.mediatypes import OCI_LAYER
from dockyard.oci.reference import parse_normalized
from dockyard.store.db import Database
from dockyard.store.images import RefRow
from tests.unit.tarlayer.tarhelp import E, make_tar

ROOTFS = make_tar(
    E("bin", "dir"), E("bin/sh", data=b"#!shell\n", mode=0o755),
    E("etc", "dir"), E("etc/os-release", data=b"NAME=test\n"),
    E("tmp", "dir", mode=0o1777),
)
OTHER = make_tar(E("other", data=b"other"))


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    db = Database(tmp_path / "state.db")
    s = ImageService.open(tmp_path, db, snapshotter="naive")
    yield s
    db.close()


def imp(svc: ImageService, data: bytes = ROOTFS, repo: str = "", **kw: object) -> str:
    return svc.import_image(io.BytesIO(data), repo=repo, **kw)  # type: ignore[arg-type]


def nothing_left(svc: ImageService, root: Path) -> None:
    assert svc.records.list_images() == []
    assert svc.records.list_layers() == []
    assert list(svc.snapshotter.walk()) == []
    assert list(svc.content.walk()) == []
    assert os.listdir(root / "content" / "ingest") == []
    assert os.listdir(root / "snapshots") == []


# -- import ------------------------------------------------------------------------------

def test_import_creates_docker_like_config(svc: ImageService) -> None:
    iid = imp(svc, repo="localhost:5000/app:v1", changes=['CMD ["sh"]', "ENV A=1"],
              message="first")
    img = svc.get("localhost:5000/app:v1")
    assert img.id == iid
    raw = svc.config_bytes(iid)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == iid
    cfg = json.loads(raw)
    assert cfg["os"] == "linux" and cfg["architecture"]
    assert cfg["rootfs"] == {"type": "layers",
                             "diff_ids": ["sha256:" + hashlib.sha256(ROOTFS).hexdigest()]}
    assert cfg["config"] == {"Cmd": ["sh"], "Env": ["A=1"]}
    assert cfg["comment"] == "first"
    assert cfg["history"] == [{"created": cfg["created"], "comment": "first"}]
    assert img.repo_tags == ["localhost:5000/app:v1"]
    assert img.size == len(b"#!shell\n") + len(b"NAME=test\n")
    assert img.doc["layers"][0]["mediaType"] == OCI_LAYER


def test_import_default_comment_tag_param_and_gzip(svc: ImageService) -> None:
    iid = imp(svc, gzip.compress(ROOTFS), repo="busybox:ignored", tag="1.0")
    img = svc.get(iid)
    assert img.repo_tags == ["busybox:1.0"]
    assert img.config["comment"] == "Imported from -"
    assert img.doc["layers"][0]["mediaType"].endswith("+gzip")
    assert img.diff_ids == ["sha256:" + hashlib.sha256(ROOTFS).hexdigest()]


def test_import_without_repo_is_untagged(svc: ImageService) -> None:
    iid = imp(svc)
    assert svc.get(iid).repo_tags == []


@pytest.mark.parametrize("data", [
    b"not a tar" * 100,
    make_tar(E("../escape", data=b"x")),
    make_tar(E("a", data=b"x" * 3000))[:1500],
    gzip.compress(make_tar(E("a", data=b"x")))[:30],
    make_tar(E("ok", data=b"fine"), E("l", "symlink", link="../../../x")),
])
def test_hostile_or_corrupt_import_leaves_nothing(svc: ImageService, tmp_path: Path,
                                                  data: bytes) -> None:
    with pytest.raises(InvalidArgument):
        imp(svc, data, repo="evil")
    nothing_left(svc, tmp_path)
    assert not (tmp_path.parent / "escape").exists()


def test_failed_import_keeps_shared_blobs(svc: ImageService) -> None:
    iid = imp(svc, repo="good")
    with pytest.raises(InvalidArgument):
        imp(svc, b"garbage" * 100, repo="bad")
    assert svc.resolve("good") == iid
    assert len(list(svc.content.walk())) == 2   # the layer blob and the config
    assert len(svc.records.list_layers()) == 1


def test_import_option_errors(svc: ImageService, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="RUN is not a valid change command"):
        imp(svc, changes=["RUN rm -rf /"])
    with pytest.raises(InvalidArgument):
        imp(svc, repo="no spaces allowed")
    with pytest.raises(InvalidArgument, match="digest"):
        imp(svc, repo="x@sha256:" + "a" * 64)
    with pytest.raises(Unsupported):
        imp(svc, src="http://example.invalid/rootfs.tar")
    nothing_left(svc, tmp_path)


def test_same_layer_is_unpacked_once(svc: ImageService) -> None:
    a = imp(svc, repo="a")
    b = imp(svc, repo="b")
    assert a != b   # a new config (created time) each time
    assert len(svc.records.list_layers()) == 1
    assert len([i for i in svc.snapshotter.walk()]) == 1
    svc.remove("a")
    assert svc.resolve("b") == b
    assert len(svc.records.list_layers()) == 1


def test_concurrent_imports(svc: ImageService) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            ids.append(imp(svc, repo=f"c{n}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(ids) == 4
    assert len(svc.records.list_layers()) == 1
    assert len(list(svc.snapshotter.walk())) == 1


# -- names -------------------------------------------------------------------------------

def test_resolve_every_form(svc: ImageService) -> None:
    iid = imp(svc, repo="busybox")
    hexid = iid[7:]
    for name in (iid, hexid, hexid[:12], hexid[:3], "sha256:" + hexid[:12], "busybox",
                 "busybox:latest", "docker.io/library/busybox:latest",
                 "index.docker.io/library/busybox", "library/busybox"):
        assert svc.resolve(name) == iid, name
    with pytest.raises(NoSuchImage, match="^No such image: nosuch:latest$"):
        svc.resolve("nosuch")
    with pytest.raises(NoSuchImage, match="^No such image: localhost:5000/x:2$"):
        svc.resolve("localhost:5000/x:2")
    with pytest.raises(NoSuchImage, match="No such image: sha256:0000"):
        svc.resolve("sha256:0000")
    with pytest.raises(NoSuchImage):
        svc.resolve("sha256:" + "0" * 64)
    with pytest.raises(InvalidArgument):
        svc.resolve("Not_Valid")


def test_digest_reference(svc: ImageService) -> None:
    iid = imp(svc, repo="localhost:5000/app:1")
    dg = "sha256:" + "d" * 64
    svc.records.set_ref(RefRow(f"localhost:5000/app@{dg}", iid, "digest", 1))
    assert svc.resolve(f"localhost:5000/app@{dg}") == iid
    img = svc.get(iid)
    assert img.repo_digests == [f"localhost:5000/app@{dg}"]


def test_ambiguous_prefix_is_no_such_image(svc: ImageService) -> None:
    a, b = imp(svc, repo="repo-one"), imp(svc, repo="repo-two")  # names no hex prefix can be
    common = os.path.commonprefix([a[7:], b[7:]])
    with pytest.raises(NoSuchImage):
        svc.resolve(common) if common else svc.resolve("")


def test_tag_moves_names(svc: ImageService) -> None:
    a = imp(svc, repo="app:1")
    b = imp(svc, OTHER, repo="other")
    assert svc.tag("other", "app", "1") == "app:1"
    assert svc.resolve("app:1") == b
    assert svc.get(a).repo_tags == []                       # now dangling
    assert svc.tag(a, "docker.io/library/app") == "app:latest"
    assert svc.tag(a, "localhost:5000/app:2") == "localhost:5000/app:2"
    with pytest.raises(InvalidArgument):
        svc.tag(a, "app@sha256:" + "a" * 64)
    with pytest.raises(InvalidArgument, match="reserved"):
        svc.tag(a, "scratch")
    with pytest.raises(InvalidArgument, match="ambiguous"):
        svc.tag(a, "sha256", "x")
    with pytest.raises(InvalidArgument):
        svc.tag(a, "app", "bad tag")
    with pytest.raises(NoSuchImage):
        svc.tag("missing", "app", "3")
    assert svc.untag("app") == "app:latest"
    with pytest.raises(NoSuchImage):
        svc.untag("app")


# -- list --------------------------------------------------------------------------------

def test_list_filters(svc: ImageService) -> None:
    a = imp(svc, repo="busybox:1", changes=["LABEL tier=base"])
    b = imp(svc, OTHER, repo="localhost:5000/team/busybox:2", changes=["LABEL tier=app"])
    c = imp(svc, OTHER)
    ids = lambda imgs: [i.id for i in imgs]  # noqa: E731
    assert set(ids(svc.list())) == {a, b, c}
    assert ids(svc.list(filters={"dangling": ["true"]})) == [c]
    assert set(ids(svc.list(filters={"dangling": ["false"]}))) == {a, b}
    assert ids(svc.list(filters={"reference": ["busybox"]})) == [a]
    assert ids(svc.list(filters={"reference": ["busybox:1"]})) == [a]
    assert ids(svc.list(filters={"reference": ["*/team/*"]})) == [b]
    assert ids(svc.list(filters={"reference": ["*"]})) == [a]      # '*' does not cross '/'
    assert ids(svc.list(filters={"label": ["tier=app"]})) == [b]
    assert set(ids(svc.list(filters={"label": ["tier"]}))) == {a, b}
    with pytest.raises(InvalidArgument, match="invalid filter 'bogus'"):
        svc.list(filters={"bogus": ["1"]})
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling=maybe'"):
        svc.list(filters={"dangling": ["maybe"]})
    # a reference filter shows only the matching names
    svc.tag(a, "alpine", "3")
    (img,) = svc.list(filters={"reference": ["alpine"]})
    assert img.repo_tags == ["alpine:3"]


def test_list_before_since(svc: ImageService) -> None:
    a = imp(svc, repo="a")
    b = imp(svc, repo="b")
    # created times are set per import; force an order through the records
    with svc.db.transaction() as cur:
        cur.execute("UPDATE images SET created = 100 WHERE id = ?", (a,))
        cur.execute("UPDATE images SET created = 200 WHERE id = ?", (b,))
    assert [i.id for i in svc.list(filters={"before": ["b"]})] == [a]
    assert [i.id for i in svc.list(filters={"since": ["a"]})] == [b]
    assert [i.id for i in svc.list()] == [b, a]     # newest first
    with pytest.raises(NoSuchImage):
        svc.list(filters={"since": ["nosuch"]})


def child_image(svc: ImageService, parent: str, repo: str = "") -> str:
    """An image with one more layer on top of ``parent`` (as commit/build will make)."""
    p = svc.get(parent)
    with ExitStack() as hold:
        _, layer_blob = write_blob(svc.content, "t", OTHER)
        hold.enter_context(svc.leases.hold(layer_blob))
        layers = svc.unpacker.unpack(
            [LayerSource(d["digest"], d["mediaType"], did)
             for d, did in zip(p.doc["layers"], p.diff_ids)]
            + [LayerSource(layer_blob, OCI_LAYER)], hold)
        cfg = dict(p.config)
        cfg["rootfs"] = {"type": "layers", "diff_ids": [ly.diff_id for ly in layers]}
        cfg["history"] = list(p.config["history"]) + [{"created": p.config["created"],
                                                       "created_by": "/bin/sh -c make"}]
        return svc.create_image(
            cfg, [*p.doc["layers"], {"mediaType": OCI_LAYER, "digest": layer_blob,
                                     "size": len(OTHER)}],
            chain=layers[-1].chain_id, size=sum(ly.size for ly in layers), parent=parent,
            refs=[parse_normalized(repo).with_default_tag()] if repo else [])


def test_list_hides_untagged_parents_unless_all(svc: ImageService) -> None:
    base = imp(svc)
    child = child_image(svc, base, "child")
    assert [i.id for i in svc.list()] == [child]
    assert {i.id for i in svc.list(all=True)} == {base, child}


# -- history -----------------------------------------------------------------------------

def test_history(svc: ImageService) -> None:
    base = imp(svc, repo="base", message="the base")
    child = child_image(svc, base, "child")
    h = svc.history("child")
    assert [x.id for x in h] == [child, base]
    assert h[0].created_by == "/bin/sh -c make" and h[0].size == len(b"other")
    assert h[0].tags == ["child:latest"] and h[1].tags == ["base:latest"]
    assert h[1].comment == "the base"
    assert h[1].size == svc.get(base).size
    only = svc.history(base)
    assert len(only) == 1 and only[0].id == base


# -- rmi ---------------------------------------------------------------------------------

def uses(*cs: ContainerUse) -> object:
    return lambda image_id: list(cs)


def records(rs: Sequence[object]) -> list[dict[str, str]]:
    return [r.to_json() for r in rs]  # type: ignore[attr-defined]


def test_rmi_untags_then_deletes(svc: ImageService) -> None:
    iid = imp(svc, repo="app:1")
    svc.tag(iid, "app", "2")
    assert records(svc.remove("app:1")) == [{"Untagged": "app:1"}]
    out = records(svc.remove("app:2"))
    assert out[0] == {"Untagged": "app:2"}
    assert out[1] == {"Deleted": iid}
    assert out[2]["Deleted"].startswith("sha256:")     # the layer
    assert svc.list(all=True) == []
    assert list(svc.content.walk()) == [] and list(svc.snapshotter.walk()) == []


def test_rmi_by_name_used_by_a_container(svc: ImageService) -> None:
    iid = imp(svc, repo="app")
    stopped = ContainerUse("c" * 64, running=False)
    with pytest.raises(Conflict) as e:
        svc.remove("app", containers=uses(stopped))  # type: ignore[arg-type]
    assert str(e.value) == (f'conflict: unable to remove repository reference "app" (must force) '
                            f"- container cccccccccccc is using its referenced image {iid[7:19]}")
    # with force the name goes and the image with it; the container keeps its layers
    svc.prepare_rootfs(iid, "c" * 64)
    out = records(svc.remove("app", force=True, containers=uses(stopped)))  # type: ignore[arg-type]
    assert out == [{"Untagged": "app:latest"}, {"Deleted": iid}]
    assert len(svc.records.list_layers()) == 1
    svc.remove_rootfs("c" * 64)
    assert svc.records.list_layers() == [] and list(svc.content.walk()) == []


def test_rmi_by_id_conflicts(svc: ImageService) -> None:
    iid = imp(svc, repo="app")
    short = iid[7:19]
    running = ContainerUse("r" * 12 + "0" * 52, running=True)
    stopped = ContainerUse("s" * 12 + "0" * 52, running=False)
    with pytest.raises(Conflict, match=rf"^conflict: unable to delete {short} \(cannot be forced\) "
                                       r"- image is being used by running container rrrrrrrrrrrr$"):
        svc.remove(short, force=True, containers=uses(running))  # type: ignore[arg-type]
    with pytest.raises(Conflict, match=rf"^conflict: unable to delete {short} \(must be forced\) "
                                       r"- image is being used by stopped container ssssssssssss$"):
        svc.remove(iid, containers=uses(stopped))  # type: ignore[arg-type]
    svc.tag(iid, "other", "1")
    with pytest.raises(Conflict, match=r"\(must be forced\) - image is referenced in multiple "
                                       r"repositories"):
        svc.remove(short)
    out = records(svc.remove(short, force=True))
    assert {"Untagged": "app:latest"} in out and {"Untagged": "other:1"} in out
    assert {"Deleted": iid} in out


def test_rmi_child_and_parent_pruning(svc: ImageService) -> None:
    base = imp(svc)
    child = child_image(svc, base, "child")
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image has dependent child images"):
        svc.remove(base, force=True)
    out = records(svc.remove("child"))
    assert {"Deleted": child} in out and {"Deleted": base} in out   # untagged parent pruned
    assert svc.list(all=True) == []


def test_rmi_noprune_keeps_the_parent(svc: ImageService) -> None:
    base = imp(svc)
    child_image(svc, base, "child")
    svc.remove("child", prune=False)
    assert [i.id for i in svc.list(all=True)] == [base]


def test_rmi_of_missing_image(svc: ImageService) -> None:
    with pytest.raises(NoSuchImage, match="No such image: nosuch:latest"):
        svc.remove("nosuch")


# -- prune -------------------------------------------------------------------------------

def test_prune(svc: ImageService) -> None:
    tagged = imp(svc, repo="keep")
    dangling = imp(svc, OTHER)
    used = imp(svc, make_tar(E("u", data=b"u")))
    in_use = uses(ContainerUse("c" * 64))
    rep = svc.prune(containers=lambda i: in_use(i) if i == used else [])  # type: ignore[operator]
    assert {"Deleted": dangling} in records(rep.deleted)
    assert rep.space_reclaimed == len(b"other")
    assert {i.id for i in svc.list(all=True)} == {tagged, used}
    rep = svc.prune({"dangling": ["false"]})
    assert {"Untagged": "keep:latest"} in records(rep.deleted)
    with pytest.raises(InvalidArgument):
        svc.prune({"reference": ["x"]})


def test_prune_until(svc: ImageService) -> None:
    imp(svc, OTHER)
    assert svc.prune({"until": ["1970-01-02T00:00:00Z"]}).deleted == []
    assert svc.prune({"until": ["0s"]}).deleted != []


# -- gc and restart ----------------------------------------------------------------------

def test_recover_removes_leftovers(svc: ImageService, tmp_path: Path) -> None:
    iid = imp(svc, repo="app")
    svc.prepare_rootfs(iid, "ctr")
    # a crashed unpack and an unreferenced blob
    svc.snapshotter.prepare("extract-deadbeef", "")
    write_blob(svc.content, "orphan", b"orphan blob")
    (tmp_path / "snapshots" / "77").mkdir()
    again = ImageService.open(tmp_path, svc.db, snapshotter="naive")
    keys = {i.key for i in again.snapshotter.walk()}
    assert "extract-deadbeef" not in keys and "ctr" in keys
    assert "sha256:" + hashlib.sha256(b"orphan blob").hexdigest() not in {
        i.digest for i in again.content.walk()}
    assert not (tmp_path / "snapshots" / "77").exists()
    assert again.resolve("app") == iid
    assert again.rootfs_keys() == ["ctr"]


# -- container root filesystems ----------------------------------------------------------

def test_rootfs_lifecycle(svc: ImageService) -> None:
    iid = imp(svc, repo="app")
    (m,) = svc.prepare_rootfs("app", "ctr1")
    assert m.type == "bind" and "rw" in m.options
    root = Path(m.source)
    assert (root / "etc/os-release").read_bytes() == b"NAME=test\n"
    assert svc.rootfs_mounts("ctr1") == [m]
    (root / "written").write_bytes(b"x" * 100)
    rw, total = svc.rootfs_usage("ctr1")
    assert rw == 100 and total == 100 + svc.get(iid).size
    assert svc.upper_dir("ctr1") == root
    with pytest.raises(Exception):
        svc.prepare_rootfs(iid, "ctr1")
    svc.remove_rootfs("ctr1")
    svc.remove_rootfs("ctr1")   # idempotent
    assert svc.rootfs_keys() == []


def test_two_layer_image_with_whiteouts(svc: ImageService) -> None:
    l1 = make_tar(E("a", data=b"a"), E("d", "dir"), E("d/x", data=b"x"), E("d/y", data=b"y"),
                  E("gone", data=b"g"))
    l2 = make_tar(E(".wh.gone"), E("d", "dir"), E("d/.wh..wh..opq"), E("d/z", data=b"z"),
                  E("b", data=b"b"))
    with ExitStack() as hold:
        blobs = []
        for n, data in enumerate((l1, l2)):
            _, digest = write_blob(svc.content, f"l{n}", data)
            hold.enter_context(svc.leases.hold(digest))
            blobs.append(digest)
        diff_ids = ["sha256:" + hashlib.sha256(d).hexdigest() for d in (l1, l2)]
        layers = svc.unpacker.unpack(
            [LayerSource(b, OCI_LAYER, d) for b, d in zip(blobs, diff_ids)], hold)
        assert [ly.chain_id for ly in layers] == chain_ids(diff_ids)
        cfg = {"architecture": "amd64", "os": "linux", "config": {},
               "rootfs": {"type": "layers", "diff_ids": diff_ids},
               "history": [{"created_by": "l1"}, {"created_by": "l2"}]}
        iid = svc.create_image(cfg, [{"mediaType": OCI_LAYER, "digest": b, "size": 1}
                                     for b in blobs],
                               chain=layers[-1].chain_id, size=sum(x.size for x in layers))
    (m,) = svc.prepare_rootfs(iid, "c")
    root = Path(m.source)
    assert sorted(os.listdir(root)) == ["a", "b", "d"]
    assert sorted(os.listdir(root / "d")) == ["z"]
    # a wrong diff id is refused and leaves no layer behind
    with ExitStack() as hold, pytest.raises(InvalidArgument, match="diff id"):
        _, bad = write_blob(svc.content, "bad", make_tar(E("q", data=b"q")))
        hold.enter_context(svc.leases.hold(bad))
        svc.unpacker.unpack([LayerSource(bad, OCI_LAYER, "sha256:" + "0" * 64)], hold)
    assert len(svc.records.list_layers()) == 2
