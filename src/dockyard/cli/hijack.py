"""Pump bytes between the client's stdio and a hijacked attach/exec connection.

Like docker's ``hijackedIOStreamer``: one thread copies the connection to stdout (raw for a
TTY, demultiplexed to stdout/stderr otherwise), one copies stdin to the connection and
half-closes it at EOF (straight away when stdin is not attached). In TTY mode stdin goes
raw and through the detach-key escape proxy; typing the sequence ends the session with
``Detach`` and leaves the container running. ``SignalProxy`` forwards the signals the CLI
receives to the container (``POST /containers/ID/kill?signal=NAME``), and ``TtyResizer``
sends the terminal size on start and on every SIGWINCH.
"""

from __future__ import annotations

import os
import signal
import threading

from dockyard.cli.app import Cli
from dockyard.cli.term import (
    DEFAULT_DETACH_KEYS,
    Detach,
    EscapeProxy,
    make_raw,
    parse_detach_keys,
    restore,
)
from dockyard.client.transport import HijackedConnection

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["HijackedIO", "SignalProxy", "TtyResizer", "signal_name"]


class _NotifyingEvent(threading.Event):
    """An Event that also sets the events registered with ``notify`` when it is set."""

    def __init__(self) -> None:
        super().__init__()
        self._watchers: list[threading.Event] = []

    def set(self) -> None:
        super().set()
        for ev in list(self._watchers):
            ev.set()

    def notify(self, event: threading.Event) -> None:
        self._watchers.append(event)
        if self.is_set():
            event.set()


class HijackedIO:
    """Run the copy threads; ``wait()`` returns None, or raises ``Detach`` / the error.

    ``done`` is set when the session has ended; ``done.notify(event)`` also sets ``event``
    then, so that the caller can wait for it and for the container's exit together."""

    def __init__(self, cli: Cli, conn: HijackedConnection, *, stdin: bool, stdout: bool,
                 stderr: bool, tty: bool, detach_keys: str = "",
                 stderr_to_stdout: bool = False) -> None:
        self.cli = cli
        self.conn = conn
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
        self.stderr_to_stdout = stderr_to_stdout
        self.keys = DEFAULT_DETACH_KEYS
        if detach_keys:
            try:
                self.keys = parse_detach_keys(detach_keys)
            except ValueError as exc:
                cli.eprint(f"invalid detach escape keys, using default: {exc}")
        self.done = _NotifyingEvent()
        self.output_done = threading.Event()
        self.input_done = threading.Event()
        self.detached = False
        self.error: BaseException | None = None
        self._raw_state: Any = None
        self._raw_fd = -1
        self._restore_lock = threading.Lock()

    # -- terminal ---------------------------------------------------------------------
    def _setup_input(self) -> None:
        if not (self.stdin and self.tty):
            return
        if self.cli.streams.is_terminal("stdin") and not self.cli.env.get("NORAW"):
            self._raw_fd = self.cli.streams.fd("stdin")
            self._raw_state = make_raw(self._raw_fd)

    def restore_terminal(self) -> None:
        with self._restore_lock:
            if self._raw_state is not None:
                restore(self._raw_fd, self._raw_state)
                self._raw_state = None

    # -- threads ----------------------------------------------------------------------
    def start(self) -> HijackedIO:
        self._setup_input()
        if self.stdout or self.stderr:
            threading.Thread(target=self._output, name="attach-out", daemon=True).start()
        else:
            self.output_done.set()
        if self.stdin:
            threading.Thread(target=self._input, name="attach-in", daemon=True).start()
        else:
            self._input()  # nothing to copy: half-close at once, no thread to start
        return self

    def _write_out(self, data: bytes) -> None:
        s = self.cli.streams.stdout
        s.write(data)
        s.flush()

    def _write_err(self, data: bytes) -> None:
        s = self.cli.streams.stdout if self.stderr_to_stdout else self.cli.streams.stderr
        s.write(data)
        s.flush()

    def _output(self) -> None:
        try:
            if self.tty:
                while True:
                    data = self.conn.recv(65536)
                    if not data:
                        break
                    if self.stdout:
                        self._write_out(data)
                self.restore_terminal()
            else:
                from dockyard.client.streams import stdcopy

                stdcopy(lambda: self.conn.recv(65536),
                        self._write_out if self.stdout else None,
                        self._write_err if self.stderr else None)
        except BaseException as exc:  # noqa: BLE001 - reported by wait()
            if not self.detached:
                self.error = exc
        finally:
            self.output_done.set()
            self.done.set()

    def _read_stdin(self) -> Callable[[], bytes]:
        stream = self.cli.streams.stdin
        fd = self.cli.streams.fd("stdin")
        if fd >= 0:
            return lambda: os.read(fd, 32768)
        read1 = getattr(stream, "read1", None)
        if read1 is not None:
            return lambda: bytes(read1(32768))
        return lambda: stream.read(32768)

    def _input(self) -> None:
        try:
            if self.stdin:
                read = self._read_stdin()
                proxy = EscapeProxy(self.keys) if self.tty else None
                while True:
                    try:
                        data = read()
                    except OSError:
                        data = b""
                    if not data:
                        break
                    if proxy is not None:
                        try:
                            data = proxy.feed(data)
                        except Detach as exc:
                            if exc.data:
                                try:
                                    self.conn.sendall(exc.data)
                                except OSError:
                                    pass
                            self.detached = True
                            self.restore_terminal()
                            self.done.set()
                            return
                    if data:
                        try:
                            self.conn.sendall(data)
                        except OSError:
                            break
                self.restore_terminal()
            self.conn.close_write()
        except BaseException as exc:  # noqa: BLE001
            self.error = self.error or exc
        finally:
            self.input_done.set()
            if not (self.stdout or self.stderr):
                self.done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the session ended; raises ``Detach`` or the copy error."""
        if not self.done.wait(timeout):
            return False
        if self.detached:
            raise Detach()
        if self.error is not None:
            raise self.error
        return True

    def close(self) -> None:
        self.restore_terminal()
        self.conn.close()


# -- signals --------------------------------------------------------------------------------

_SIGNAL_NAMES: dict[int, str] = {}


def signal_name(signum: int) -> str:
    """``SIGTERM`` → ``TERM`` (the names the daemon's kill endpoint takes)."""
    if not _SIGNAL_NAMES:
        for s in signal.Signals:
            _SIGNAL_NAMES.setdefault(int(s), s.name[3:] if s.name.startswith("SIG") else s.name)
    return _SIGNAL_NAMES.get(signum, str(signum))


#: signals the CLI forwards to the container (docker forwards all but CHLD, PIPE, URG)
PROXY_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGALRM",
                 "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGVTALRM", "SIGPROF", "SIGIO",
                 "SIGPWR", "SIGSYS", "SIGXCPU", "SIGXFSZ", "SIGTRAP", "SIGABRT")


