"""Timestamps as docker writes them: RFC 3339 with nanoseconds, trailing zeros trimmed
(Go's ``time.RFC3339Nano``), always UTC with ``Z``; and the zero time docker uses for
"never" (``0001-01-01T00:00:00Z``)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

__all__ = ["ZERO_TIME", "now_ns", "parse_rfc3339", "rfc3339nano"]

ZERO_TIME = "0001-01-01T00:00:00Z"
_RE = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)$"
)


def now_ns() -> int:
    return time.time_ns()


def rfc3339nano(ns: int) -> str:
    """``2026-11-28T04:23:36.09123Z`` for a unix time in nanoseconds."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


def parse_rfc3339(s: str) -> int:
    """Unix nanoseconds of an RFC 3339 timestamp (any offset); ValueError if malformed."""
    m = _RE.match(s)
    if not m:
        raise ValueError(f"not an RFC 3339 time: {s!r}")
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    if s == ZERO_TIME or y == "0001":
        return 0
    dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), tzinfo=timezone.utc)
    ns = int(dt.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        ns -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * 1_000_000_000
    return ns
