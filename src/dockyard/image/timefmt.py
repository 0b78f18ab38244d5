"""RFC 3339 timestamps as Go writes them (``time.RFC3339Nano``) and reads them."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

__all__ = ["ZERO_TIME", "format_rfc3339nano", "now_ns", "parse_rfc3339"]

#: Go's zero time.Time, as docker prints it
ZERO_TIME = "0001-01-01T00:00:00Z"

_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$")


def now_ns() -> int:
    return time.time_ns()


def format_rfc3339nano(ns: int) -> str:
    """UTC, trailing zeros of the fraction dropped: ``2024-01-02T03:04:05.1234Z``."""
    secs, frac = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(secs, tz=timezone.utc)
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        s += "." + f"{frac:09d}".rstrip("0")
    return s + "Z"


def parse_rfc3339(s: str) -> int:
    """Nanoseconds since the epoch; ValueError for anything else."""
    m = _RE.match(s.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 time: {s!r}")
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), tzinfo=timezone.utc)
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        dt -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    ns = int(dt.timestamp()) * 1_000_000_000
    if frac:
        ns += int(frac[:9].ljust(9, "0"))
    return ns
