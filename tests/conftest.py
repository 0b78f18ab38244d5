"""Test tiers and gates (STYLE.md §3.11).

* ``tests/unit``: no root, no kernel features, no network; runs anywhere in seconds.
* ``tests/conformance``: one suite per Protocol, parametrised over implementations.
* ``tests/integration``: the real kernel (namespaces, overlayfs, cgroups) as root.
* ``tests/e2e``: a real ``dockyardd`` on temp dirs, driven by ``dockyard``, the docker CLI
  and docker-py.

Tests marked ``root`` are skipped, with the reason, when not running as root; CI runs as
root, so there they all run. ``DOCKYARD_REQUIRE_ROOT=1`` (set by ``make test``) turns such a
skip into a failure, so a CI run cannot go green by skipping the kernel tests.

At the end of the session a leak check fails the run if a mount, a process, a cgroup, a
network namespace or a network link created by the tests is still there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import leakcheck  # noqa: E402
from requires import require  # noqa: E402

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path or "/e2e/" in path:
            item.add_marker(pytest.mark.root)
        if "/e2e/" in path:
            item.add_marker(pytest.mark.e2e)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root"):
        require(IS_ROOT, "needs root (namespaces, mounts, cgroups)")


@pytest.fixture(scope="session", autouse=True)
def _leak_check() -> Iterator[None]:
    leakcheck.mark_session()
    before = leakcheck.snapshot()
    yield
    found = leakcheck.leaks(before)
    if found:
        pytest.fail("the tests left these behind:\n  " + "\n  ".join(found), pytrace=False)
