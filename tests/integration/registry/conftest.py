"""The real ``dockyard-registry`` process on 127.0.0.1, driven by Debian's skopeo.

Every server binds 127.0.0.1 on a port it picks itself (``--listen 127.0.0.1:0``; the port is
read from its ``listening on`` line) and is stopped by PID when the test ends. skopeo gets an
empty auth file of its own (``REGISTRY_AUTH_FILE``), so no stored credential takes part.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")


class RegistryProcess:
    """``python -m dockyard.registry`` with the given arguments, on a free loopback port."""

    def __init__(self, root: Path, log: Path, *args: str) -> None:
        self.root, self.log, self.args = root, log, list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.scheme = "http"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> RegistryProcess:
        assert self.proc is None
        port = self.port if port is None else port
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dockyard.registry", "--listen", f"127.0.0.1:{port}",
                 "--root", str(self.root), "--log-level", "warning", *self.args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=REPO)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            m = re.search(r"listening on (https?)://127\.0\.0\.1:(\d+)", text)
            if m:
                self.scheme, self.port = m.group(1), int(m.group(2))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise AssertionError(f"dockyard-registry did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[type]:
    started: list[RegistryProcess] = []

    def make(*args: str, root: Path | None = None) -> RegistryProcess:
        n = len(started)
        rp = RegistryProcess(root or tmp_path / f"registry{n}", tmp_path / f"registry{n}.log",
                             *args)
        started.append(rp)
        return rp.start()

    yield make  # type: ignore[misc]
    for rp in started:
        rp.stop()


class Skopeo:
    def __init__(self, tmp: Path) -> None:
        self.env = {**os.environ, "REGISTRY_AUTH_FILE": str(tmp / "auth.json"),
                    "HOME": str(tmp)}
        (tmp / "auth.json").write_text("{}")

    def run(self, *args: str, ok: bool = True, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
        cp = subprocess.run(["skopeo", *args], capture_output=True, text=True, env=self.env,
                            timeout=timeout, stdin=subprocess.DEVNULL)
        if ok:
            assert cp.returncode == 0, f"skopeo {' '.join(args)}:\n{cp.stdout}\n{cp.stderr}"
        return cp

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["skopeo", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=self.env,
                                stdin=subprocess.DEVNULL)


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    d = tmp_path / "skopeo-home"
    d.mkdir()
    return Skopeo(d)


@pytest.fixture(scope="session")
def busybox_tar() -> Path:
    env = os.environ.get("DOCKYARD_BUSYBOX_TAR")
    path = Path(env) if env else REPO / "build" / "busybox-rootfs.tar"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["/usr/bin/python3", str(REPO / "scripts" / "mkbusybox.py"), "-o",
                        str(path)], check=True)
    return path


@pytest.fixture(autouse=True)
def _drop_bulk_data(tmp_path: Path) -> Iterator[None]:
    """These tests write hundreds of MB under tmp_path: keep only the registries' logs."""
    yield
    for p in tmp_path.iterdir():
        if p.suffix == ".log":
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
