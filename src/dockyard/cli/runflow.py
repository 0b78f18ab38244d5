"""The container life-cycle flows shared by ``run``, ``create`` and ``start``.

``create_container`` is docker's ``createContainer``: create; on 404 print
``Unable to find image 'busybox:latest' locally`` (stderr), pull with progress, create again.

``attached_session`` is the part of docker's ``runContainer`` after create, in its call
order: attach (hijack) → wait (``next-exit``, or ``removed`` with ``--rm``, whose response
headers arrive before start) → start → resize (TTY) → stream until the attach ends, then
the exit status from the wait. Typing the detach keys in a TTY ends it with status 0.
"""

from __future__ import annotations

import threading

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import error_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["attached_session", "create_container", "to_status_error", "with_help"]


def with_help(message: str, verb: str) -> str:
    return f"dockyard: {message}\n\nRun 'dockyard {verb} --help' for more information"


def to_status_error(exc: BaseException, verb: str = "run") -> StatusError:
    """docker's ``toStatusError``: 127 not found, 126 cannot invoke, else 125."""
    if isinstance(exc, StatusError):
        return exc
    msg = error_text(exc)
    if ("executable file not found" in msg or "no such file or directory" in msg
            or "system cannot find the file specified" in msg):
        return StatusError(127, with_help(msg, verb))
    if "permission denied" in msg or "is a directory" in msg:
        return StatusError(126, with_help(msg, verb))
    return StatusError(125, with_help(msg, verb))


def _named(image: str) -> Any:
    """The image as a named reference with a default tag, or None (an ID or digest-only)."""
    try:
        from dockyard.oci.reference import parse_normalized

        return parse_normalized(image).with_default_tag()
    except Exception:  # noqa: BLE001 - e.g. a 64-hex image ID
        return None


def create_container(cli: Cli, body: dict[str, Any], name: str = "", platform: str = "",
                     pull: str = "missing", quiet: bool = False) -> str:
    from dockyard.cli.imagepull import pull_image
    from dockyard.errors import NotFound

    image = body.get("Image", "")
    if pull == "always":
        pull_image(cli, image, platform=platform, quiet=quiet, to_stderr=True)
    try:
        resp = cli.client.container_create(body, name=name or None, platform=platform or None)
    except NotFound:
        # The reference parser costs ~20 ms of imports: only the pull path pays for it.
        named = _named(image) if pull == "missing" else None
        if named is None:
            raise
        if not quiet:
            cli.err.write(f"Unable to find image '{named.familiar()}' locally\n")
        pull_image(cli, image, platform=platform, quiet=quiet, to_stderr=True)
        resp = cli.client.container_create(body, name=name or None, platform=platform or None)
    for w in resp.get("Warnings") or []:
        cli.err.write(f"WARNING: {w}\n")
    cid = str(resp.get("Id", ""))
    cidfile = (body.get("HostConfig") or {}).get("ContainerIDFile")
    if cidfile:
        with open(cidfile, "w") as f:
            f.write(cid)
    return cid


def _status_of(cli: Cli, result: dict[str, Any]) -> int:
    err = result.get("Error")
    if err and (err.get("Message") if isinstance(err, dict) else err):
        m = err.get("Message") if isinstance(err, dict) else err
        cli.err.write(f"Error waiting for container: {m}\n")
        return 125
    return int(result.get("StatusCode", 0) or 0)


def attached_session(
    cli: Cli,
    cid: str,
    *,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: str,
    auto_remove: bool,
    sig_proxy: bool,
    verb: str = "run",
) -> int:
    """Attach, wait, start and stream; returns the exit status (0 on detach)."""
    from dockyard.cli.hijack import HijackedIO, SignalProxy, TtyResizer
    from dockyard.cli.term import Detach

    proxy = SignalProxy(cli, cid).start() if sig_proxy else None
    streamer: HijackedIO | None = None
    resizer: TtyResizer | None = None
    try:
        attach = stdin or stdout or stderr
        if attach:
            conn = cli.client.container_attach(cid, stdin=stdin, stdout=stdout, stderr=stderr,
                                               stream=True, detach_keys=detach_keys)
            streamer = HijackedIO(cli, conn, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty,
                                  detach_keys=detach_keys, stderr_to_stdout=tty).start()
        try:
            waiter = cli.client.container_wait(cid, "removed" if auto_remove else "next-exit")
        except Exception as exc:
            if streamer is not None:
                streamer.close()
            raise to_status_error(exc, verb) if verb == "run" else exc from None
        try:
            cli.client.container_start(cid)
        except Exception as exc:
            if streamer is not None:
                streamer.close()
            if auto_remove:
                try:
                    waiter.result(timeout=30)
                except Exception:  # noqa: BLE001
                    pass
            waiter.close()
            if verb == "run":
                raise to_status_error(exc, verb) from None
            raise
        if not attach:
            waiter.close()
            return 0
        assert streamer is not None
        if tty and cli.streams.is_terminal("stdout"):
            resizer = TtyResizer(cli, cid).start()
        # Woken by whichever ends first, the attach stream or the wait; no polling.
        wake = threading.Event()
        streamer.done.notify(wake)
        waiter.notify(wake)
        while True:
            wake.clear()
            if streamer.done.is_set():
                try:
                    streamer.wait()
                except Detach:
                    waiter.close()
                    return 0
                try:
                    return _status_of(cli, waiter.result())
                except Exception as exc:  # noqa: BLE001
                    cli.err.write(f"error waiting for container: {exc}\n")
                    return 125
            if waiter.done():
                if not (stdout or stderr):
                    streamer.close()
                else:
                    streamer.done.wait(5.0)  # drain what is still in flight
                try:
                    status = _status_of(cli, waiter.result())
                except Exception as exc:  # noqa: BLE001
                    cli.err.write(f"error waiting for container: {exc}\n")
                    return 125
                return status
            wake.wait(1.0)  # the timeout only bounds how long a lost wake-up could cost
    finally:
        if resizer is not None:
            resizer.stop()
        if streamer is not None:
            streamer.close()
        if proxy is not None:
            proxy.stop()
