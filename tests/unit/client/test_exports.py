"""The client package's public surface (STYLE.md §3.12) and its import cost."""

from __future__ import annotations

import subprocess
import sys

import dockyard.client as client


def test_exported_names() -> None:
    assert sorted(client.__all__) == sorted([
        "DEFAULT_HOST", "MAX_API_VERSION", "APIClient", "ConnectionFailed", "Demuxer",
        "HijackedConnection", "MockHijack", "MockResponse", "MockTransport", "Response",
        "SystemErr", "Transport", "UnixTransport", "WaitHandle", "encode_query",
        "error_from_response", "filters_json", "is_daemon_error", "iter_json_messages",
        "parse_host", "stdcopy",
    ])
    for name in client.__all__:
        assert getattr(client, name) is not None


def test_importing_the_client_stays_cheap() -> None:
    code = "import sys, dockyard.client; print(' '.join(sorted(sys.modules)))"
    mods = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.split())
    for heavy in ("http.client", "aiohttp", "typing", "dataclasses", "threading", "socket",
                  "ssl", "email"):
        assert heavy not in mods, heavy
