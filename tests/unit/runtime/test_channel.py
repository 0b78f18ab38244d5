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
