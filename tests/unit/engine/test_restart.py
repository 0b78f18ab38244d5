"""Restart policy decisions (engine.restart)."""

from __future__ import annotations

import pytest

from dockyard.engine.restart import (
    INITIAL_DELAY,
    MAX_DELAY,
    next_delay,
    on_daemon_start,
    should_restart,
    validate_policy,
)
from dockyard.errors import InvalidArgument


def p(name: str, n: int = 0) -> dict[str, object]:
    return validate_policy({"Name": name, "MaximumRetryCount": n})


@pytest.mark.parametrize("policy,code,stopped,count,expect", [
    (p("no"), 1, False, 0, False),
    (p("always"), 0, False, 5, True),
    (p("always"), 1, True, 0, False),          # stopped by a user
    (p("unless-stopped"), 0, False, 0, True),
    (p("on-failure"), 0, False, 0, False),     # success is not a failure
    (p("on-failure"), 2, False, 99, True),     # no limit
    (p("on-failure", 3), 2, False, 2, True),
    (p("on-failure", 3), 2, False, 3, False),  # limit reached
])
def test_should_restart(policy: dict[str, object], code: int, stopped: bool, count: int,
                        expect: bool) -> None:
    assert should_restart(policy, code, stopped, count) is expect


def test_backoff_doubles_caps_and_resets() -> None:
    d = next_delay(0, 0)
    assert d == INITIAL_DELAY
    seq = [d := next_delay(d, 0.5) for _ in range(12)]
    assert seq[0] == 2 * INITIAL_DELAY and seq[-1] == MAX_DELAY
    assert next_delay(MAX_DELAY, 11) == INITIAL_DELAY


def test_daemon_start() -> None:
    assert on_daemon_start(p("always"), True)
    assert on_daemon_start(p("unless-stopped"), False)
    assert not on_daemon_start(p("unless-stopped"), True)
    assert not on_daemon_start(p("on-failure"), False)


@pytest.mark.parametrize("bad", [{"Name": "sometimes"}, {"Name": "always", "MaximumRetryCount": 2},
                                 {"Name": "on-failure", "MaximumRetryCount": -1}])
def test_invalid_policies(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument, match="invalid restart policy"):
        validate_policy(bad)
