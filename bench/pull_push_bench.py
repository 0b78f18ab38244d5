#!/usr/bin/env python3
"""Pull and push through dockyardd, next to skopeo, over loopback, in one run.

    .venv/bin/python bench/pull_push_bench.py [--size-mb 500] [--layers 5] [--runs 1]

On one generated image (``--layers`` layers of random files, ``--size-mb`` MiB in all,
gzip-framed), it measures:

* ours, end to end through the Engine API on dockyardd's unix socket:
  - pull ``POST /images/create?fromImage=`` from dockyard-registry: manifest, config,
    layers downloaded (several at once) and verified into the content store, each layer
    unpacked into a snapshot as it arrives, the image recorded; timed until the stream
    ends;
  - push ``POST /images/{name}/push`` of that pulled image to a second, empty
    dockyard-registry (no blob there, so no mount and no "already exists");
* skopeo ↔ dockyard-registry: ``skopeo copy oci:LAYOUT docker://…`` (push) and
  ``docker://… dir:OUT`` (pull: blobs to files, nothing unpacked);
* skopeo ↔ Debian's docker-registry (distribution 2.8), the same two copies.

MB/s are 10^6 bytes of compressed image (layers + config + manifest) per second, best of
``--runs``. It prints one line per figure and the ratios ours/skopeo. Everything listens on
127.0.0.1 only; as root it re-runs itself in a network namespace of its own
(``unshare --net``, loopback only) unless ``--no-netns``. All processes it starts are
stopped by PID, and its temp dir (``--workdir``, default /var/tmp: on disk, as
/var/lib/dockyard would be) is removed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REPO = "bench/img"
FILES_PER_LAYER = 4


# -- the image ---------------------------------------------------------------------------------

class _Tee(io.RawIOBase):
    """Writes into a gzip stream, hashing the uncompressed bytes (the diff id)."""

    def __init__(self, gz: gzip.GzipFile, raw: "hashlib._Hash") -> None:
        self.gz, self.raw = gz, raw

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.raw.update(b)
        self.gz.write(b)
        return len(b)


def make_layout(root: Path, size_mb: int, nlayers: int) -> int:
    """An OCI layout, tag ``bench``: ``nlayers`` layers, each a tar of random files,
    gzip-framed (level 0: random data does not compress, and no client should spend its
    time on it). Returns the image's total bytes (layers + config + manifest)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    per_layer = (size_mb << 20) // nlayers
    layers, diff_ids, total = [], [], 0
    for i in range(nlayers):
        tmp = root / f"layer{i}.tmp"
        raw = hashlib.sha256()
        with open(tmp, "wb") as f:
            gz = gzip.GzipFile(fileobj=f, mode="wb", compresslevel=0, mtime=0)
            with tarfile.open(fileobj=_Tee(gz, raw), mode="w|") as tf:
                for j in range(FILES_PER_LAYER):
                    size = per_layer // FILES_PER_LAYER
                    ti = tarfile.TarInfo(f"layer{i}/file{j}")
                    ti.size, ti.mode, ti.mtime = size, 0o644, 1_700_000_000
                    data = os.urandom(size)
                    tf.addfile(ti, io.BytesIO(data))
            gz.close()
        comp = hashlib.sha256()
        with open(tmp, "rb") as rf:
            while chunk := rf.read(8 << 20):
                comp.update(chunk)
        d = comp.hexdigest()
        os.replace(tmp, blobs / d)
        size = (blobs / d).stat().st_size
        layers.append({"mediaType": OCI_LAYER_GZIP, "digest": "sha256:" + d, "size": size})
        diff_ids.append("sha256:" + raw.hexdigest())
        total += size

    def put(data: bytes) -> dict[str, str | int]:
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    config = put(json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Cmd": ["/bin/sh"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
    manifest_bytes = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": layers}).encode()
    manifest = put(manifest_bytes)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, **manifest,
         "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}))
    return total + int(config["size"]) + len(manifest_bytes)


# -- processes -----------------------------------------------------------------------------------

class Procs:
    """Everything started here, stopped by PID at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as f:
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop_registries(self) -> None:
        """Stop every process but the first (the daemon)."""
        rest = self.procs[1:]
        for p in rest:
            if p.poll() is None:
                p.terminate()
        for p in rest:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        del self.procs[1:]

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(host: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{host} never answered:\n{log.read_text()[-3000:]}")


def start_dockyard_registry(procs: Procs, root: Path) -> str:
    root.mkdir(parents=True)
    log = root / "registry.log"
    p = procs.start([str(VENV_BIN / "dockyard-registry"), "--listen", "127.0.0.1:0", "--root",
                     str(root / "data"), "--log-level", "warning"], log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"listening on http://(127\.0\.0\.1:\d+)", log.read_text())
        if m:
            wait_http(m.group(1), p, log)
            return m.group(1)
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"dockyard-registry did not start:\n{log.read_text()[-3000:]}")


def start_debian_registry(procs: Procs, root: Path) -> str:
    root.mkdir(parents=True)
    port = free_port()
    cfg = root / "config.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                   f"storage:\n  filesystem:\n    rootdirectory: {root}/data\n"
                   f"http:\n  addr: 127.0.0.1:{port}\n")
    log = root / "registry.log"
    p = procs.start(["/usr/bin/docker-registry", "serve", str(cfg)], log)
    wait_http(f"127.0.0.1:{port}", p, log)
    return f"127.0.0.1:{port}"


class Daemon:
    def __init__(self, procs: Procs, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True)
        self.sock = str(base / "d.sock")
        log = base / "dockyardd.log"
        self.proc = procs.start([str(VENV_BIN / "dockyardd"), "-H", f"unix://{self.sock}",
                                 "--data-root", str(base / "data"), "--exec-root",
                                 str(base / "exec"), "--cgroup-parent",
                                 f"dockyard-bench-pp-{os.getpid()}", "--log-level", "warning"],
                                log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"dockyardd exited:\n{log.read_text()[-3000:]}")
            try:
                if self.request("GET", "/_ping")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("dockyardd did not come up")

    def _conn(self) -> http.client.HTTPConnection:
        sock_path = self.sock

        class Unix(http.client.HTTPConnection):
            def connect(self) -> None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock_path)
                self.sock = s

        return Unix("localhost", timeout=600)

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        c = self._conn()
        try:
            c.request(method, path, headers={"Content-Length": "0"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stream(self, method: str, path: str) -> list[dict[str, object]]:
        """A JSON progress stream, read to its end; raises on an error message."""
        c = self._conn()
        try:
            c.request(method, path, headers={"Content-Length": "0",
                                             "X-Registry-Auth": "e30="})
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        if r.status != 200:
            raise SystemExit(f"{method} {path}: {r.status} {body[:500]!r}")
        msgs = [json.loads(x) for x in body.splitlines() if x.strip()]
        for m in msgs:
            if "error" in m or "errorDetail" in m:
                raise SystemExit(f"{method} {path}: {m}")
        return msgs


# -- measurements ----------------------------------------------------------------------------------

def skopeo(work: Path, *args: str) -> None:
    auth = work / "skopeo-auth.json"
    if not auth.exists():
        auth.write_text('{"auths":{}}')
    p = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                       env={**os.environ, "REGISTRY_AUTH_FILE": str(auth)})
    if p.returncode != 0:
        raise SystemExit(f"skopeo {' '.join(args)}: {p.stderr}")


def measure(args: argparse.Namespace, work: Path) -> dict[str, float]:
    procs = Procs()
    try:
        layout = work / "layout"
        t = time.perf_counter()
        total = make_layout(layout, args.size_mb, args.layers)
        print(f"image: {args.layers} layers, {total / 1e6:.1f} MB "
              f"(made in {time.perf_counter() - t:.1f} s)", flush=True)
        daemon = Daemon(procs, work / "daemon")
        best: dict[str, float] = {}

        @contextmanager
        def clock(name: str) -> Iterator[None]:
            t0 = time.perf_counter()
            yield
            seconds = time.perf_counter() - t0
            mbps = total / seconds / 1e6
            best[name] = max(best.get(name, 0.0), mbps)
            print(f"  {name:<42} {seconds:7.2f} s {mbps:8.1f} MB/s", flush=True)

        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}", flush=True)
            tag = f"r{run}"
            # empty registries for every run: nothing "already exists" anywhere
            src = start_dockyard_registry(procs, work / f"reg-src-{run}")
            dst = start_dockyard_registry(procs, work / f"reg-dst-{run}")
            deb = start_debian_registry(procs, work / f"reg-debian-{run}") if \
                os.access("/usr/bin/docker-registry", os.X_OK) else ""
            # skopeo fills the source of our pull (timed: skopeo push to dockyard-registry)
            with clock("skopeo push -> dockyard-registry"):
                skopeo(work, "copy", "--dest-tls-verify=false", f"oci:{layout}:bench",
                       f"docker://{src}/{REPO}:{tag}")
            out = work / f"skopeo-pull-{run}"
            with clock("skopeo pull <- dockyard-registry"):
                skopeo(work, "copy", "--src-tls-verify=false", f"docker://{src}/{REPO}:{tag}",
                       f"dir:{out}")
            shutil.rmtree(out, ignore_errors=True)
            if deb:
                with clock("skopeo push -> docker-registry"):
                    skopeo(work, "copy", "--dest-tls-verify=false", f"oci:{layout}:bench",
                           f"docker://{deb}/{REPO}:{tag}")
                with clock("skopeo pull <- docker-registry"):
                    skopeo(work, "copy", "--src-tls-verify=false",
                           f"docker://{deb}/{REPO}:{tag}", f"dir:{out}")
                shutil.rmtree(out, ignore_errors=True)

            ref = f"{src}/{REPO}"
            with clock("dockyardd pull <- dockyard-registry"):
                pulled = daemon.stream("POST", f"/images/create?fromImage={ref}&tag={tag}")
            done = sum(1 for m in pulled if m.get("status") == "Pull complete")
            assert done == args.layers, f"{done} layers unpacked: {pulled[-3:]}"
            target = f"{dst}/{REPO}-{run}"
            status, body = daemon.request("POST", f"/images/{ref}:{tag}/tag?repo={target}&tag=1")
            assert status == 201, body
            with clock("dockyardd push -> dockyard-registry"):
                pushed = daemon.stream("POST", f"/images/{target}/push?tag=1")
            assert any("aux" in m for m in pushed), pushed
            sent = sum(1 for m in pushed if m.get("status") == "Pushed")
            assert sent == args.layers, f"{sent} layers uploaded: {pushed[-3:]}"
            for name in (f"{ref}:{tag}", f"{target}:1"):
                daemon.request("DELETE", f"/images/{name}")
            procs.stop_registries()
            for d in (f"reg-src-{run}", f"reg-dst-{run}", f"reg-debian-{run}"):
                shutil.rmtree(work / d, ignore_errors=True)
        return best
    finally:
        procs.stop_all()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--workdir", default="/var/tmp")
    ap.add_argument("--no-netns", action="store_true",
                    help="do not re-run in a network namespace of its own")
    args = ap.parse_args(argv)
    if not args.no_netns and os.geteuid() == 0 and not os.environ.get("DOCKYARD_BENCH_NETNS"):
        cmd = ("ip link set lo up && exec " + " ".join(
            [sys.executable, os.path.abspath(__file__), *sys.argv[1:]]))
        env = {**os.environ, "DOCKYARD_BENCH_NETNS": "1"}
        return subprocess.call(["unshare", "--net", "--", "bash", "-c", cmd], env=env)
    if shutil.which("skopeo") is None:
        raise SystemExit("skopeo is not installed")
    work = Path(tempfile.mkdtemp(prefix="dockyard-pull-push-bench-", dir=args.workdir))
    try:
        best = measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nbest of", args.runs, "run(s), MB/s:")
    for k, v in best.items():
        print(f"  {k:<42} {v:8.1f}")

    def ratio(a: str, b: str) -> None:
        if best.get(a) and best.get(b):
            print(f"  {a} / {b}: {best[a] / best[b]:.2f}")

    print("ratios:")
    ratio("dockyardd pull <- dockyard-registry", "skopeo pull <- dockyard-registry")
    ratio("dockyardd push -> dockyard-registry", "skopeo push -> dockyard-registry")
    ratio("skopeo pull <- dockyard-registry", "skopeo pull <- docker-registry")
    ratio("skopeo push -> dockyard-registry", "skopeo push -> docker-registry")
    pull, push = best.get("dockyardd pull <- dockyard-registry", 0),  \
        best.get("dockyardd push -> dockyard-registry", 0)
    print(f"targets: pull >= 100 MB/s: {'met' if pull >= 100 else 'NOT met'} ({pull:.1f}); "
          f"push >= 60 MB/s: {'met' if push >= 60 else 'NOT met'} ({push:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
