"""Handler tests run the registry in-process (aiohttp's ``TestServer``/``TestClient``).

``async def`` tests are run here with ``asyncio.run`` (no plugin needed). The ``reg`` fixture
is parametrised over both storage drivers, so every API test runs on the filesystem driver
(blobs sent with sendfile) and on the in-memory one (blobs streamed).
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest

from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.storage.inmemory import InMemoryDriver
from tests.unit.registry.util import Harness


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        kwargs = {a: pyfuncitem.funcargs[a] for a in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**kwargs))
        return True
    return None


@pytest.fixture(params=["filesystem", "inmemory"])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if request.param == "filesystem":
        return Harness(FilesystemDriver(tmp_path / "root"))
    return Harness(InMemoryDriver())


@pytest.fixture
def fsreg(tmp_path: Path) -> Harness:
    return Harness(FilesystemDriver(tmp_path / "root"))
