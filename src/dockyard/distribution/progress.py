"""Progress events in the shape of docker's JSON messages (moby ``pkg/jsonmessage``).

Pull and push report through a ``progress(event: dict)`` callback; the daemon writes each
event as one JSON line of the ``/images/create`` or ``/images/{name}/push`` stream. Key order
follows dockerd's output::

    {"status":"Pulling fs layer","progressDetail":{},"id":"257832c98051"}
    {"status":"Downloading","progressDetail":{"current":68608,"total":4326768},
     "progress":"[>                                                  ]  68.61kB/4.327MB",
     "id":"257832c98051"}
    {"status":"Digest: sha256:..."}

``progress`` is the bar dockerd renders on the daemon side: 50 cells, ``=`` per 2 %, a ``>``
head, then the sizes in decimal units with 4 significant digits (``units.HumanSize``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "ProgressFn",
    "human_size",
    "layer_progress",
    "layer_status",
    "progress_bar",
    "short_id",
    "status",
]

ProgressFn = Callable[[dict[str, Any]], None]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(n: float) -> str:
    """Docker's ``units.HumanSize``: ``68608`` → ``68.61kB``, ``4326768`` → ``4.327MB``."""
    size = float(n)
    i = 0
    while size >= 1000 and i < len(_UNITS) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{_UNITS[i]}"


def progress_bar(current: int, total: int) -> str:
    """The ``progress`` string of a JSON message (dockerd renders it 200 columns wide)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    cells = min(int(current / total * 100) // 2, 50)
    bar = "[" + "=" * cells + ">" + " " * (50 - cells) + "] "
    if current > total:
        return bar + f"{human_size(current):>8}"
    return bar + f"{human_size(current):>8}/{human_size(total)}"


def short_id(digest: str) -> str:
    """The 12-hex id docker shows for a layer: ``sha256:257832c98051...`` → ``257832c98051``."""
    return digest.split(":", 1)[-1][:12]


def status(message: str, id: str | None = None) -> dict[str, Any]:
    """``{"status": message[, "id": id]}``: a line without a progress bar."""
    ev: dict[str, Any] = {"status": message}
    if id is not None:
        ev["id"] = id
    return ev


def layer_status(message: str, id: str) -> dict[str, Any]:
    """``{"status": ..., "progressDetail": {}, "id": ...}``: a per-layer state change."""
    return {"status": message, "progressDetail": {}, "id": id}


def layer_progress(message: str, id: str, current: int, total: int) -> dict[str, Any]:
    """``Downloading``/``Pushing``/``Extracting`` with byte counts and the bar."""
    return {
        "status": message,
        "progressDetail": {"current": current, "total": total},
        "progress": progress_bar(current, total),
        "id": id,
    }
