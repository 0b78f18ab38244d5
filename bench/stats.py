"""Summaries and tables for the benchmark report: median, p10/p90, min, ratios.

Percentiles interpolate linearly between order statistics (numpy's default), so they
are defined for any number of samples; with fewer than ten samples p10/p90 are close to
min/max and say little, which is why the report prints the sample count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

__all__ = ["Summary", "Table", "percentile", "ratio", "summarize", "timed_ms"]


def percentile(xs: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of xs, linear interpolation between order statistics."""
    if not xs:
        raise ValueError("percentile of no samples")
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class Summary(NamedTuple):
    n: int
    median: float
    p10: float
    p90: float
    min: float


def summarize(xs: Sequence[float]) -> Summary:
    return Summary(len(xs), percentile(xs, 50), percentile(xs, 10), percentile(xs, 90), min(xs))


def ratio(a: float, b: float) -> str:
    """``a / b`` as ``x1.23``, or ``-`` when b is missing or zero."""
    return f"x{a / b:.2f}" if b else "-"


def timed_ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


class Table:
    """A plain text table; columns are right-aligned except the first."""

    def __init__(self, *headers: str) -> None:
        self.headers = list(headers)
        self.rows: list[list[str]] = []

    def add(self, *cells: object) -> None:
        self.rows.append([c if isinstance(c, str) else _fmt(c) for c in cells])

    def add_summary(self, name: str, xs: Sequence[float], *extra: object) -> Summary:
        s = summarize(xs)
        self.add(name, s.median, s.p10, s.p90, s.n, *extra)
        return s

    def render(self, indent: str = "  ") -> str:
        cols = len(self.headers)
        rows = [r + [""] * (cols - len(r)) for r in self.rows]
        widths = [max(len(str(x[i])) for x in [self.headers, *rows]) for i in range(cols)]
        out = []
        for r in [self.headers, *rows]:
            cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, cols)]
            out.append(indent + "  ".join(cells).rstrip())
        return "\n".join(out)


def _fmt(x: object) -> str:
    if isinstance(x, float):
        return f"{x:.1f}" if abs(x) >= 100 else f"{x:.2f}"
    return str(x)
