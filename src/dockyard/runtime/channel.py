"""Typed messages between the runtime (parent) and the container process (child).

One ``SOCK_SEQPACKET`` socketpair per child: each ``send`` is one datagram, so no
framing is needed, and file descriptors ride along with SCM_RIGHTS (the pty master).
Both ends are close-on-exec: when the child execve's, its end closes and the parent reads
end-of-file, which is how the parent learns that the exec happened.

Conversation of a container init (``create_init`` / ``InitProcess.start``)::

    parent → child    Plan(plan) [stdio fds]    only to a spare init (``SpareInit``), forked
                                                before its container was known: its whole
                                                plan, pickled (the parent's own process)
    parent → child    Job(json) [stdio fds]     or, from the native shim, the container's
                                                shim config (JSON): the spare init plans
                                                and makes its cgroup itself, and no
                                                Proceed follows
    parent → child    Proceed                   the cgroup is made and the child is in it:
                                                it may unshare its cgroup namespace
    child  → parent   Ready [pty master fd]     every set-up step done, args[0] resolved
    child  → parent   Failed(message)           a set-up step failed; the child exits
    parent → child    Start                     go: execve the process
    child  → parent   ExecFailed(message)       execve itself failed
    (EOF)                                        execve succeeded

An exec'd process (``exec_process``) sends Ready and execs without waiting for Start.
"""

from __future__ import annotations

import pickle
import socket
from typing import Any

__all__ = ["MAX_MESSAGE", "Channel", "ExecFailed", "Failed", "Job", "Message", "Plan",
           "Proceed", "Ready", "Start"]


class _Message:
    """A value object: equal when of the same class with the same fields."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, f) for f in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Message) or type(self) is not type(other):
            return False
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(v) for v in self._fields())})"


class _Text(_Message):
    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class Ready(_Message):
    """The child finished its set-up (carries the pty master fd when there is a terminal)."""

    __slots__ = ()


class Proceed(_Message):
    """The parent created the cgroup and moved the child into it."""

    __slots__ = ()


class Start(_Message):
    """The parent releases the child to execve."""

    __slots__ = ()


class Failed(_Text):
    """A set-up step failed; ``message`` follows runc's wording."""

    __slots__ = ()


class ExecFailed(_Text):
    """execve failed after Start."""

    __slots__ = ()


class Plan(_Message):
    """The plan of a spare init (``dockyard.runtime.plan.InitPlan``), pickled on the wire:
    both ends are dockyard's own processes."""

    __slots__ = ("plan",)

    def __init__(self, plan: Any) -> None:
        self.plan = plan


class Job(_Message):
    """A spare init's job from the native shim (``runtime/native/shim.c`` sends it): the
    shim config (``runtime.shim.ShimConfig``) as JSON bytes."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


Message = Ready | Start | Failed | ExecFailed | Proceed | Plan | Job

_TAGS: dict[type, int] = {Ready: 1, Start: 2, Failed: 3, ExecFailed: 4, Proceed: 5, Plan: 6,
                          Job: 7}
MAX_MESSAGE = 65536  # one datagram: a longer message cannot be sent


class Channel:
    """One end of the socketpair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple["Channel", "Channel"]:
        """(parent end, child end), both close-on-exec."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, msg: Message, fds: list[int] | tuple[int, ...] = ()) -> None:
        """Send one message, with ``fds`` as SCM_RIGHTS."""
        if isinstance(msg, Plan):
            payload = pickle.dumps(msg.plan)
        elif isinstance(msg, Job):
            payload = msg.data
        else:
            payload = getattr(msg, "message", "").encode()
        data = bytes([_TAGS[type(msg)]]) + payload
        if len(data) > MAX_MESSAGE:
            raise ValueError(f"a {type(msg).__name__} message of {len(data)} bytes is too long")
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.send(data)

    def recv(self) -> tuple[Message | None, list[int]]:
        """The next message and the fds that came with it; (None, []) at end-of-file."""
        data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, 4)
        if not data:
            for fd in fds:
                socket.close(fd)
            return None, []
        tag = data[0]
        if tag == 6:
            return Plan(pickle.loads(data[1:])), fds
        if tag == 7:
            return Job(bytes(data[1:])), fds
        text = data[1:].decode(errors="replace")
        msg: Message
        if tag == 1:
            msg = Ready()
        elif tag == 2:
            msg = Start()
        elif tag == 3:
            msg = Failed(text)
        elif tag == 4:
            msg = ExecFailed(text)
        elif tag == 5:
            msg = Proceed()
        else:
            msg = Failed(f"unknown message tag {tag} from the container process")
        return msg, fds

    def close(self) -> None:
        self.sock.close()
