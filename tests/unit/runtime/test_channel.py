"""Typed messages over the socketpair, with fds."""

from __future__ import annotations

import os

from dockyard.runtime.channel import Channel, ExecFailed, Failed, Ready, Start


def test_round_trip_of_every_message() -> None:
    a, b = Channel.pair()
    try:
        for msg in (
            Ready(),
            Start(),
            Failed('exec: "x": nope'),
            ExecFailed("exec /x: exec format error"),
        ):
            a.send(msg)
            got, fds = b.recv()
            assert got == msg and fds == []
    finally:
        a.close()
        b.close()


def test_fd_rides_along_and_eof_is_none() -> None:
    a, b = Channel.pair()
    r, w = os.pipe()
    try:
        a.send(Ready(), [r])
        msg, fds = b.recv()
        assert msg == Ready() and len(fds) == 1
        os.write(w, b"x")
        assert os.read(fds[0], 1) == b"x"
        os.close(fds[0])
        a.close()
        assert b.recv() == (None, [])
    finally:
        os.close(r)
        os.close(w)
        b.close()


def test_both_ends_are_close_on_exec() -> None:
    a, b = Channel.pair()
    try:
        assert not os.get_inheritable(a.fileno()) and not os.get_inheritable(b.fileno())
    finally:
        a.close()
        b.close()


def test_plan_and_job_carry_their_payload() -> None:
    from pathlib import Path

    from dockyard.oci.runtime_spec import default_spec
    from dockyard.runtime.channel import Job, Plan
    from dockyard.runtime.plan import build_init_plan

    plan = build_init_plan(default_spec(["sh"], hostname="h"), Path("/b"), last_cap=40)
    a, b = Channel.pair()
    try:
        a.send(Plan(plan))
        got, _ = b.recv()
        assert isinstance(got, Plan) and got.plan == plan
        a.send(Job(b'{"id": "x"}'))
        got, _ = b.recv()
        assert got == Job(b'{"id": "x"}')
    finally:
        a.close()
        b.close()


def test_a_message_longer_than_a_datagram_is_refused() -> None:
    import pytest

    from dockyard.runtime.channel import MAX_MESSAGE, Job

    a, b = Channel.pair()
    try:
        with pytest.raises(ValueError, match="too long"):
            a.send(Job(b"x" * MAX_MESSAGE))
    finally:
        a.close()
        b.close()
