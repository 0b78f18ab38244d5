"""Push against the fake registry: uploads (streamed PATCH, monolithic PUT), existing blobs,
cross-repository mounts, the manifest, progress, auth."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from dockyard import errors
from dockyard.content.local import LocalContentStore
from dockyard.content.store import write_blob
from dockyard.distribution import (
    Descriptor,
    Distribution,
    build_schema2_manifest,
    pull,
    push,
)
from dockyard.distribution.progress import short_id
from dockyard.oci import mediatypes as mt

from .conftest import run
from .fakeregistry import FakeRegistry, sha256


class Image:
    """Blobs written into a store, as the image service would hand them over."""

    def __init__(self, store: LocalContentStore, sizes: list[int]) -> None:
        self.data = [os.urandom(n) for n in sizes]
        self.layers = []
        for i, b in enumerate(self.data):
            _, d = write_blob(store, f"layer{i}", b)
            self.layers.append(Descriptor(mt.DOCKER_LAYER_GZIP, d, len(b)))
        self.diff_ids = [sha256(b"uncompressed" + b) for b in self.data]
        self.config_bytes = json.dumps({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids}}).encode()
        _, cd = write_blob(store, "config", self.config_bytes)
        self.config = Descriptor(mt.DOCKER_CONFIG, cd, len(self.config_bytes))


def _st(events: list[dict[str, Any]], id: str) -> list[str]:
    return [e["status"] for e in events if e.get("id") == id and e["status"] != "Pushing"]


def test_push_uploads_layers_config_and_manifest(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            img = Image(store, [3 << 20, 2 << 20, 1000])
            events: list[dict[str, Any]] = []
            res = await push(f"{reg.host}/team/app:v1", store=store, config=img.config,
                             layers=img.layers, progress=events.append)

            manifest = build_schema2_manifest(img.config, img.layers)
            assert res.digest == sha256(manifest) and res.size == len(manifest)
            assert res.tag == "v1" and res.media_type == mt.DOCKER_MANIFEST
            assert reg.manifests[res.digest] == (manifest, mt.DOCKER_MANIFEST)
            assert reg.tags["team/app"]["v1"] == res.digest
            for d, data in zip(img.layers, img.data, strict=True):
                assert reg.blobs[d.digest] == data
            assert reg.blobs[img.config.digest] == img.config_bytes

            # big blobs: one PATCH with the whole blob, no Content-Range, then an empty PUT
            assert len(reg.patch_info) == 2
            assert all(p["content_range"] is None for p in reg.patch_info)
            assert sorted(p["length"] for p in reg.patch_info) == [2 << 20, 3 << 20]
            puts = reg.requests("PUT", "/blobs/uploads/")
            assert len(puts) == 4                       # 2 after PATCH, 2 monolithic
            assert sorted(p.body_len for p in puts) == sorted([0, 0, 1000, len(img.config_bytes)])
            assert all(p.query["_state"] and p.query["digest"] for p in puts)
            [mput] = reg.requests("PUT", "/manifests/v1")
            assert mput.headers["Content-Type"] == mt.DOCKER_MANIFEST

            # progress as docker: ids are the diff ids; the final two records
            assert events[0] == {"status": f"The push refers to repository [{reg.host}/team/app]"}
            ids = [short_id(x) for x in img.diff_ids]
            for lid in ids:
                assert _st(events, lid) == ["Preparing", "Pushed"]
            pushing = [e for e in events if e.get("status") == "Pushing" and e["id"] == ids[0]]
            assert pushing[-1]["progressDetail"] == {"current": 3 << 20, "total": 3 << 20}
            assert events[-2] == {"status": f"v1: digest: {res.digest} size: {res.size}"}
            assert events[-1] == {"progressDetail": {},
                                  "aux": {"Tag": "v1", "Digest": res.digest, "Size": res.size}}
    run(go())


def test_second_push_finds_every_layer(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            img = Image(store, [5000, 6000])
            await push(f"{reg.host}/app:1", store=store, config=img.config, layers=img.layers)
            n_posts = len(reg.requests("POST"))
            events: list[dict[str, Any]] = []
            await push(f"{reg.host}/app:2", store=store, config=img.config, layers=img.layers,
                       progress=events.append)
            assert len(reg.requests("POST")) == n_posts
            for x in img.diff_ids:
                assert _st(events, short_id(x)) == ["Preparing", "Layer already exists"]
            assert reg.tags["app"] == {"1": reg.tags["app"]["2"], "2": reg.tags["app"]["2"]}
    run(go())


def test_cross_repository_mount(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            img = Image(store, [2 << 20, 7000])
            await push(f"{reg.host}/base/one:1", store=store, config=img.config,
                       layers=img.layers)
            n_patch = len(reg.patch_info)
            events: list[dict[str, Any]] = []
            sources = {d.digest: [f"{reg.host}/base/one", "docker.io/library/elsewhere"]
                       for d in img.layers}
            await push(f"{reg.host}/derived:1", store=store, config=img.config,
                       layers=img.layers, mount_from=sources, progress=events.append)
            for x in img.diff_ids:
                assert _st(events, short_id(x)) == ["Preparing", "Mounted from base/one"]
            assert len(reg.patch_info) == n_patch
            mounts = [s for s in reg.requests("POST") if "mount" in s.query]
            assert len(mounts) == 2 and all(s.query["from"] == ["base/one"] for s in mounts)
            assert img.layers[0].digest in reg.repo_blobs["derived"]
    run(go())


def test_refused_mount_uploads_into_the_offered_session(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(refuse_mount=True) as reg:
            img = Image(store, [2 << 20])
            await push(f"{reg.host}/one:1", store=store, config=img.config, layers=img.layers)
            posts_before = len(reg.requests("POST"))
            events: list[dict[str, Any]] = []
            await push(f"{reg.host}/two:1", store=store, config=img.config, layers=img.layers,
                       mount_from={img.layers[0].digest: [f"{reg.host}/one"]},
                       progress=events.append)
            assert _st(events, short_id(img.diff_ids[0])) == ["Preparing", "Pushed"]
            # the mount POST's 202 session was used: one POST for the layer, one for the config
            posts = reg.requests("POST")[posts_before:]
            assert len(posts) == 2 and len([p for p in posts if "mount" in p.query]) == 1
            assert img.layers[0].digest in reg.repo_blobs["two"]
    run(go())


def test_push_given_manifest_bytes_keeps_the_digest(store: LocalContentStore,
                                                     tmp_path: Any) -> None:
    async def go() -> None:
        async with FakeRegistry() as src, FakeRegistry() as dst:
            made = src.add_image("app", "1", [os.urandom(4000), os.urandom(2 << 20)], oci=True)
            res = await pull(f"{src.host}/app:1", store=store)
            out = await push(f"{dst.host}/copy:1", store=store, manifest=res.manifest,
                             manifest_media_type=res.media_type)
            assert out.digest == made["digest"] and out.media_type == mt.OCI_MANIFEST
            assert dst.manifests[out.digest][0] == made["manifest"]
            for d in made["layers"]:
                assert dst.blobs[d] == src.blobs[d]
    run(go())


def test_push_with_bearer_asks_for_pull_and_push(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(auth="bearer") as reg:
            img = Image(store, [3000])
            await push(f"{reg.host}/app:1", store=store, config=img.config, layers=img.layers,
                       auth={"username": "user", "password": "pass"})
            assert [t["scope"] for t in reg.token_requests] == [["repository:app:pull,push"]]
            assert reg.tags["app"]["1"]
    run(go())


def test_push_errors(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry(auth="basic") as reg:
            img = Image(store, [3000])
            with pytest.raises(errors.Unauthorized) as ei:
                await push(f"{reg.host}/app:1", store=store, config=img.config,
                           layers=img.layers)
            assert ei.value.message == "unauthorized: authentication required"
            missing = Descriptor(mt.DOCKER_LAYER_GZIP, "sha256:" + "e" * 64, 10)
            with pytest.raises(errors.NotFound) as ei2:
                await push(f"{reg.host}/app:1", store=store, config=img.config,
                           layers=[missing], auth={"username": "user", "password": "pass"})
            assert "not in the content store" in ei2.value.message
            assert not reg.requests("POST")
    run(go())


def test_uploads_beyond_the_limit_wait(store: LocalContentStore) -> None:
    async def go() -> None:
        async with FakeRegistry() as reg:
            img = Image(store, [1000 + i for i in range(4)])
            events: list[dict[str, Any]] = []
            async with Distribution(max_concurrent_uploads=2) as dist:
                await dist.push(f"{reg.host}/app:1", store=store, config=img.config,
                                layers=img.layers, progress=events.append)
            waiting = [e for e in events if e.get("status") == "Waiting"]
            assert len(waiting) == 2
    run(go())
