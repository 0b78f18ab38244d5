"""Layered filesystem snapshots handed out as mounts (containerd's snapshotter model)."""

from dockyard.snapshot.naive import NaiveSnapshotter
from dockyard.snapshot.overlay import OverlaySnapshotter, default_overlay_options, overlay_supported
from dockyard.snapshot.snapshotter import Info, Kind, Snapshotter, Usage

__all__ = [
    "Info",
    "Kind",
    "NaiveSnapshotter",
    "OverlaySnapshotter",
    "Snapshotter",
    "Usage",
    "default_overlay_options",
    "overlay_supported",
]
