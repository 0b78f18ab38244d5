"""RFC 3339 as Go formats and parses it."""

from __future__ import annotations

import pytest

from dockyard.image.timefmt import format_rfc3339nano, parse_rfc3339


def test_format_trims_the_fraction() -> None:
    assert format_rfc3339nano(0) == "1970-01-01T00:00:00Z"
    assert format_rfc3339nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert format_rfc3339nano(1_700_000_000_000_000_001) == "2023-11-14T22:13:20.000000001Z"


def test_parse_round_trip_and_offsets() -> None:
    ns = 1_700_000_000_123_456_789
    assert parse_rfc3339(format_rfc3339nano(ns)) == ns
    assert parse_rfc3339("2023-11-14T23:13:20+01:00") == 1_700_000_000 * 10**9
    assert parse_rfc3339("2023-11-14T22:13:20.5z") == 1_700_000_000_500_000_000
    with pytest.raises(ValueError):
        parse_rfc3339("yesterday")
