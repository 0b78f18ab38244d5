"""``require``: a test's precondition that only a broken install can miss.

Where it is missing, the test is skipped in a developer's tree, but fails under
``DOCKYARD_REQUIRE_ROOT=1`` (``make test``, CI), which installs everything it needs: there a
skip would only hide the missing install step."""

from __future__ import annotations

import os

import pytest

__all__ = ["REQUIRE_ROOT", "require"]

REQUIRE_ROOT = os.environ.get("DOCKYARD_REQUIRE_ROOT") == "1"


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if REQUIRE_ROOT:
        pytest.fail(f"{reason}, and DOCKYARD_REQUIRE_ROOT=1 forbids skipping")
    pytest.skip(reason)
