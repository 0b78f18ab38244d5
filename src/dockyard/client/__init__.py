"""Docker Engine API client over a unix socket (see ``api``, ``transport``, ``errors``).

::

    from dockyard.client import APIClient, UnixTransport
    client = APIClient(UnixTransport("/run/dockyard/dockyard.sock"))
    client.containers(all=True)

``MockTransport`` (``dockyard.client.mock``) answers requests in memory for tests; it is
loaded on first use (as is the ``Transport`` protocol) so that importing the client
stays cheap.
"""

from __future__ import annotations

from dockyard.client.api import MAX_API_VERSION, APIClient, WaitHandle, encode_query, filters_json
from dockyard.client.errors import ConnectionFailed, error_from_response, is_daemon_error
from dockyard.client.streams import Demuxer, SystemErr, iter_json_messages, stdcopy
from dockyard.client.transport import (
    DEFAULT_HOST,
    HijackedConnection,
    Response,
    UnixTransport,
    parse_host,
)

__all__ = [
    "DEFAULT_HOST",
    "MAX_API_VERSION",
    "APIClient",
    "ConnectionFailed",
    "Demuxer",
    "HijackedConnection",
    "MockHijack",
    "MockResponse",
    "MockTransport",
    "Response",
    "SystemErr",
    "Transport",
    "UnixTransport",
    "WaitHandle",
    "encode_query",
    "error_from_response",
    "filters_json",
    "is_daemon_error",
    "iter_json_messages",
    "parse_host",
    "stdcopy",
]

_LAZY = {"MockTransport": "mock", "MockResponse": "mock", "MockHijack": "mock",
         "Transport": "interface"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"dockyard.client.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'dockyard.client' has no attribute {name!r}")
