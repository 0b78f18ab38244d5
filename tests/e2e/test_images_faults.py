"""``kill -9`` of dockyardd in the middle of a pull or a commit: afterwards no half image
is listed, every blob in the content store matches its digest, no unpack is left over,
and the same pull (or commit) succeeds."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import shutil
import signal
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.content.local import LocalContentStore
from dockyard.content.store import write_blob
from dockyard.distribution import Descriptor, Distribution
from dockyard.image.service import ImageService
from dockyard.image.unpack import EXTRACT_PREFIX
from dockyard.image.verify import verify_content, verify_images
from dockyard.oci import mediatypes as mt
from dockyard.snapshot.overlay import OverlaySnapshotter
from dockyard.store.db import Database

from .conftest import Daemon, _UnixConnection
from .registries import Registry, dockyard_registry

LAYER_MB = 48
LAYERS = 3


@pytest.fixture(scope="module")
def big_image() -> Iterator[tuple[Registry, str]]:
    """A registry holding a 3-layer image of random files (uncompressed OCI layers)."""
    with dockyard_registry() as reg:
        tmp = Path(tempfile.mkdtemp(prefix="dockyard-e2e-big-", dir="/tmp"))
        try:
            store = LocalContentStore(tmp / "content")
            layers, diff_ids = [], []
            for i in range(LAYERS):
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w") as tf:
                    data = os.urandom(LAYER_MB << 20)
                    ti = tarfile.TarInfo(f"big{i}")
                    ti.size = len(data)
                    tf.addfile(ti, io.BytesIO(data))
                raw = buf.getvalue()
                _, d = write_blob(store, f"l{i}", raw)
                layers.append(Descriptor(mt.OCI_LAYER, d, len(raw)))
                diff_ids.append(d)
            cfg = json.dumps({"architecture": "amd64", "os": "linux",
                              "config": {"Cmd": ["sh"]},
                              "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
            _, cd = write_blob(store, "cfg", cfg)
            ref = f"{reg.host}/faults/big:1"

            async def push() -> None:
                async with Distribution() as dist:
                    await dist.push(ref, store=store, config=Descriptor(mt.OCI_CONFIG, cd,
                                                                        len(cfg)),
                                    layers=layers)

            asyncio.run(push())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        yield reg, ref


def kill9(d: Daemon) -> None:
    assert d.proc is not None
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait()
    d.proc = None


def offline_check(d: Daemon) -> list[str]:
    """With the daemon down: verify blobs, records, snapshots; no unpack left over."""
    assert d.proc is None
    db = Database(d.data_root / "state.db")
    try:
        svc = ImageService(db, LocalContentStore(d.data_root / "content", clean_ingest=False),
                           OverlaySnapshotter(d.data_root / "snapshots", db), recover=False)
        problems = verify_images(svc)
        problems += [f"unpack left over: {i.key}" for i in svc.snapshotter.walk()
                     if i.key.startswith(EXTRACT_PREFIX)]
        return problems
    finally:
        db.close()


@pytest.fixture
def restartable(fresh_daemon: Daemon) -> Iterator[Daemon]:
    """``fresh_daemon``, running again at the end whatever happened (its cleanup removes
    the containers through the API)."""
    try:
        yield fresh_daemon
    finally:
        if fresh_daemon.proc is None:
            fresh_daemon.start()


def tags(d: Daemon) -> list[str]:
    return sorted(t for i in d.json("GET", "/images/json?all=1") for t in i.get("RepoTags") or [])


@pytest.mark.parametrize("phase", ["Downloading", "Pull complete"])
def test_kill9_during_pull(restartable: Daemon, big_image: tuple[Registry, str],
                           phase: str) -> None:
    d = restartable
    _, ref = big_image
    name, tag = ref.rsplit(":", 1)
    before = d.json("GET", "/images/json?all=1")
    conn = _UnixConnection(d.sock, 120)
    try:
        conn.request("POST", f"/images/create?fromImage={name}&tag={tag}")
        resp = conn.getresponse()
        assert resp.status == 200
        seen = []
        while True:
            line = resp.readline()
            assert line, f"the pull ended before {phase!r}: {seen}"
            ev = json.loads(line)
            seen.append(ev.get("status"))
            if ev.get("status") == phase and (phase != "Downloading" or
                                              ev["progressDetail"]["current"] > 0):
                kill9(d)
                break
    finally:
        conn.close()
    # right after the crash: whatever became visible is complete and verified
    assert verify_content(LocalContentStore(d.data_root / "content", clean_ingest=False)) == []

    d.start()
    assert d.json("GET", "/images/json?all=1") == before      # no half image
    d.stop()
    assert offline_check(d) == []
    d.start()
    out = d.dockyard("pull", ref, timeout=180)
    assert out.returncode == 0, out.stderr
    assert f"Status: Downloaded newer image for {ref}" in out.stdout
    assert ref in tags(d)
    assert d.dockyard("image", "inspect", ref).returncode == 0
    d.stop()
    assert offline_check(d) == []
    d.start()


@pytest.mark.parametrize("phase", ["diff", "unpack"])
def test_kill9_during_commit(restartable: Daemon, phase: str) -> None:
    d = restartable
    d.dockyard("run", "--name", "big", "busybox", "sh", "-c",
               "dd if=/dev/urandom of=/big bs=1M count=200 2>/dev/null", check=True,
               timeout=120)
    before = d.json("GET", "/images/json?all=1")
    ingest = d.data_root / "content" / "ingest"

    def commit_refs() -> list[Path]:
        out = []
        for p in ingest.iterdir() if ingest.is_dir() else []:
            try:
                if (p / "ref").read_text().startswith("commit-"):
                    out.append(p)
            except OSError:
                continue
        return out

    def request() -> None:
        try:
            d.request("POST", "/commit?container=big&repo=127.0.0.1:1/faults/committed&tag=1",
                      timeout=120)
        except (OSError, http.client.HTTPException):
            pass                                   # the daemon died under it

    t = threading.Thread(target=request)
    t.start()
    try:
        deadline = time.monotonic() + 60
        seen = False
        while time.monotonic() < deadline:
            live = commit_refs()
            if live:
                seen = True
                if phase == "diff":
                    break
            elif seen and phase == "unpack":
                break                               # the layer blob is in; now unpacking
            time.sleep(0.002)
        else:
            pytest.fail(f"never saw the commit reach its {phase} phase")
        kill9(d)
    finally:
        t.join(60)
    assert verify_content(LocalContentStore(d.data_root / "content", clean_ingest=False)) == []

    d.start()
    assert d.json("GET", "/images/json?all=1") == before      # no half image
    d.stop()
    assert offline_check(d) == []
    d.start()
    iid = d.dockyard("commit", "big", "127.0.0.1:1/faults/committed:1", check=True,
                     timeout=120).stdout.strip()
    assert d.json("GET", f"/images/{iid}/json")["RepoTags"] == ["127.0.0.1:1/faults/committed:1"]
    out = d.dockyard("run", "--rm", "127.0.0.1:1/faults/committed:1", "sh", "-c",
                     "test -s /big && echo ok", check=True, timeout=60)
    assert out.stdout.strip() == "ok"
    d.dockyard("rm", "big", check=True)
    d.stop()
    assert offline_check(d) == []
    d.start()


def test_kill9_of_the_registry_during_a_push(restartable: Daemon,
                                             big_image: tuple[Registry, str]) -> None:
    d = restartable
    _, src = big_image
    d.dockyard("pull", src, check=True, timeout=180)
    root = Path(tempfile.mkdtemp(prefix="dockyard-e2e-push-target-", dir="/tmp"))
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with dockyard_registry(root=root, port=port) as reg:
            target = f"{reg.host}/faults/pushed"
            d.dockyard("tag", src, f"{target}:1", check=True)
            conn = _UnixConnection(d.sock, 120)
            try:
                conn.request("POST", f"/images/{target}/push?tag=1",
                             headers={"X-Registry-Auth": "e30="})
                resp = conn.getresponse()
                assert resp.status == 200
                killed = False
                errors = []
                while line := resp.readline():
                    ev = json.loads(line)
                    if not killed and ev.get("status") == "Pushing" and \
                            ev["progressDetail"]["current"] > 0:
                        assert reg.proc is not None
                        os.kill(reg.proc.pid, signal.SIGKILL)
                        killed = True
                    if "errorDetail" in ev:
                        errors.append(ev["errorDetail"]["message"])
                assert killed and errors, "the push finished before the registry was killed"
            finally:
                conn.close()
        with dockyard_registry(root=root, port=port) as reg:
            out = d.dockyard("push", f"{target}:1", timeout=180)
            assert out.returncode == 0, out.stderr + out.stdout
            digest = [x for x in out.stdout.splitlines() if "digest:" in x][0].split()[2]
            d.dockyard("rmi", f"{target}:1", src, check=True)
            pulled = d.dockyard("pull", f"{target}:1", timeout=180)
            assert pulled.returncode == 0, pulled.stderr
            assert f"Digest: {digest}" in pulled.stdout
        d.dockyard("rmi", f"{target}:1", check=True)
        d.stop()
        assert offline_check(d) == []
        d.start()
    finally:
        shutil.rmtree(root, ignore_errors=True)
