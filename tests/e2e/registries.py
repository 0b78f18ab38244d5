"""Registries on 127.0.0.1 for the image e2e tests: our ``dockyard-registry`` (plain, or
htpasswd Basic) and Debian's ``docker-registry`` (distribution 2.8) as an independent peer.
Each listens on a port of its own, keeps its storage in a temp dir, and is stopped by PID
(and its dir removed) when the context ends."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dockyard.distribution.bench import docker_registry, wait_for_registry

DOCKYARD_REGISTRY = str(Path(sys.executable).parent / "dockyard-registry")
DOCKER_REGISTRY = "/usr/bin/docker-registry"
USER, PASSWORD = "tester", "s3cret-pass"


@dataclass
class Registry:
    kind: str
    host: str                  # 127.0.0.1:PORT
    auth: bool = False
    proc: subprocess.Popen[bytes] | None = None


def _htpasswd(dir: Path) -> str:
    out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True,
                         capture_output=True, text=True).stdout
    path = dir / "htpasswd"
    path.write_text(out)
    return str(path)


@contextmanager
def dockyard_registry(*, auth: bool = False, token: bool = False,
                      root: Path | None = None, port: int = 0) -> Iterator[Registry]:
    """``auth``: htpasswd Basic; with ``token`` too, Docker Hub's Bearer token flow (the
    registry's own token endpoint). ``root``/``port``: to restart one on the same storage
    and address (the caller then owns ``root``)."""
    own_root = root is None
    root = root or Path(tempfile.mkdtemp(prefix="dockyard-e2e-registry-", dir="/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    cmd = [DOCKYARD_REGISTRY, "--listen", f"127.0.0.1:{port}", "--root", str(root / "data"),
           "--log-level", "warning"]
    if auth:
        cmd += ["--htpasswd", _htpasswd(root)]
        if token:
            cmd += ["--auth", "token"]
    log = open(root / "registry.log", "w+b")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    reg = Registry("dockyard-registry", "", auth)
    reg.proc = proc
    try:
        host = ""
        deadline = time.monotonic() + 20
        while not host:
            log.seek(0)
            m = re.search(rb"listening on https?://(127\.0\.0\.1:[0-9]+)", log.read())
            if m:
                host = m.group(1).decode()
            elif proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"dockyard-registry did not start: {log.read()[-2000:]!r}")
            else:
                time.sleep(0.05)
        wait_for_registry(host, proc)
        reg.host = host
        yield reg
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if own_root:
            shutil.rmtree(root, ignore_errors=True)


@contextmanager
def debian_registry(*, auth: bool = False) -> Iterator[Registry]:
    root = Path(tempfile.mkdtemp(prefix="dockyard-e2e-docker-registry-", dir="/tmp"))
    try:
        hp = _htpasswd(root) if auth else ""
        with docker_registry(str(root), htpasswd=hp) as host:
            yield Registry("docker-registry", host, auth)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def have_debian_registry() -> bool:
    return os.access(DOCKER_REGISTRY, os.X_OK)
