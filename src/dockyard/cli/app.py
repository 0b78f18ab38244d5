"""What every command gets: the I/O streams, the daemon connection and the config file.

``Cli`` is built once per invocation by ``dockyard.cli.main``. The API client is created
on first use, so commands that never talk to the daemon (``logout``, ``--help``) never
connect, and the version negotiation (``HEAD /_ping``) happens right before the first
real request, as with the docker CLI.

``StatusError`` ends a command with an exit status and an optional message (docker's
``cli.StatusError``): 125 for errors before the container ran, the container's own status
otherwise.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO, Any

    from dockyard.client.api import APIClient
    from dockyard.client.config import ConfigFile

__all__ = ["Cli", "StatusError", "Streams"]

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"


class StatusError(Exception):
    """Exit with ``status``, printing ``message`` to stderr when it is not empty."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _TextOut:
    """A text writer over a binary stream that flushes on every write (progress, tables)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def write(self, s: str) -> int:
        self.raw.write(s.encode("utf-8", "surrogateescape"))
        self.raw.flush()
        return len(s)

    def flush(self) -> None:
        self.raw.flush()


class Streams:
    """Binary stdin/stdout/stderr. The real process streams by default; tests pass BytesIO."""

    def __init__(self, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None,
                 stderr: IO[bytes] | None = None) -> None:
        self.stdin = stdin if stdin is not None else sys.stdin.buffer
        self.stdout = stdout if stdout is not None else sys.stdout.buffer
        self.stderr = stderr if stderr is not None else sys.stderr.buffer
        self.out = _TextOut(self.stdout)
        self.err = _TextOut(self.stderr)

    def fd(self, which: str) -> int:
        stream = getattr(self, which)
        try:
            return int(stream.fileno())
        except (AttributeError, OSError, ValueError):
            return -1

    def is_terminal(self, which: str) -> bool:
        fd = self.fd(which)
        if fd < 0:
            return False
        from dockyard.cli.term import is_terminal

        return is_terminal(fd)

    def tty_size(self) -> tuple[int, int]:
        """(height, width) of the terminal on stdout, (0, 0) when not a terminal."""
        fd = self.fd("stdout")
        if fd < 0 or not self.is_terminal("stdout"):
            return 0, 0
        from dockyard.cli.term import get_size

        return get_size(fd)


class Cli:
    """The per-invocation context handed to every command's ``run``."""

    def __init__(self, host: str | None = None, streams: Streams | None = None,
                 env: Mapping[str, str] | None = None, debug: bool = False,
                 config_dir: str | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.host = host or self.env.get("DOCKER_HOST") or DEFAULT_HOST
        self.streams = streams or Streams()
        self.debug = debug
        self.config_dir = config_dir
        self._client: APIClient | None = None
        self._config: ConfigFile | None = None

    # -- output --------------------------------------------------------------------------
    @property
    def out(self) -> _TextOut:
        return self.streams.out

    @property
    def err(self) -> _TextOut:
        return self.streams.err

    def print(self, *args: Any, sep: str = " ", end: str = "\n") -> None:
        self.streams.out.write(sep.join(str(a) for a in args) + end)

    def eprint(self, *args: Any, sep: str = " ", end: str = "\n") -> None:
        self.streams.err.write(sep.join(str(a) for a in args) + end)

    # -- daemon --------------------------------------------------------------------------
    @property
    def client(self) -> APIClient:
        if self._client is None:
            from dockyard.client.api import APIClient
            from dockyard.client.transport import UnixTransport, parse_host

            self._client = APIClient(UnixTransport(parse_host(self.host), self.host))
        return self._client

    @client.setter
    def client(self, value: APIClient) -> None:
        self._client = value

    @property
    def config(self) -> ConfigFile:
        if self._config is None:
            from dockyard.client.config import ConfigFile, config_dir

            self._config = ConfigFile.load(self.config_dir or config_dir(self.env))
        return self._config

    def registry_auth(self, domain: str) -> str:
        """The ``X-Registry-Auth`` value for a registry domain (``e30=`` when anonymous)."""
        from dockyard.client.config import auth_key_for_domain, encode_auth

        return encode_auth(self.config.get_auth(auth_key_for_domain(domain)))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
