"""The Engine API client: one method per endpoint, over a ``Transport``.

The first call pings the daemon (``HEAD /_ping``, then ``GET /_ping`` if HEAD is refused)
and negotiates the API version: ``min(MAX_API_VERSION, Api-Version header)``, or 1.24 when
the daemon sends no header. Every later path is ``/v1.NN/...``. Query strings are encoded
as Go's ``url.Values.Encode`` does (keys sorted), so requests match the docker CLI's.

Errors: ``ConnectionFailed`` when the daemon cannot be reached; a non-2xx answer raises
the ``dockyard.errors`` class of its status (see ``dockyard.client.errors``), with
``from_daemon`` set. ``304 Not Modified`` on start/stop/restart is success, as in docker.
Methods that stream return the open ``Response`` (progress streams, logs, save) or a
``HijackedConnection`` (attach, exec start); the caller reads and closes them.
"""

from __future__ import annotations

import _thread

from dockyard.client.errors import error_from_response
from dockyard.client.jsoncodec import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Mapping, Sequence
    from typing import Any

    from dockyard.client.interface import Body, Transport
    from dockyard.client.transport import HijackedConnection, Response

    QueryValue = str | int | bool | Sequence[str] | None

__all__ = ["MAX_API_VERSION", "MIN_API_VERSION", "APIClient", "WaitHandle", "encode_query",
           "filters_json"]

MAX_API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
FALLBACK_API_VERSION = "1.24"

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def _query_escape(s: str) -> str:
    out = []
    for b in s.encode():
        if b in _UNRESERVED:
            out.append(chr(b))
        elif b == 0x20:
            out.append("+")
        else:
            out.append("%%%02X" % b)
    return "".join(out)




def encode_query(query: Mapping[str, QueryValue]) -> str:
    """``url.Values.Encode``: keys sorted, lists repeated, ``None`` left out."""
    parts: list[str] = []
    for key in sorted(query):
        value = query[key]
        if value is None:
            continue
        values: Sequence[str]
        if isinstance(value, bool):
            values = ["1" if value else "0"]
        elif isinstance(value, int):
            values = [str(value)]
        elif isinstance(value, str):
            values = [value]
        else:
            values = [str(v) for v in value]
        for v in values:
            parts.append(f"{_query_escape(key)}={_query_escape(v)}")
    return "&".join(parts)


def filters_json(filters: Mapping[str, Sequence[str]] | None) -> str | None:
    """``{"status": ["running"]}`` → ``{"status":{"running":true}}`` (docker's encoding)."""
    if not filters:
        return None
    return dumps({k: {v: True for v in vs} for k, vs in filters.items()}, compact=True)


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return (0,)


def version_lt(a: str, b: str) -> bool:
    return _version_tuple(a) < _version_tuple(b)


