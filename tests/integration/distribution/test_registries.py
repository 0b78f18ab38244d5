"""The registry client against real registries on loopback: Debian's docker-registry
(distribution 2.8) and our dockyard-registry. Push a multi-layer random image, pull it
back byte for byte, mount across repositories, htpasswd Basic auth, token auth, and a
cross-check with skopeo."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard import errors
from dockyard.content.local import LocalContentStore
from dockyard.content.store import write_blob
from dockyard.distribution import Descriptor, Distribution, login
from dockyard.distribution.bench import bench_pull_push
from dockyard.distribution.progress import short_id
from dockyard.oci import mediatypes as mt

from .conftest import KINDS, PASSWORD, USER, Registry

AUTH = {"username": USER, "password": PASSWORD}


class Image:
    def __init__(self, store: LocalContentStore, sizes: list[int]) -> None:
        self.data = [os.urandom(n) for n in sizes]
        self.layers = []
        for i, b in enumerate(self.data):
            _, d = write_blob(store, f"layer{i}", b)
            self.layers.append(Descriptor(mt.DOCKER_LAYER_GZIP, d, len(b)))
        self.diff_ids = [f"sha256:{os.urandom(32).hex()}" for _ in sizes]
        self.config_bytes = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids}}).encode()
        _, cd = write_blob(store, "config", self.config_bytes)
        self.config = Descriptor(mt.DOCKER_CONFIG, cd, len(self.config_bytes))


def _blob(store: LocalContentStore, digest: str) -> bytes:
    with store.reader(digest) as f:
        return f.read()


def _ids_with(events: list[dict[str, Any]], status: str) -> set[str]:
    return {e["id"] for e in events if e.get("status") == status and "id" in e}


@pytest.mark.parametrize("kind", KINDS)
def test_push_then_pull_is_byte_identical(kind: str, tmp_path: Path,
                                          start_registry: Callable[..., Registry]) -> None:
    reg = start_registry(kind)
    src = LocalContentStore(tmp_path / "src")
    dst = LocalContentStore(tmp_path / "dst")
    img = Image(src, [6 << 20, 3 << 20, 300_000, 1234])

    async def go() -> None:
        async with Distribution() as dist:
            ev: list[dict[str, Any]] = []
            pushed = await dist.push(f"{reg.host}/it/app:1", store=src, config=img.config,
                                     layers=img.layers, progress=ev.append)
            assert _ids_with(ev, "Pushed") == {short_id(x) for x in img.diff_ids}
            assert ev[-1]["aux"] == {"Tag": "1", "Digest": pushed.digest, "Size": pushed.size}

            ev = []
            pulled = await dist.pull(f"{reg.host}/it/app:1", store=dst, progress=ev.append)
            assert pulled.digest == pushed.digest
            assert pulled.manifest == pushed.manifest
            assert pulled.config == img.config_bytes
            assert [x.diff_id for x in pulled.layers] == img.diff_ids
            for d, data in zip(img.layers, img.data, strict=True):
                assert _blob(dst, d.digest) == data
            assert ev[-1] == {"status": f"Digest: {pushed.digest}"}

            # by digest, into yet another store
            other = LocalContentStore(tmp_path / "dst2")
            again = await dist.pull(f"{reg.host}/it/app@{pushed.digest}", store=other)
            assert again.manifest_digest == pushed.digest

            # pushing again: every layer is there already
            ev = []
            await dist.push(f"{reg.host}/it/app:2", store=src, config=img.config,
                            layers=img.layers, progress=ev.append)
            assert _ids_with(ev, "Layer already exists") == {short_id(x) for x in img.diff_ids}

            # another repository on the same registry: mounted, not uploaded
            ev = []
            mounts = {d.digest: [f"{reg.host}/it/app"] for d in img.layers}
            res = await dist.push(f"{reg.host}/it/other:1", store=src, config=img.config,
                                  layers=img.layers, mount_from=mounts, progress=ev.append)
            assert _ids_with(ev, "Mounted from it/app") == {short_id(x) for x in img.diff_ids}
            assert res.digest == pushed.digest

            assert sorted(await dist.list_tags(f"{reg.host}/it/app")) == ["1", "2"]
            with pytest.raises(errors.NotFound) as ei:
                await dist.pull(f"{reg.host}/it/app:nope", store=dst)
            assert ei.value.message.startswith(f"manifest for {reg.host}/it/app:nope not found: "
                                               "manifest unknown: ")
    asyncio.run(go())


@pytest.mark.parametrize("kind", KINDS)
def test_htpasswd_basic_auth(kind: str, tmp_path: Path,
                             start_registry: Callable[..., Registry]) -> None:
    reg = start_registry(kind, auth="basic")
    src = LocalContentStore(tmp_path / "src")
    dst = LocalContentStore(tmp_path / "dst")
    img = Image(src, [2 << 20, 5000])

    async def go() -> None:
        assert await login(reg.host, USER, PASSWORD) == {"Status": "Login Succeeded",
                                                         "IdentityToken": ""}
        with pytest.raises(errors.Unauthorized) as ei:
            await login(reg.host, USER, "wrong")
        assert ei.value.message == (f"login attempt to http://{reg.host}/v2/ failed with "
                                    "status: 401 Unauthorized")
        async with Distribution() as dist:
            with pytest.raises(errors.Unauthorized):
                await dist.push(f"{reg.host}/sec/app:1", store=src, config=img.config,
                                layers=img.layers)
            pushed = await dist.push(f"{reg.host}/sec/app:1", store=src, config=img.config,
                                     layers=img.layers, auth=AUTH)
            with pytest.raises((errors.NotFound, errors.Unauthorized)):
                await dist.pull(f"{reg.host}/sec/app:1", store=dst)
            pulled = await dist.pull(f"{reg.host}/sec/app:1", store=dst, auth=AUTH)
            assert pulled.digest == pushed.digest
            for d, data in zip(img.layers, img.data, strict=True):
                assert _blob(dst, d.digest) == data
    asyncio.run(go())


def test_token_auth_with_dockyard_registry(tmp_path: Path,
                                           start_registry: Callable[..., Registry]) -> None:
    reg = start_registry("dockyard-registry", auth="token")
    src = LocalContentStore(tmp_path / "src")
    dst = LocalContentStore(tmp_path / "dst")
    img = Image(src, [3 << 20, 1000])

    async def go() -> None:
        out = await login(reg.host, USER, PASSWORD)
        assert out["Status"] == "Login Succeeded"
        with pytest.raises(errors.Unauthorized) as ei:
            await login(reg.host, USER, "wrong")
        assert ei.value.message.startswith(f'Get "http://{reg.host}/v2/": unauthorized: ')
        async with Distribution() as dist:
            pushed = await dist.push(f"{reg.host}/tok/app:1", store=src, config=img.config,
                                     layers=img.layers, auth=AUTH)
            pulled = await dist.pull(f"{reg.host}/tok/app:1", store=dst, auth=AUTH)
            assert pulled.digest == pushed.digest
            if out["IdentityToken"]:
                # what docker login stores instead of the password
                again = await dist.pull(f"{reg.host}/tok/app:1",
                                        store=LocalContentStore(tmp_path / "dst2"),
                                        auth={"identitytoken": out["IdentityToken"]})
                assert again.digest == pushed.digest
    asyncio.run(go())


@pytest.mark.parametrize("kind", KINDS)
def test_skopeo_reads_what_we_pushed(kind: str, tmp_path: Path, skopeo: str,
                                     start_registry: Callable[..., Registry]) -> None:
    reg = start_registry(kind)
    src = LocalContentStore(tmp_path / "src")
    img = Image(src, [1 << 20, 2000])

    async def go() -> str:
        async with Distribution() as dist:
            res = await dist.push(f"{reg.host}/sk/app:1", store=src, config=img.config,
                                  layers=img.layers)
            return res.digest
    digest = asyncio.run(go())
    out = subprocess.run([skopeo, "inspect", "--tls-verify=false", "--raw",
                          f"docker://{reg.host}/sk/app:1"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    doc = json.loads(out.stdout)
    assert [x["digest"] for x in doc["layers"]] == [d.digest for d in img.layers]
    assert "sha256:" + __import__("hashlib").sha256(out.stdout).hexdigest() == digest


def test_bench_helper(tmp_path: Path, start_registry: Callable[..., Registry]) -> None:
    reg = start_registry("docker-registry")
    res = asyncio.run(bench_pull_push(reg.host, size_mb=16, layers=2, workdir=str(tmp_path)))
    assert res["push_MBps"] > 0 and res["pull_MBps"] > 0
    assert not list(tmp_path.glob("dockyard-bench-*"))
