"""Push and pull throughput against a registry on this machine.

::

    python -m dockyard.distribution.bench --start-docker-registry [--size-mb 200] [--layers 4]
    python -m dockyard.distribution.bench --registry 127.0.0.1:5000

``bench_pull_push()`` writes a random image (``layers`` blobs totalling ``size_mb`` MiB)
into a fresh content store, pushes it, pulls it into a second fresh store, and returns the
timings. Both stores live in a temporary directory that is removed afterwards. MB/s are
10^6 bytes per second (as docker and skopeo report them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dockyard.content.local import LocalContentStore
from dockyard.oci import mediatypes as mt

from .manifest import Descriptor
from .transfer import Distribution

__all__ = ["bench_pull_push", "docker_registry"]


def _random_blob(store: LocalContentStore, ref: str, size: int) -> Descriptor:
    w = store.writer(ref)
    try:
        left = size
        while left:
            n = min(left, 4 << 20)
            w.write(os.urandom(n))
            left -= n
        digest = w.digest()
        w.commit(size, digest)
    except BaseException:
        w.abort()
        raise
    return Descriptor(mt.DOCKER_LAYER_GZIP, digest, size)


async def bench_pull_push(registry: str, *, size_mb: int = 200, layers: int = 4,
                          repo: str = "bench/img", workdir: str | None = None,
                          auth: dict[str, str] | None = None) -> dict[str, Any]:
    """Push then pull a random ``size_mb`` MiB image through ``registry`` (``host:port``)."""
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir=workdir))
    try:
        src = LocalContentStore(tmp / "src")
        dst = LocalContentStore(tmp / "dst")
        total = size_mb << 20
        sizes = [total // layers] * layers
        sizes[-1] += total - sum(sizes)
        descs = [_random_blob(src, f"bench-{i}", n) for i, n in enumerate(sizes)]
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": [d.digest for d in descs]}}).encode()
        w = src.writer("bench-config")
        w.write(config)
        cdig = w.digest()
        w.commit(len(config), cdig)
        cfg = Descriptor(mt.DOCKER_CONFIG, cdig, len(config))
        tag = f"t{int(time.time() * 1000)}"
        async with Distribution() as dist:
            t0 = time.perf_counter()
            pushed = await dist.push(f"{registry}/{repo}:{tag}", store=src, config=cfg,
                                     layers=descs, auth=auth)
            t1 = time.perf_counter()
            pulled = await dist.pull(f"{registry}/{repo}:{tag}", store=dst, auth=auth)
            t2 = time.perf_counter()
        assert pulled.digest == pushed.digest
        assert [x.descriptor.digest for x in pulled.layers] == [d.digest for d in descs]
        return {
            "registry": registry, "bytes": total, "layers": layers,
            "push_s": round(t1 - t0, 3), "push_MBps": round(total / (t1 - t0) / 1e6, 1),
            "pull_s": round(t2 - t1, 3), "pull_MBps": round(total / (t2 - t1) / 1e6, 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def docker_registry(root: str, *, htpasswd: str = "",
                    binary: str = "/usr/bin/docker-registry") -> Iterator[str]:
    """Run Debian's ``docker-registry`` on a free loopback port with storage under ``root``;
    yields ``127.0.0.1:PORT``; stops it (by its pid) on exit."""
    port = _free_port()
    Path(root).mkdir(parents=True, exist_ok=True)
    cfg = Path(root) / "config.yml"
    text = (f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root}/data\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    if htpasswd:
        text += f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
    cfg.write_text(text)
    log = open(Path(root) / "registry.log", "wb")
    proc = subprocess.Popen([binary, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_registry(f"127.0.0.1:{port}", proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_for_registry(host: str, proc: subprocess.Popen[bytes] | None = None,
                      timeout: float = 15.0) -> None:
    """Until ``GET http://host/v2/`` answers (any status)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"registry exited with status {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"registry at {host} did not start") from None
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dockyard.distribution.bench")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--registry", help="HOST:PORT of a running registry (loopback)")
    g.add_argument("--start-docker-registry", action="store_true",
                   help="run /usr/bin/docker-registry on a free port for the measurement")
    p.add_argument("--size-mb", type=int, default=200)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args(argv)

    def measure(reg: str) -> None:
        for _ in range(args.runs):
            res = asyncio.run(bench_pull_push(reg, size_mb=args.size_mb, layers=args.layers))
            print(json.dumps(res), flush=True)

    if args.registry:
        measure(args.registry)
        return 0
    root = tempfile.mkdtemp(prefix="dockyard-bench-registry-")
    try:
        with docker_registry(root) as reg:
            measure(reg)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