class WaitHandle:
    """A ``POST /containers/ID/wait`` whose headers have arrived; the body (the exit status)
    comes when the container exits or is removed. ``result()`` blocks for it; ``close()``
    abandons the wait (``run -d`` does that after start)."""

    def __init__(self, response: Response) -> None:
        import threading

        self._response = response
        self._done = threading.Event()
        self._result: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._watchers: list[threading.Event] = []
        self._thread = threading.Thread(target=self._read, name="wait", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            body = self._response.read()
            obj = loads(body) if body.strip() else None
            if not isinstance(obj, dict):
                raise ConnectionError("wait: unexpected response body")
            self._result = obj
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter
            self._error = exc
        finally:
            self._done.set()
            for ev in list(self._watchers):
                ev.set()

    def done(self) -> bool:
        return self._done.is_set()

    def notify(self, event: threading.Event) -> None:
        """Set ``event`` when the result is there (at once if it already is), so that a
        caller can wait for this and something else together without polling."""
        self._watchers.append(event)
        if self._done.is_set():
            event.set()

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """``{"StatusCode": N, "Error": null|{"Message": ...}}``; raises what reading raised."""
        if not self._done.wait(timeout):
            raise TimeoutError("container wait timed out")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def close(self) -> None:
        self._response.close()


class APIClient:
    """One method per Engine API endpoint. ``version=None`` negotiates on first use."""

    def __init__(self, transport: Transport, version: str | None = None) -> None:
        self.transport = transport
        self._version = version
        self._ping: dict[str, str] | None = None
        self._lock = _thread.allocate_lock()

    # -- plumbing ----------------------------------------------------------------------
    @property
    def api_version(self) -> str:
        if self._version is None:
            with self._lock:
                if self._version is None:
                    self._negotiate()
        assert self._version is not None
        return self._version

    def _negotiate(self) -> None:
        ping = self.ping()
        server = ping.get("api_version", "")
        if not server:
            self._version = FALLBACK_API_VERSION
        elif version_lt(server, MAX_API_VERSION):
            self._version = server
        else:
            self._version = MAX_API_VERSION

    def ping(self) -> dict[str, str]:
        """``HEAD /_ping`` (``GET`` if HEAD is answered with anything but 200/500)."""
        if self._ping is not None:
            return self._ping
        resp = self.transport.request("HEAD", "/_ping")
        resp.read()
        if resp.status not in (200, 500):
            resp = self.transport.request("GET", "/_ping")
            body = resp.read()
            if resp.status >= 400 and resp.status != 500:
                raise error_from_response(resp.status, body, resp.content_type, resp.reason,
                                          "/_ping")
        h = resp.headers
        self._ping = {
            "api_version": h.get("api-version"),
            "os_type": h.get("ostype"),
            "experimental": h.get("docker-experimental"),
            "builder_version": h.get("builder-version"),
            "swarm": h.get("swarm"),
        }
        return self._ping

    def url(self, path: str, query: Mapping[str, QueryValue] | None = None) -> str:
        q = encode_query(query) if query else ""
        return f"/v{self.api_version}{path}" + (f"?{q}" if q else "")

    def request(
        self, method: str, path: str, query: Mapping[str, QueryValue] | None = None, *,
        json_body: Any = None, body: Body = None, headers: Mapping[str, str] | None = None,
        ok304: bool = False,
    ) -> Response:
        """Send a request and raise the mapped error for a non-2xx status."""
        hdrs = dict(headers or {})
        if json_body is not None:
            body = (dumps(json_body, compact=True) + "\n").encode()
            hdrs.setdefault("Content-Type", "application/json")
        url = self.url(path, query)
        resp = self.transport.request(method, url, headers=hdrs, body=body)
        if resp.status >= 400 or (resp.status == 304 and not ok304):
            data = resp.read()
            raise error_from_response(resp.status, data, resp.content_type, resp.reason, url)
        return resp

    def _json(self, method: str, path: str, query: Mapping[str, QueryValue] | None = None,
              **kw: Any) -> Any:
        resp = self.request(method, path, query, **kw)
        data = resp.read()
        return loads(data) if data.strip() else None

    def _raw(self, method: str, path: str, query: Mapping[str, QueryValue] | None = None,
             **kw: Any) -> tuple[Any, bytes]:
        resp = self.request(method, path, query, **kw)
        data = resp.read()
        return (loads(data) if data.strip() else None), data

    def _none(self, method: str, path: str, query: Mapping[str, QueryValue] | None = None,
              **kw: Any) -> None:
        self.request(method, path, query, **kw).read()

    def close(self) -> None:
        self.transport.close()

    # -- system --------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version")  # type: ignore[no-any-return]

    def info(self) -> dict[str, Any]:
        return self._json("GET", "/info")  # type: ignore[no-any-return]

    def auth(self, auth_config: Mapping[str, str]) -> dict[str, Any]:
        return self._json("POST", "/auth", json_body=dict(auth_config))  # type: ignore[no-any-return]

    def events(self, since: str | None = None, until: str | None = None,
               filters: Mapping[str, Sequence[str]] | None = None) -> Response:
        return self.request("GET", "/events", {"since": since, "until": until,
                                                "filters": filters_json(filters)})

    # -- containers ------------------------------------------------------------------------
    def containers(self, all: bool = False, limit: int = -1, size: bool = False,
                   filters: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
        q: dict[str, QueryValue] = {
            "all": "1" if all else None,
            "limit": str(limit) if limit > 0 else None,
            "size": "1" if size else None,
            "filters": filters_json(filters),
        }
        return self._json("GET", "/containers/json", q) or []

    def container_create(self, config: Mapping[str, Any], name: str | None = None,
                         platform: str | None = None) -> dict[str, Any]:
        q = {"name": name or None, "platform": platform or None}
        return self._json("POST", "/containers/create", q, json_body=config)  # type: ignore[no-any-return]

    def container_inspect(self, container: str, size: bool = False) -> tuple[dict[str, Any], bytes]:
        return self._raw("GET", f"/containers/{container}/json", {"size": "1" if size else None})

    def container_start(self, container: str) -> None:
        self._none("POST", f"/containers/{container}/start", ok304=True)

    def container_stop(self, container: str, timeout: int | None = None,
                       signal: str | None = None) -> None:
        q = {"t": str(timeout) if timeout is not None else None, "signal": signal or None}
        self._none("POST", f"/containers/{container}/stop", q, ok304=True)

    def container_restart(self, container: str, timeout: int | None = None,
                          signal: str | None = None) -> None:
        q = {"t": str(timeout) if timeout is not None else None, "signal": signal or None}
        self._none("POST", f"/containers/{container}/restart", q, ok304=True)

    def container_kill(self, container: str, signal: str | None = None) -> None:
        self._none("POST", f"/containers/{container}/kill", {"signal": signal or None})

    def container_remove(self, container: str, force: bool = False, volumes: bool = False,
                         link: bool = False) -> None:
        q = {"force": "1" if force else None, "v": "1" if volumes else None,
             "link": "1" if link else None}
        self._none("DELETE", f"/containers/{container}", q)

    def container_rename(self, container: str, name: str) -> None:
        self._none("POST", f"/containers/{container}/rename", {"name": name})

    def container_top(self, container: str, ps_args: Sequence[str] = ()) -> dict[str, Any]:
        q = {"ps_args": " ".join(ps_args) if ps_args else None}
        return self._json("GET", f"/containers/{container}/top", q)  # type: ignore[no-any-return]

    def container_resize(self, container: str, height: int, width: int) -> None:
        self._none("POST", f"/containers/{container}/resize", {"h": str(height), "w": str(width)})

    def container_wait(self, container: str, condition: str = "") -> WaitHandle:
        """Start a streaming wait; returns once the daemon has sent the response headers."""
        q: dict[str, QueryValue] = {}
        if condition and not version_lt(self.api_version, "1.30"):
            q["condition"] = condition
        return WaitHandle(self.request("POST", f"/containers/{container}/wait", q))

    def container_logs(self, container: str, *, stdout: bool = True, stderr: bool = True,
                       follow: bool = False, since: str = "", until: str = "",
                       timestamps: bool = False, tail: str = "all",
                       details: bool = False) -> Response:
        q = {
            "stdout": "1" if stdout else None, "stderr": "1" if stderr else None,
            "follow": "1" if follow else None, "since": since or None,
            "until": until or None, "timestamps": "1" if timestamps else None,
            "tail": tail, "details": "1" if details else None,
        }
        return self.request("GET", f"/containers/{container}/logs", q)

    def container_attach(self, container: str, *, stdin: bool = False, stdout: bool = True,
                         stderr: bool = True, stream: bool = True, logs: bool = False,
                         detach_keys: str = "") -> HijackedConnection:
        q = {
            "stdin": "1" if stdin else None, "stdout": "1" if stdout else None,
            "stderr": "1" if stderr else None, "stream": "1" if stream else None,
            "logs": "1" if logs else None, "detachKeys": detach_keys or None,
        }
        return self.transport.hijack("POST", self.url(f"/containers/{container}/attach", q),
                                     headers={"Content-Type": "text/plain"}, body=b"")

    def containers_prune(self, filters: Mapping[str, Sequence[str]] | None = None,
                         ) -> dict[str, Any]:
        return self._json("POST", "/containers/prune", {"filters": filters_json(filters)}) or {}

    def container_commit(self, container: str, repo: str = "", tag: str = "", *,
                         comment: str = "", author: str = "", changes: Sequence[str] = (),
                         pause: bool = True, config: Mapping[str, Any] | None = None,
                         ) -> dict[str, Any]:
        q: dict[str, QueryValue] = {
            "container": container, "repo": repo, "tag": tag, "comment": comment,
            "author": author, "changes": list(changes) or None,
            "pause": None if pause else "0",
        }
        return self._json("POST", "/commit", q, json_body=dict(config or {}))  # type: ignore[no-any-return]

    # -- exec ------------------------------------------------------------------------------
    def exec_create(self, container: str, config: Mapping[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/containers/{container}/exec", json_body=config)  # type: ignore[no-any-return]

    def exec_start(self, exec_id: str, *, tty: bool = False,
                   console_size: Sequence[int] | None = None) -> HijackedConnection:
        body: dict[str, Any] = {"Detach": False, "Tty": tty}
        if console_size is not None and not version_lt(self.api_version, "1.42"):
            body["ConsoleSize"] = list(console_size)
        data = (dumps(body, compact=True) + "\n").encode()
        return self.transport.hijack("POST", self.url(f"/exec/{exec_id}/start"),
                                     headers={"Content-Type": "application/json"}, body=data)

    def exec_start_detached(self, exec_id: str, *, tty: bool = False) -> None:
        self._none("POST", f"/exec/{exec_id}/start", json_body={"Detach": True, "Tty": tty})

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return self._json("GET", f"/exec/{exec_id}/json")  # type: ignore[no-any-return]

    def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        self._none("POST", f"/exec/{exec_id}/resize", {"h": str(height), "w": str(width)})

    # -- images ------------------------------------------------------------------------------
    def images(self, all: bool = False, filters: Mapping[str, Sequence[str]] | None = None,
               digests: bool = False) -> list[dict[str, Any]]:
        q = {"all": "1" if all else None, "filters": filters_json(filters),
             "digests": "1" if digests else None}
        return self._json("GET", "/images/json", q) or []

    def image_inspect(self, name: str) -> tuple[dict[str, Any], bytes]:
        return self._raw("GET", f"/images/{name}/json")

    def image_history(self, name: str, platform: str | None = None) -> list[dict[str, Any]]:
        q = {"platform": platform or None}
        return self._json("GET", f"/images/{name}/history", q) or []

    def image_tag(self, source: str, repo: str, tag: str = "") -> None:
        self._none("POST", f"/images/{source}/tag", {"repo": repo, "tag": tag or None})

    def image_remove(self, name: str, force: bool = False, noprune: bool = False,
                     ) -> list[dict[str, str]]:
        q = {"force": "1" if force else None, "noprune": "1" if noprune else None}
        return self._json("DELETE", f"/images/{name}", q) or []

    def images_prune(self, filters: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        return self._json("POST", "/images/prune", {"filters": filters_json(filters)}) or {}

    def image_create(self, from_image: str, tag: str = "", *, platform: str = "",
                     registry_auth: str = "") -> Response:
        """Pull: a JSON progress stream."""
        q = {"fromImage": from_image, "tag": tag or None, "platform": platform or None}
        headers = {"X-Registry-Auth": registry_auth} if registry_auth else {}
        return self.request("POST", "/images/create", q, headers=headers)

    def image_import(self, source: Body, repo: str = "", *, from_src: str = "-",
                     tag: str = "", message: str = "", changes: Sequence[str] = (),
                     platform: str = "") -> Response:
        """Import a rootfs tarball (streamed chunked): a JSON progress stream."""
        q = {"fromSrc": from_src, "repo": repo or None, "tag": tag or None,
             "message": message or None, "changes": list(changes) or None,
             "platform": platform or None}
        return self.request("POST", "/images/create", q, body=source if source is not None else b"",
                            headers={"Content-Type": "text/plain"})

    def image_push(self, name: str, tag: str = "", *, registry_auth: str = "",
                   platform: str = "") -> Response:
        q = {"tag": tag or None, "platform": platform or None}
        headers = {"X-Registry-Auth": registry_auth or "e30="}
        return self.request("POST", f"/images/{name}/push", q, headers=headers)

    def image_save(self, names: Sequence[str], platform: str = "") -> Response:
        q: dict[str, QueryValue] = {"names": list(names), "platform": platform or None}
        return self.request("GET", "/images/get", q)

    def image_load(self, source: Body, quiet: bool = False, platform: str = "") -> Response:
        q = {"quiet": "1" if quiet else "0", "platform": platform or None}
        return self.request("POST", "/images/load", q, body=source,
                            headers={"Content-Type": "application/x-tar"})

    # -- networks and volumes (what generic inspect needs) ------------------------------
    def network_inspect(self, name: str) -> tuple[dict[str, Any], bytes]:
        return self._raw("GET", f"/networks/{name}")

    def volume_inspect(self, name: str) -> tuple[dict[str, Any], bytes]:
        return self._raw("GET", f"/volumes/{name}")
