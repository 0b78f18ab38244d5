"""Fixtures for the CLI tests: a fake daemon on a unix socket and an in-process CLI runner."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from tests.unit.cli.fakedaemon import FakeDaemon


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def outb(self) -> bytes:
        return self.out.encode()


class RunCli(Protocol):
    def __call__(self, *argv: str, stdin: bytes = b"",
                 env: dict[str, str] | None = None) -> Result: ...


@pytest.fixture
def sockdir() -> Iterator[str]:
    # AF_UNIX paths are limited to 108 bytes: tmp_path can be longer
    d = tempfile.mkdtemp(prefix="dyc", dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon(sockdir: str) -> Iterator[FakeDaemon]:
    d = FakeDaemon(os.path.join(sockdir, "d.sock")).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def cfgdir(tmp_path: Path) -> str:
    d = os.path.join(str(tmp_path), "dockercfg")
    os.makedirs(d)
    return d


@pytest.fixture
def run_cli(daemon: FakeDaemon, cfgdir: str) -> RunCli:
    """``run_cli(*argv, stdin=b"")`` → Result(rc, out, err), against the fake daemon."""
    from dockyard.cli.app import Streams
    from dockyard.cli.main import run

    def _run(*argv: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> Result:
        out, err = io.BytesIO(), io.BytesIO()
        e = {"DOCKER_HOST": daemon.host, "DOCKER_CONFIG": cfgdir, "HOME": cfgdir,
             "PATH": os.environ.get("PATH", "")}
        e.update(env or {})
        rc = run(list(argv), Streams(io.BytesIO(stdin), out, err), env=e)
        return Result(rc, out.getvalue().decode(), err.getvalue().decode())

    return _run
