"""The local image store: import, names, layers unpacked into snapshots, container rootfs."""

from dockyard.image.service import (
    ContainerUse,
    DeleteRecord,
    HistoryItem,
    Image,
    ImageDeleteConflict,
    ImageService,
    PruneReport,
)

__all__ = [
    "ContainerUse",
    "DeleteRecord",
    "HistoryItem",
    "Image",
    "ImageDeleteConflict",
    "ImageService",
    "PruneReport",
]
