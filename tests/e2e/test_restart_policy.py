"""``--restart`` policies: always, on-failure[:N], unless-stopped, and a user's stop."""

from __future__ import annotations

import json
import signal
import time

from tests.e2e.conftest import Daemon


def _info(d: Daemon, ref: str) -> dict:  # type: ignore[type-arg]
    return json.loads(d.dockyard("inspect", ref).stdout)[0]


def _wait_for(cond, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_on_failure_with_a_limit(daemon: Daemon) -> None:
    d = daemon
    cid = d.dockyard("run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c",
                     "echo run; exit 3", check=True).stdout.strip()
    try:
        _wait_for(lambda: d.dockyard("logs", cid).stdout.count("run") == 3)
        time.sleep(1.0)                                        # no fourth run
        info = _info(d, cid)
        assert info["RestartCount"] == 2 and info["State"]["ExitCode"] == 3
        assert d.dockyard("logs", cid).stdout == "run\nrun\nrun\n"
    finally:
        d.dockyard("rm", "-f", cid)


def test_on_failure_does_not_restart_a_success(daemon: Daemon) -> None:
    d = daemon
    cid = d.dockyard("run", "-d", "--restart", "on-failure", "busybox", "true", check=True).stdout.strip()
    try:
        assert d.dockyard("wait", cid).stdout == "0\n"
        time.sleep(0.5)
        assert _info(d, cid)["RestartCount"] == 0
    finally:
        d.dockyard("rm", "-f", cid)


def test_always_until_a_user_stops_it(daemon: Daemon) -> None:
    d = daemon
    cid = d.dockyard("run", "-d", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2",
                     check=True).stdout.strip()
    try:
        _wait_for(lambda: _info(d, cid)["RestartCount"] >= 2)
        assert d.dockyard("stop", "-t", "1", cid).returncode == 0
        count = _info(d, cid)["RestartCount"]
        time.sleep(1.0)
        info = _info(d, cid)
        assert not info["State"]["Running"] and info["RestartCount"] == count
        assert d.dockyard("start", cid).returncode == 0         # a user's start: policy again
        assert _info(d, cid)["RestartCount"] == 0
    finally:
        d.dockyard("rm", "-f", cid)


def test_policy_at_daemon_start(fresh_daemon: Daemon) -> None:
    d = fresh_daemon
    always = d.dockyard("run", "-d", "--restart", "always", "busybox", "sleep", "100",
                        check=True).stdout.strip()
    unless = d.dockyard("run", "-d", "--restart", "unless-stopped", "busybox", "sleep", "100",
                        check=True).stdout.strip()
    assert d.dockyard("stop", "-t", "0", always, unless).returncode == 0
    d.stop(signal.SIGTERM)
    d.start()
    assert _info(d, always)["State"]["Running"]                 # always: back at daemon start
    assert not _info(d, unless)["State"]["Running"]             # stopped by a user: stays down
    d.dockyard("rm", "-f", always, unless)


def test_bad_policies(daemon: Daemon) -> None:
    p = daemon.dockyard("run", "--restart", "sometimes", "busybox", "true")
    assert p.returncode == 125 and "invalid restart policy" in p.stderr
    p = daemon.dockyard("run", "--rm", "--restart", "always", "busybox", "true")
    assert p.returncode == 125 and "cannot specify both --restart and --rm" in p.stderr
    # the daemon refuses them too, whatever the client checked
    for hc, needle in [({"RestartPolicy": {"Name": "sometimes"}}, b"invalid restart policy"),
                       ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}}, b"AutoRemove")]:
        status, body = daemon.request("POST", "/v1.47/containers/create",
                                      {"Image": "busybox", "Cmd": ["true"], "HostConfig": hc})
        assert status == 400 and needle in body
