from __future__ import annotations

from pathlib import Path

import pytest

from .tarhelp import busybox_tar_path


@pytest.fixture(scope="session")
def busybox_tar() -> Path:
    p = busybox_tar_path()
    if p is None:
        pytest.skip("no busybox rootfs tar and no busybox-static to build one")
    return p
