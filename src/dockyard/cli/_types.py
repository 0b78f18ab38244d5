"""Types for annotations only (imported under ``TYPE_CHECKING``: ``typing`` costs start-up)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["TextWriter"]


class TextWriter(Protocol):
    """Where text output goes: a ``_TextOut`` over the process's streams, or a StringIO."""

    def write(self, s: str, /) -> int: ...

    def flush(self) -> None: ...
