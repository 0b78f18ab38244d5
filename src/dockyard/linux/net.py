"""Bring a network link up with the SIOCGIFFLAGS/SIOCSIFFLAGS ioctls (no netlink needed).

Used for the loopback of a fresh network namespace; the caller must be in that namespace.
"""

from __future__ import annotations

import fcntl
import socket
import struct

__all__ = ["link_up"]

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def link_up(name: str = "lo") -> None:
    """Set IFF_UP on link ``name`` of the caller's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh22x", name.encode(), 0)
        (flags,) = struct.unpack_from("h", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req), 16)
        if not flags & IFF_UP:
            fcntl.ioctl(
                s.fileno(), SIOCSIFFLAGS, struct.pack("16sh22x", name.encode(), flags | IFF_UP)
            )
