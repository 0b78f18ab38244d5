"""Restart policies (``--restart``), as dockerd applies them. Pure: the engine asks these
functions and acts.

* ``no``: never restarted.
* ``always``: restarted whatever the exit status — unless it was stopped by a user
  (``stop``/``kill``/``rm -f``), until the daemon restarts or the container is started again.
* ``unless-stopped``: as ``always``, but a container stopped by a user stays stopped across
  daemon restarts too.
* ``on-failure[:N]``: restarted when the exit status is not 0, at most N times (N = 0: no limit).

Restarts back off: 100 ms, doubled at each restart in a row, at most 1 minute; a container
that ran for 10 s or more starts again from 100 ms.
"""

from __future__ import annotations

from typing import Any

from dockyard.errors import InvalidArgument

__all__ = ["INITIAL_DELAY", "MAX_DELAY", "next_delay", "on_daemon_start", "should_restart",
           "validate_policy"]

INITIAL_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0
POLICIES = ("no", "always", "unless-stopped", "on-failure")


def validate_policy(policy: dict[str, Any] | None) -> dict[str, Any]:
    """The policy with defaults; InvalidArgument with docker's wording for a bad one."""
    p = dict(policy or {})
    name = p.get("Name") or "no"
    if name not in POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    count = int(p.get("MaximumRetryCount") or 0)
    if count < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if count and name != "on-failure":
        raise InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'")
    return {"Name": name, "MaximumRetryCount": count}


def should_restart(policy: dict[str, Any], exit_code: int, manually_stopped: bool,
                   restart_count: int) -> bool:
    """Whether a container that just exited is to be started again."""
    name = policy.get("Name") or "no"
    if name == "no" or manually_stopped:
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return False


def next_delay(previous: float, ran_for: float) -> float:
    """The back-off before the next restart, given the last one and how long it ran."""
    if previous <= 0 or ran_for >= RESET_AFTER:
        return INITIAL_DELAY
    return min(previous * 2, MAX_DELAY)


def on_daemon_start(policy: dict[str, Any], manually_stopped: bool) -> bool:
    """Whether a container that is not running when the daemon starts is started then
    (dockerd does this for ``always``, and for ``unless-stopped`` not stopped by a user)."""
    name = policy.get("Name") or "no"
    return name == "always" or (name == "unless-stopped" and not manually_stopped)
