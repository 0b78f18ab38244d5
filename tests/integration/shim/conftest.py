"""The runtime tests' busybox rootfs, shared here."""

from tests.integration.runtime.conftest import busybox_rootfs  # noqa: F401