class SignalProxy:
    """Forward received signals as ``kill`` calls from a helper thread (main thread only).

    The handler only puts the signal number on a ``SimpleQueue`` (reentrant, so safe in a
    signal handler); the thread makes the API call.
    """

    def __init__(self, cli: Cli, container_id: str) -> None:
        from _queue import SimpleQueue  # what queue.SimpleQueue is, without queue's imports

        self.cli = cli
        self.container_id = container_id
        self._old: dict[int, Any] = {}
        self._queue: SimpleQueue[int] = SimpleQueue()
        self.sent: list[str] = []

    def _handler(self, signum: int, frame: Any) -> None:
        self._queue.put(signum)

    def start(self) -> SignalProxy:
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in PROXY_SIGNALS:
            s = getattr(signal, name, None)
            if s is None:
                continue
            try:
                self._old[int(s)] = signal.signal(s, self._handler)
            except (OSError, ValueError):
                pass
        threading.Thread(target=self._forward, name="sig-proxy", daemon=True).start()
        return self

    def _forward(self) -> None:
        while True:
            signum = self._queue.get()
            if signum < 0:
                return
            name = signal_name(signum)
            try:
                self.cli.client.container_kill(self.container_id, name)
                self.sent.append(name)
            except Exception:  # noqa: BLE001 - docker only logs this at debug level
                pass

    def stop(self) -> None:
        for s, old in self._old.items():
            try:
                signal.signal(s, old)
            except (OSError, ValueError, TypeError):
                pass
        self._old.clear()
        self._queue.put(-1)


class TtyResizer:
    """Send the terminal size to the container (or exec) now and on every SIGWINCH."""

    def __init__(self, cli: Cli, ident: str, is_exec: bool = False) -> None:
        self.cli = cli
        self.ident = ident
        self.is_exec = is_exec
        self._old: Any = None
        self._installed = False

    def resize(self, height: int | None = None, width: int | None = None) -> bool:
        if height is None or width is None:
            height, width = self.cli.streams.tty_size()
        if height == 0 and width == 0:
            return True
        try:
            if self.is_exec:
                self.cli.client.exec_resize(self.ident, height, width)
            else:
                self.cli.client.container_resize(self.ident, height, width)
        except Exception:  # noqa: BLE001
            return False
        return True

    def start(self) -> TtyResizer:
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGWINCH, self._on_winch)
                self._installed = True
            except (OSError, ValueError):
                pass
        if not self.resize():
            def retry() -> None:
                import time

                for i in range(10):
                    time.sleep((i + 1) * 0.01)
                    if self.resize():
                        return
                self.cli.eprint("failed to resize tty, using default size")
            threading.Thread(target=retry, daemon=True).start()
        return self

    def _on_winch(self, signum: int, frame: Any) -> None:
        threading.Thread(target=self.resize, daemon=True).start()

    def stop(self) -> None:
        if self._installed:
            try:
                signal.signal(signal.SIGWINCH, self._old or signal.SIG_DFL)
            except (OSError, ValueError, TypeError):
                pass
            self._installed = False
