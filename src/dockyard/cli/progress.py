"""Rendering of the JSON progress stream (pull, push, import, load), as docker's
``jsonmessage.DisplayJSONMessagesStream`` does it.

On a terminal each layer id gets its own line, rewritten in place with cursor movements
(``ESC[nA`` / ``ESC[2K`` / ``ESC[nB``) and a bar ``[=====>      ]  2.3MB/4.3MB 3s``. Elsewhere
progress updates are dropped and only state changes are printed, one per line
(``ec562eabd705: Pull complete``). An ``errorDetail`` ends the stream with that message.
"""

from __future__ import annotations

import time

from dockyard.cli.render import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    from dockyard.cli._types import TextWriter

__all__ = ["JSONMessageError", "display_stream", "go_duration", "progress_string"]


class JSONMessageError(Exception):
    """The stream reported an error; ``str()`` is the daemon's message."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String`` for whole seconds: ``0s``, ``45s``, ``1m5s``, ``2h0m3s``."""
    s = int(round(seconds))
    if s == 0:
        return "0s"
    sign = "-" if s < 0 else ""
    s = abs(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{sign}{h}h{m}m{sec}s"
    if m:
        return f"{sign}{m}m{sec}s"
    return f"{sign}{sec}s"


def progress_string(p: Mapping[str, Any], width: int, now: float | None = None) -> str:
    """``JSONProgress.String``."""
    current = int(p.get("current", 0) or 0)
    total = int(p.get("total", 0) or 0)
    units = str(p.get("units", "") or "")
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        if not units:
            return "%8s" % human_size(current)
        return f"{current} {units}"
    percentage = int(current / total * 100) // 2
    if percentage > 50:
        percentage = 50
    pb = ""
    if width > 110:
        pb = "[" + "=" * percentage + ">" + " " * max(0, 50 - percentage) + "] "
    numbers = ""
    if p.get("hidecounts"):
        pass
    elif not units:
        numbers = "%8s/%s" % (human_size(current), human_size(total))
        if current > total:
            numbers = "%8s" % human_size(current)
    else:
        numbers = f"{current}/{total} {units}"
        if current > total:
            numbers = f"{current} {units}"
    time_left = ""
    start = int(p.get("start", 0) or 0)
    if width > 50 and current > 0 and start > 0 and percentage < 50:
        now = time.time() if now is None else now
        per_entry = (now - start) / current
        time_left = " " + go_duration((total - current) * per_entry)
    return pb + numbers + time_left


def _rfc3339nano_fixed(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    lt = time.localtime(sec)
    off = lt.tm_gmtoff or 0
    if off == 0:
        tz = "Z"
    else:
        tz = ("+" if off > 0 else "-") + f"{abs(off) // 3600:02d}:{(abs(off) % 3600) // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{frac:09d}" + tz


def _display(jm: Mapping[str, Any], out: TextWriter, is_terminal: bool, width: int) -> None:
    err = jm.get("errorDetail")
    if err:
        raise JSONMessageError(str(err.get("message", "") or ""), int(err.get("code", 0) or 0))
    if jm.get("error") and not err:
        raise JSONMessageError(str(jm["error"]))
    progress = jm.get("progressDetail")
    has_progress = isinstance(progress, dict)
    stream = jm.get("stream") or ""
    endl = ""
    if is_terminal and not stream and has_progress:
        out.write("\x1b[2K\r")
        endl = "\r"
    elif isinstance(progress, dict) and progress_string(progress, width) != "":
        return  # no progress bars when not on a terminal
    if jm.get("timeNano"):
        out.write(_rfc3339nano_fixed(int(jm["timeNano"])) + " ")
    elif jm.get("time"):
        out.write(_rfc3339nano_fixed(int(jm["time"]) * 1_000_000_000) + " ")
    if jm.get("id"):
        out.write(f"{jm['id']}: ")
    if jm.get("from"):
        out.write(f"(from {jm['from']}) ")
    status = jm.get("status") or ""
    if isinstance(progress, dict) and is_terminal:
        out.write(f"{status} {progress_string(progress, width)}{endl}")
    elif jm.get("progress"):
        out.write(f"{status} {jm['progress']}{endl}")
    elif stream:
        out.write(f"{stream}{endl}")
    else:
        out.write(f"{status}{endl}\n")


def display_stream(
    messages: Iterable[Mapping[str, Any]],
    out: TextWriter,
    is_terminal: bool,
    width: int = 200,
    aux: Callable[[Any], None] | None = None,
) -> None:
    """Render every message; raises ``JSONMessageError`` for an error message."""
    ids: dict[str, int] = {}
    for jm in messages:
        if jm.get("aux") is not None:
            if aux is not None:
                aux(jm["aux"])
            continue
        diff = 0
        ident = jm.get("id") or ""
        if ident and (isinstance(jm.get("progressDetail"), dict) or jm.get("progress")):
            line = ids.get(ident)
            if line is None:
                line = len(ids)
                ids[ident] = line
                if is_terminal:
                    out.write("\n")
            diff = len(ids) - line
            if is_terminal and diff:
                out.write(f"\x1b[{diff}A")
        else:
            ids = {}
        try:
            _display(jm, out, is_terminal, width)
        finally:
            if ident and is_terminal and diff:
                out.write(f"\x1b[{diff}B")
            out.flush()
