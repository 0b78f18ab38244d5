"""The image store's registry side (records of pulls, what a push sends), commit over the
copying snapshotter, docker save/load archives, and the store verification. No root."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from dockyard.content import write_blob
from dockyard.distribution.manifest import Descriptor
from dockyard.errors import InvalidArgument, NoSuchImage
from dockyard.image import ImageService
from dockyard.image.archive import load_archive, resolve_for_save, write_archive
from dockyard.image.commit import commit_container
from dockyard.image.diff import write_overlay_diff
from dockyard.image.transfer import LeasingStore, prepare_push, record_pull, record_push
from dockyard.image.unpack import LayerSource
from dockyard.image.verify import verify_content, verify_images
from dockyard.oci import mediatypes as mt
from dockyard.oci.reference import parse, parse_normalized
from dockyard.store.db import Database
from tests.unit.tarlayer.tarhelp import E, make_tar

ROOTFS = make_tar(
    E("bin", "dir"), E("bin/sh", data=b"#!shell\n", mode=0o755),
    E("etc", "dir"), E("etc/os-release", data=b"NAME=test\n"),
    E("usr", "dir"), E("usr/lib", "dir"), E("usr/lib/a", data=b"a"),
    E("tmp", "dir", mode=0o1777),
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    db = Database(tmp_path / "state.db")
    s = ImageService.open(tmp_path, db, snapshotter="naive")
    yield s
    db.close()


def imp(svc: ImageService, repo: str, data: bytes = ROOTFS) -> str:
    return svc.import_image(io.BytesIO(data), repo=repo)


# -- pull records -----------------------------------------------------------------------------

def _pulled(svc: ImageService, ref: str, layer: bytes = ROOTFS) -> tuple[str, bytes, str]:
    """Put a gzip layer, config and manifest in the store as a pull would, record it."""
    gz = gzip.compress(layer, mtime=0)
    with ExitStack() as stack:
        store = LeasingStore(svc.content, svc.leases, stack)
        _, ld = write_blob(store, "l", gz)
        assert svc.leases.held(ld)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                             "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}},
                            indent=1).encode()           # not our own serialisation
        _, cd = write_blob(store, "c", config)
        desc = Descriptor(mt.DOCKER_LAYER_GZIP, ld, len(gz))
        manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                               "config": {"mediaType": mt.DOCKER_CONFIG, "digest": cd,
                                          "size": len(config)},
                               "layers": [desc.to_dict()]}).encode()
        _, md = write_blob(store, "m", manifest)
        hold = stack.enter_context(ExitStack())
        unpacked = [svc.unpacker.unpack_layer(LayerSource(ld, desc.media_type, sha(layer)), "",
                                              hold)]
        iid, before = record_pull(svc, ref=parse(ref), digest=md, config=config,
                                  manifest_digest=md, manifest_media_type=mt.DOCKER_MANIFEST,
                                  manifest_size=len(manifest), layers=[desc], unpacked=unpacked)
    assert before == ""
    assert not svc.leases.held(ld)
    return iid, config, md


def test_record_pull_keeps_the_registry_ids(svc: ImageService) -> None:
    iid, config, md = _pulled(svc, "127.0.0.1:5000/app:1")
    assert iid == sha(config)                    # the exact config bytes: the same image id
    img = svc.get("127.0.0.1:5000/app:1")
    assert img.repo_tags == ["127.0.0.1:5000/app:1"]
    assert img.repo_digests == [f"127.0.0.1:5000/app@{md}"]
    assert img.doc["manifest"]["digest"] == md
    svc.gc()
    assert svc.content.info(md)                  # kept by gc: push reuses it
    assert verify_images(svc) == []
    # the same image from another repository: a second source, nothing duplicated
    iid2, _, _ = _pulled(svc, "127.0.0.1:5000/other:2")
    assert iid2 == iid
    assert svc.get(iid).doc["sources"] == ["127.0.0.1:5000/app", "127.0.0.1:5000/other"]


def test_push_of_a_pulled_image_reuses_its_manifest(svc: ImageService) -> None:
    iid, _, md = _pulled(svc, "127.0.0.1:5000/app:1")
    with ExitStack() as stack:
        src = prepare_push(svc, "127.0.0.1:5000/app:1", stack)
    assert sha(src.manifest) == md and src.media_type == mt.DOCKER_MANIFEST
    assert src.sources == ("127.0.0.1:5000/app",)
    assert set(src.blob_sources) == {iid} | {x["digest"] for x in
                                            json.loads(src.manifest)["layers"]}


def test_push_of_a_local_image_gzips_once_and_records(svc: ImageService) -> None:
    iid = imp(svc, "127.0.0.1:5000/local:1")
    with ExitStack() as stack:
        first = prepare_push(svc, "127.0.0.1:5000/local:1", stack)
    doc = json.loads(first.manifest)
    assert first.media_type == mt.DOCKER_MANIFEST
    assert doc["config"] == {"mediaType": mt.DOCKER_CONFIG, "size": len(svc.config_bytes(iid)),
                             "digest": iid}
    (layer,) = doc["layers"]
    assert layer["mediaType"] == mt.DOCKER_LAYER_GZIP
    with svc.content.reader(layer["digest"]) as f:
        assert gzip.decompress(f.read()) == ROOTFS
    svc.gc()                                      # the gzip blob and manifest are recorded
    with ExitStack() as stack:
        second = prepare_push(svc, iid, stack)
    assert second.manifest == first.manifest
    record_push(svc, iid, parse("127.0.0.1:5000/local:1"), sha(first.manifest))
    img = svc.get(iid)
    assert img.repo_digests == [f"127.0.0.1:5000/local@{sha(first.manifest)}"]
    assert img.doc["sources"] == ["127.0.0.1:5000/local"]
    with pytest.raises(NoSuchImage):
        with ExitStack() as stack:
            prepare_push(svc, "127.0.0.1:5000/nosuch:1", stack)


def test_tags_of_repository_and_ref_target(svc: ImageService) -> None:
    iid = imp(svc, "127.0.0.1:5000/r:b")
    svc.tag(iid, "127.0.0.1:5000/r:a")
    svc.tag(iid, "127.0.0.1:5000/other:a")
    assert [t.tag for t in svc.tags_of_repository("127.0.0.1:5000/r")] == ["a", "b"]
    assert svc.ref_target(parse_normalized("127.0.0.1:5000/r:a")) == iid
    assert svc.ref_target(parse_normalized("127.0.0.1:5000/r:zzz")) == ""


# -- commit -----------------------------------------------------------------------------------

def test_commit_over_the_copying_snapshotter(svc: ImageService) -> None:
    parent = imp(svc, "base:1")
    svc.prepare_rootfs(parent, "ctr")
    root = svc.upper_dir("ctr")
    (root / "new").write_text("hello")
    os.unlink(root / "etc" / "os-release")
    (root / "etc" / "hosts").write_text("")       # a mount-point artifact: not committed
    os.makedirs(root / "proc")
    cfg = {"Cmd": ["sh"], "Env": ["A=1"]}
    iid = commit_container(svc, "ctr", parent, cfg, comment="msg", author="me",
                           created_by="sh -c x", ref=parse("committed:1"))
    img = svc.get("committed:1")
    assert img.id == iid and img.parent == parent
    assert img.config["config"] == cfg
    assert img.config["author"] == "me" and img.config["comment"] == "msg"
    assert img.config["history"][-1]["created_by"] == "sh -c x"
    assert len(img.diff_ids) == 2 and img.diff_ids[0] == svc.get(parent).diff_ids[0]
    blob = img.doc["layers"][-1]["digest"]
    with svc.content.reader(blob) as f, tarfile.open(fileobj=f) as tf:
        names = sorted(tf.getnames())
    assert names == ["etc", "etc/.wh.os-release", "new"]
    (m,) = svc.prepare_rootfs(iid, "ctr2")
    r2 = svc.upper_dir("ctr2")
    assert (r2 / "new").read_text() == "hello" and not (r2 / "etc" / "os-release").exists()
    assert verify_images(svc) == []

    # nothing changed: an empty layer in the history, the same layers
    svc.prepare_rootfs(parent, "ctr3")
    iid3 = commit_container(svc, "ctr3", parent, cfg)
    img3 = svc.get(iid3)
    assert img3.diff_ids == svc.get(parent).diff_ids
    assert img3.config["history"][-1].get("empty_layer") is True
    assert img3.chain_id == svc.get(parent).chain_id


def test_overlay_diff_leaves_out_copied_up_dirs_and_artifacts(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in (lower / "etc", lower / "var", upper / "etc", upper / "var" / "new", upper / "dev"):
        d.mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root")
    (upper / "etc" / "hosts").write_text("")
    (upper / "etc" / "resolv.conf").write_text("")
    (upper / "var" / "new" / "f").write_text("x")
    out = io.BytesIO()
    write_overlay_diff(upper, out, lower_dirs=[lower])
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        assert tf.getnames() == ["var", "var/new", "var/new/f"]
    out = io.BytesIO()
    write_overlay_diff(upper, out)                # without the lower dirs: everything
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        assert "etc/hosts" in tf.getnames() and "dev" in tf.getnames()


# -- save and load ----------------------------------------------------------------------------

def _archive(svc: ImageService, names: list[str]) -> bytes:
    out = io.BytesIO()
    write_archive(svc, resolve_for_save(svc, names), out)
    return out.getvalue()


def test_save_writes_oci_layout_and_manifest_json(svc: ImageService) -> None:
    iid, config, _ = _pulled(svc, "127.0.0.1:5000/app:1")   # a gzip layer: saved unpacked
    svc.tag(iid, "127.0.0.1:5000/app:2")
    data = _archive(svc, ["127.0.0.1:5000/app"])               # a repository: all its tags
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        files = {m.name: tf.extractfile(m).read()  # type: ignore[union-attr]
                 for m in tf if m.isreg()}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads(files["manifest.json"])
    assert entry["Config"] == f"blobs/sha256/{iid[7:]}"
    assert entry["RepoTags"] == ["127.0.0.1:5000/app:1", "127.0.0.1:5000/app:2"]
    assert files[entry["Layers"][0]] == ROOTFS
    assert files[entry["Config"]] == config
    index = json.loads(files["index.json"])
    assert [m["annotations"]["org.opencontainers.image.ref.name"]
            for m in index["manifests"]] == ["1", "2"]
    manifest = json.loads(files["blobs/" + index["manifests"][0]["digest"].replace(":", "/")])
    assert manifest["layers"][0] == {"mediaType": mt.OCI_LAYER, "digest": sha(ROOTFS),
                                     "size": len(ROOTFS)}
    with pytest.raises(NoSuchImage):
        resolve_for_save(svc, ["nosuch:1"])


def test_load_round_trip_and_renames(svc: ImageService) -> None:
    iid = imp(svc, "app:1")
    data = _archive(svc, ["app:1"])
    svc.remove("app:1")
    assert svc.count() == 0
    msgs: list[dict[str, Any]] = []
    assert load_archive(svc, io.BytesIO(data), msgs.append) == [iid]
    assert msgs == [{"stream": "Loaded image: app:1\n"}]
    other = imp(svc, "other:1", make_tar(E("x", data=b"x")))
    svc.tag(other, "app:1")
    msgs = []
    load_archive(svc, io.BytesIO(gzip.compress(data)), msgs.append)
    assert msgs[0]["stream"].startswith("The image app:1 already exists, renaming the old one "
                                        f"with ID {other}")
    assert svc.resolve("app:1") == iid
    assert verify_images(svc) == []


def test_load_untagged_and_index_only(svc: ImageService) -> None:
    iid = imp(svc, "")
    data = _archive(svc, [iid])
    svc.remove(iid)
    msgs: list[dict[str, Any]] = []
    load_archive(svc, io.BytesIO(data), msgs.append)
    assert msgs == [{"stream": f"Loaded image ID: {iid}\n"}]
    # an OCI layout alone (no manifest.json): tags from the index annotations
    svc.tag(iid, "127.0.0.1:5000/oci:7")
    full = _archive(svc, ["127.0.0.1:5000/oci:7"])
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(full)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for m in src:
            if m.name != "manifest.json":
                dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    svc.remove(iid, force=True)
    msgs = []
    load_archive(svc, io.BytesIO(out.getvalue()), msgs.append)
    assert msgs == [{"stream": "Loaded image: 127.0.0.1:5000/oci:7\n"}]


def test_bad_archives_leave_nothing(svc: ImageService, tmp_path: Path) -> None:
    def bad(data: bytes, match: str) -> None:
        with pytest.raises(InvalidArgument, match=match):
            load_archive(svc, io.BytesIO(data), lambda _: None)
        assert svc.count() == 0
        assert list(svc.content.walk()) == []
        assert list(svc.snapshotter.walk()) == []

    bad(os.urandom(3000), "invalid tar archive")
    bad(make_tar(E("hello", data=b"x")), "no manifest.json or index.json")
    cfg = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(b"other")]}}).encode()
    bad(make_tar(E("c.json", data=cfg), E("l.tar", data=ROOTFS),
                 E("manifest.json", data=json.dumps(
                     [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l.tar"]}]).encode())),
        "diff id")
    bad(make_tar(E("c.json", data=cfg), E("manifest.json", data=json.dumps(
        [{"Config": "c.json", "Layers": []}]).encode())), "layers length mismatch")
    bad(make_tar(E("manifest.json", data=b"{not json")), "invalid manifest.json")


# -- verification -----------------------------------------------------------------------------

def test_verify_finds_a_corrupt_blob(svc: ImageService, tmp_path: Path) -> None:
    iid = imp(svc, "app:1")
    assert verify_content(svc.content) == []
    path = tmp_path / "content" / "blobs" / "sha256" / iid[7:]
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    problems = verify_images(svc)
    assert problems == [f"blob {iid}: content hashes to {sha(b'tampered')}",
                        f"image {iid}: config is not JSON"]


def test_unpack_layer_reports_progress(svc: ImageService) -> None:
    gz = gzip.compress(ROOTFS)
    _, d = write_blob(svc.content, "x", gz)
    seen: list[int] = []
    with ExitStack() as hold:
        layer = svc.unpacker.unpack_layer(LayerSource(d, mt.OCI_LAYER_GZIP, sha(ROOTFS)), "",
                                          hold, seen.append)
    assert layer.diff_id == sha(ROOTFS) and layer.new
    assert seen and seen[-1] == len(gz)
