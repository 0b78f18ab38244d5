"""Registry storage: the driver Protocol, its implementations, the layout and the logic on top."""

from .driver import FileInfo, FileWriter, PathNotFound, StorageDriver, StorageError
from .filesystem import FilesystemDriver
from .inmemory import InMemoryDriver
from .repo import Registry, Repository

__all__ = [
    "FileInfo", "FileWriter", "FilesystemDriver", "InMemoryDriver", "PathNotFound", "Registry",
    "Repository", "StorageDriver", "StorageError",
]
