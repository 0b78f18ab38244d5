"""The client's terminal: TTY checks and size, raw mode, and the detach-key escape proxy.

* ``make_raw(fd)`` puts a terminal in raw mode (``cfmakeraw``: no echo, no line editing,
  no signal keys, no output processing) and returns what ``restore(fd, state)`` needs.
* ``parse_detach_keys("ctrl-p,ctrl-q")`` → ``b"\\x10\\x11"`` (moby/term ``ToBytes``).
* ``EscapeProxy`` filters stdin: bytes that could start the detach sequence are held
  back; on the full sequence ``feed`` raises ``Detach``; on a mismatch they are released.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_DETACH_KEYS",
    "Detach",
    "EscapeProxy",
    "get_size",
    "is_terminal",
    "make_raw",
    "parse_detach_keys",
    "restore",
]

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q

_CTRL = ["ctrl-@"] + [f"ctrl-{chr(c)}" for c in range(ord("a"), ord("z") + 1)] + \
    ["ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_"]


class Detach(Exception):
    """The user typed the detach sequence ("read escape sequence"); ``data`` holds the input
    that came before it in the same read, still to be forwarded."""

    def __init__(self, data: bytes = b"") -> None:
        super().__init__("read escape sequence")
        self.data = data


def parse_detach_keys(keys: str) -> bytes:
    """``ctrl-<a-z@[\\]^_>``, ``DEL`` or single characters, comma-separated."""
    out = bytearray()
    for key in keys.split(","):
        if len(key) == 1:
            out += key.encode()
            continue
        if key in _CTRL:
            out.append(_CTRL.index(key))
        elif key == "DEL":
            out.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(out)


class EscapeProxy:
    """moby/term's escape proxy over a stream of input chunks."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.pos = 0

    def feed(self, data: bytes) -> bytes:
        """Bytes to forward now; raises ``Detach`` when the sequence is complete."""
        if not self.keys:
            return data
        out = bytearray()
        for b in data:
            if b == self.keys[self.pos]:
                self.pos += 1
                if self.pos == len(self.keys):
                    self.pos = 0
                    raise Detach(bytes(out))
                continue
            if self.pos:
                out += self.keys[: self.pos]  # a partial match that turned out not to be one
                self.pos = 0
                if b == self.keys[0]:
                    self.pos = 1
                    continue
            out.append(b)
        return bytes(out)


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except (OSError, ValueError):
        return False


def get_size(fd: int) -> tuple[int, int]:
    """(height, width) of the terminal on ``fd``, or (0, 0)."""
    try:
        sz = os.get_terminal_size(fd)
    except (OSError, ValueError):
        return 0, 0
    return sz.lines, sz.columns


def make_raw(fd: int) -> Any:
    """Raw mode on ``fd``; returns the previous attributes (None if not a terminal)."""
    import termios

    try:
        old = termios.tcgetattr(fd)
    except (termios.error, OSError):
        return None
    new = list(old)
    new[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
    new[1] &= ~termios.OPOST
    new[2] &= ~(termios.CSIZE | termios.PARENB)
    new[2] |= termios.CS8
    new[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cc = list(new[6])
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    new[6] = cc
    termios.tcsetattr(fd, termios.TCSANOW, new)
    return old


def restore(fd: int, state: Any) -> None:
    if state is None:
        return
    import termios

    try:
        termios.tcsetattr(fd, termios.TCSANOW, state)
    except (termios.error, OSError):
        pass
