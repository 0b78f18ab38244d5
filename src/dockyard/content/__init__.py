"""Content-addressed blob storage: the ``ContentStore`` contract and its local implementation."""

from dockyard.content.local import LocalContentStore
from dockyard.content.store import (
    ContentStore,
    Info,
    Ingester,
    Manager,
    Provider,
    Writer,
    read_blob,
    write_blob,
)

__all__ = [
    "ContentStore",
    "Info",
    "Ingester",
    "LocalContentStore",
    "Manager",
    "Provider",
    "Writer",
    "read_blob",
    "write_blob",
]
