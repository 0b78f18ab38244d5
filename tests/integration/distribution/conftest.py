"""Real registries on loopback for the client's integration tests: Debian's
``docker-registry`` (distribution 2.8) and our ``dockyard-registry``, each started on a free
127.0.0.1 port with storage in the test's tmp_path, and stopped (by pid) afterwards."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard.distribution.bench import docker_registry, wait_for_registry

DOCKER_REGISTRY = "/usr/bin/docker-registry"
DOCKYARD_REGISTRY = str(Path(sys.executable).parent / "dockyard-registry")
USER, PASSWORD = "tester", "s3cret-pass"


@dataclass
class Registry:
    kind: str
    host: str
    auth: str            # none | basic | token


def htpasswd_file(dir: Path) -> str:
    out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True,
                         capture_output=True, text=True).stdout
    path = dir / "htpasswd"
    path.write_text(out)
    return str(path)


@contextmanager
def dockyard_registry(root: Path, *, auth: str = "none", htpasswd: str = "") -> Iterator[str]:
    root.mkdir(parents=True, exist_ok=True)
    cmd = [DOCKYARD_REGISTRY, "--listen", "127.0.0.1:0", "--root", str(root / "data"),
           "--log-level", "warning"]
    if htpasswd:
        cmd += ["--htpasswd", htpasswd]
    if auth != "none":
        cmd += ["--auth", auth]
    log = open(root / "registry.log", "w+b")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        host = ""
        deadline = time.monotonic() + 15
        while not host:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"dockyard-registry exited: {log.read().decode()[-2000:]}")
            log.seek(0)
            m = re.search(rb"listening on https?://([0-9.]+:[0-9]+)", log.read())
            if m:
                host = m.group(1).decode()
            elif time.monotonic() > deadline:
                raise RuntimeError("dockyard-registry did not start")
            else:
                time.sleep(0.05)
        wait_for_registry(host, proc)
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _dockyard_registry_works() -> bool:
    if not os.access(DOCKYARD_REGISTRY, os.X_OK):
        return False
    try:
        return subprocess.run([DOCKYARD_REGISTRY, "--help"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


KINDS = ["docker-registry", "dockyard-registry"]


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    """``start_registry(kind, auth="none"|"basic"|"token")`` → a running registry."""
    with ExitStack() as stack:
        n = [0]

        def start(kind: str, auth: str = "none") -> Registry:
            n[0] += 1
            root = tmp_path / f"{kind}-{n[0]}"
            root.mkdir()
            hp = htpasswd_file(root) if auth != "none" else ""
            if kind == "docker-registry":
                if not os.access(DOCKER_REGISTRY, os.X_OK):
                    pytest.skip("Debian's docker-registry is not installed")
                if auth == "token":
                    pytest.skip("docker-registry's token auth needs an external token server")
                host = stack.enter_context(docker_registry(str(root), htpasswd=hp))
            else:
                if not _dockyard_registry_works():
                    pytest.skip("dockyard-registry is not runnable yet")
                host = stack.enter_context(dockyard_registry(root, auth=auth, htpasswd=hp))
            return Registry(kind, host, auth)

        yield start


@pytest.fixture
def skopeo() -> str:
    path = shutil.which("skopeo")
    if not path:
        pytest.skip("skopeo is not installed")
    return path
