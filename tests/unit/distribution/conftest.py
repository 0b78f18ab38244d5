"""Fixtures for the registry client's unit tests: a content store in tmp_path and a helper
to run a coroutine. Every server these tests start is an in-process aiohttp server bound
to 127.0.0.1 and closed by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dockyard.content.local import LocalContentStore

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def store(tmp_path: Path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "content")


def blob_bytes(store: LocalContentStore, digest: str) -> bytes:
    with store.reader(digest) as f:
        return f.read()


def ingest_empty(store: LocalContentStore) -> bool:
    return not any((store.root / "ingest").iterdir())
