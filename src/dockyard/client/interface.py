"""The interfaces of the client's transport layer (typing only; kept out of the import path
of the CLI, which must start fast).

``Transport`` is what ``APIClient`` needs: ``UnixTransport`` implements it over a socket,
``MockTransport`` in memory. Contract:

* ``request`` sends one request and returns the ``Response`` once its head has arrived;
  the body is read lazily. An HTTP error status is *returned* (``APIClient`` maps it);
  ``ConnectionFailed`` is raised when the daemon cannot be reached.
* ``hijack`` sends a request with ``Connection: Upgrade`` / ``Upgrade: tcp`` and returns the
  raw connection after a ``101``; an error status raises the mapped ``dockyard.errors``
  class, any other status ``ConnectionFailed("unable to upgrade to tcp, received N")``.
* ``close`` closes idle connections; open responses and hijacked connections stay usable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import IO, TYPE_CHECKING, Protocol, Union

if TYPE_CHECKING:
    from dockyard.client.transport import HijackedConnection, Response

__all__ = ["Body", "SocketLike", "Transport"]

#: a request body: bytes, a binary file, or an iterable of byte chunks (sent chunked)
Body = Union[bytes, IO[bytes], Iterable[bytes], None]


class SocketLike(Protocol):
    def recv(self, n: int) -> bytes: ...
    def sendall(self, data: bytes) -> None: ...
    def shutdown(self, how: int) -> None: ...
    def close(self) -> None: ...


class Transport(Protocol):
    def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
        body: Body = None,
    ) -> Response: ...

    def hijack(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> HijackedConnection: ...

    def close(self) -> None: ...
