#!/usr/bin/env python3
"""dockyard-registry against Debian's docker-registry (distribution 2.8), over loopback.

For each registry, on the same generated image (several random layers, ~500 MB in all):

* push: ``skopeo copy oci:LAYOUT docker://127.0.0.1:PORT/bench/img:1``   (MB/s)
* pull: ``skopeo copy docker://... dir:OUT``                              (MB/s)
* blob GET: every layer fetched with one keep-alive HTTP connection      (MB/s, best of 3)
* blob upload: every layer pushed as docker does (POST, one streamed PATCH, PUT ?digest=)
  with one keep-alive connection                                         (MB/s, best of 2)
* manifest GET: 50 concurrent keep-alive clients (ApacheBench ``ab -k -c 50``, or an aiohttp
  client when ``ab`` is missing) for a fixed number of requests           (req/s)

Both servers listen on 127.0.0.1 only; everything lives in a temp dir under /tmp that is
removed at the end, and both servers are stopped by PID.

    .venv/bin/python bench/registry_bench.py [--size-mb 500] [--layers 5] [--requests 20000]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST,
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])
REPO = "bench/img"


# --- the image


def make_layout(root: Path, size_mb: int, nlayers: int) -> tuple[list[tuple[str, int]], int]:
    """An OCI layout of ``nlayers`` random layers, gzip-framed without compression (so no
    client recompresses them). Returns the layers' (digest, size) and the total bytes."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data: bytes) -> tuple[str, int]:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return "sha256:" + d, len(data)

    layers, diff_ids = [], []
    per = size_mb * (1 << 20) // nlayers
    for i in range(nlayers):
        tmp = root / f"layer{i}.tmp"
        raw, comp = hashlib.sha256(), hashlib.sha256()
        with open(tmp, "wb") as f:
            gz = gzip.GzipFile(fileobj=f, mode="wb", compresslevel=0, mtime=0)
            left = per
            while left:
                chunk = os.urandom(min(left, 8 << 20))
                raw.update(chunk)
                gz.write(chunk)
                left -= len(chunk)
            gz.close()
        with open(tmp, "rb") as f:
            while chunk := f.read(8 << 20):
                comp.update(chunk)
        d = comp.hexdigest()
        os.replace(tmp, blobs / d)
        layers.append(("sha256:" + d, (blobs / d).stat().st_size))
        diff_ids.append("sha256:" + raw.hexdigest())
    config = put(json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config[0], "size": config[1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": d, "size": s} for d, s in layers]}).encode()
    md, ms = put(manifest)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": md, "size": ms,
         "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}))
    return layers, sum(s for _, s in layers) + config[1] + ms


# --- the servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"server on port {port} never answered:\n{log.read_text()}")


def start_dockyard(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    log = tmp / "dockyard.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry", "--listen",
                                 "127.0.0.1:0", "--root", str(tmp / "dockyard-root"),
                                 "--log-level", "warning"], stdout=f, stderr=f,
                                stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
        if m:
            port = int(m.group(1))
            wait_ready(port, proc, log)
            return proc, port
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"dockyard-registry did not start:\n{log.read_text()}")


def start_distribution(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cfg = tmp / "distribution.yml"
    cfg.write_text(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {tmp / "distribution-root"}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    log = tmp / "distribution.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(cfg)], stdout=f,
                                stderr=f, stdin=subprocess.DEVNULL)
    wait_ready(port, proc, log)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the measurements


def skopeo(env: dict[str, str], *args: str) -> float:
    t = time.perf_counter()
    subprocess.run(["skopeo", *args], check=True, env=env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def blob_get(port: int, layers: list[tuple[str, int]]) -> float:
    """Seconds to GET every layer over one keep-alive connection (body read and dropped)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    buf = memoryview(bytearray(4 << 20))
    t = time.perf_counter()
    for digest, size in layers:
        conn.request("GET", f"/v2/{REPO}/blobs/{digest}")
        r = conn.getresponse()
        assert r.status == 200, r.status
        got = 0
        while n := r.readinto(buf):
            got += n
        assert got == size, (got, size)
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def blob_upload(port: int, layout: Path, layers: list[tuple[str, int]], repo: str) -> float:
    """Seconds to upload every layer as docker does: POST, one streamed PATCH, PUT ?digest=."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, blocksize=1 << 20)
    t = time.perf_counter()
    for digest, size in layers:
        conn.request("POST", f"/v2/{repo}/blobs/uploads/", body=b"")
        r = conn.getresponse()
        r.read()
        assert r.status == 202, r.status
        loc = r.headers["Location"]
        with open(layout / "blobs" / "sha256" / digest[7:], "rb") as f:
            conn.request("PATCH", loc, body=f, headers={
                "Content-Length": str(size), "Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            r.read()
        assert r.status == 202, r.status
        loc = r.headers["Location"]
        sep = "&" if "?" in loc else "?"
        conn.request("PUT", f"{loc}{sep}digest={digest}", body=b"")
        r = conn.getresponse()
        r.read()
        assert r.status == 201, r.status
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def manifest_rps(port: int, requests: int, concurrency: int) -> float:
    url = f"http://127.0.0.1:{port}/v2/{REPO}/manifests/1"
    if shutil.which("ab"):
        out = subprocess.run(["ab", "-q", "-k", "-n", str(requests), "-c", str(concurrency),
                              "-H", f"Accept: {ACCEPT}", url], check=True, capture_output=True,
                             text=True, stdin=subprocess.DEVNULL).stdout
        failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
        non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
        if failed or non2xx:
            raise SystemExit(f"manifest GETs failed:\n{out}")
        return float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return _manifest_rps_aiohttp(url, requests, concurrency)


def _manifest_rps_aiohttp(url: str, requests: int, concurrency: int) -> float:
    import asyncio

    import aiohttp

    async def run() -> float:
        left = requests
        conn = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=conn) as s:
            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    async with s.get(url, headers={"Accept": ACCEPT}) as r:
                        assert r.status == 200
                        await r.read()
            t = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return requests / (time.perf_counter() - t)

    return asyncio.run(run())


def bench_one(name: str, port: int, layout: Path, layers: list[tuple[str, int]], total: int,
              tmp: Path, env: dict[str, str], requests: int, concurrency: int
              ) -> dict[str, float]:
    mb = total / 1e6
    ref = f"docker://127.0.0.1:{port}/{REPO}:1"
    push = skopeo(env, "copy", "--dest-tls-verify=false", f"oci:{layout}:bench", ref)
    out = tmp / f"pull-{name}"
    pull = skopeo(env, "copy", "--src-tls-verify=false", ref, f"dir:{out}")
    shutil.rmtree(out)
    layer_mb = sum(s for _, s in layers) / 1e6
    get = min(blob_get(port, layers) for _ in range(3))
    upload = min(blob_upload(port, layout, layers, f"bench/upload{i}") for i in range(2))
    manifest_rps(port, min(requests, 2000), concurrency)  # warm-up
    rps = manifest_rps(port, requests, concurrency)
    res = {"skopeo push MB/s": mb / push, "skopeo pull MB/s": mb / pull,
           "blob GET MB/s": layer_mb / get, "blob upload MB/s": layer_mb / upload,
           f"manifest GET req/s (c={concurrency})": rps}
    print(f"  {name}: " + ", ".join(f"{k} {v:,.0f}" for k, v in res.items()), flush=True)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=500)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args()
    for tool in ("skopeo", "/usr/bin/docker-registry"):
        if not shutil.which(tool):
            raise SystemExit(f"needs {tool}")
    tmp = Path(tempfile.mkdtemp(prefix="registry-bench-", dir="/tmp"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(tmp / "auth.json")}
        (tmp / "auth.json").write_text("{}")
        print(f"generating {args.size_mb} MB in {args.layers} random layers under {tmp}",
              flush=True)
        layers, total = make_layout(tmp / "layout", args.size_mb, args.layers)
        results = {}
        for name, start in (("dockyard-registry", start_dockyard),
                            ("docker-registry", start_distribution)):
            proc, port = start(tmp)
            procs.append(proc)
            results[name] = bench_one(name, port, tmp / "layout", layers, total, tmp, env,
                                      args.requests, args.concurrency)
            stop(proc)
        ours, theirs = results["dockyard-registry"], results["docker-registry"]
        print(f"\n{'':34} {'dockyard':>12} {'distribution':>12} {'ratio':>7}")
        for k in ours:
            print(f"{k:34} {ours[k]:12,.0f} {theirs[k]:12,.0f} {ours[k] / theirs[k]:7.2f}")
        print(f"\nimage: {total / 1e6:.0f} MB in {len(layers)} layers; "
              f"{os.cpu_count()} CPUs; ratio > 1 means dockyard-registry is faster")
        return 0
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
