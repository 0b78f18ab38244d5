"""Containers: create, start, attach, wait, logs, stop, kill, restart, rename, top, remove,
prune, list, inspect, and the reconciliation with live shims after a daemon restart.

Every state change is persisted (store.containers) before it is announced. Each container
has an asyncio lock so that two verbs never interleave on it. The container's process is
never a child of the daemon: it belongs to its shim (the native runtime/native/shim.c, or
runtime/shim.py as the fallback), which the launcher forks; the engine talks to the shim
over its socket, with the same JSON-line protocol for both (docs/architecture.md §3).
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import os
import re
import shutil
import signal as _signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dockyard import errors
from dockyard.engine import restart
from dockyard.engine.config import EngineConfig
from dockyard.engine.model import Container, Status, merge_config, parse_signal
from dockyard.engine.mounts import check_host_config
from dockyard.ids import generate_id, random_name, resolve_prefix, validate_name
from dockyard.oci.mount import Mount
from dockyard.runtime.cgroups import warm_up
from dockyard.runtime.plan import spec_fits_spare
from dockyard.runtime.shimclient import Launcher, ShimClient, ShimGone, ShimStream
from dockyard.store.containers import ContainerRecords
from dockyard.util.atomicfile import write_atomic
from dockyard.util.timefmt import now_ns, parse_rfc3339, rfc3339nano

__all__ = ["ContainerImages", "ContainerService", "LogEntry"]

log = logging.getLogger("dockyard.engine")


class ContainerImages(Protocol):
    """What containers need from the image store (implemented by image.ImageService)."""

    def resolve_image(self, ref: str) -> tuple[str, dict[str, Any]]:
        """(image id, image config's ``config`` object); NoSuchImage(``No such image: ref``)."""

    def image_name_for(self, as_typed: str, image_id: str) -> str:
        """What ``ps`` shows in IMAGE: ``as_typed`` if it still names ``image_id``, else the id."""

    def prepare_rootfs(self, image_id: str, key: str) -> list[Mount]:
        """An active snapshot for container ``key`` over the image's layers."""

    def rootfs_mounts(self, key: str) -> list[Mount]: ...

    def remove_rootfs(self, key: str) -> None: ...

    def rootfs_usage(self, key: str) -> tuple[int, int]:
        """(SizeRw, SizeRootFs) in bytes."""

    def graph_driver(self, key: str) -> dict[str, Any]: ...


SpecBuilder = Callable[[Container, Path], dict[str, Any]]


@dataclass
class LogEntry:
    stream: str  # "stdout" | "stderr"
    data: bytes
    time: str


@dataclass
class _Live:
    """What the engine holds in memory for a container besides its document."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    shim: ShimClient | None = None
    monitor: asyncio.Task[None] | None = None
    exit_waiters: list[asyncio.Future[dict[str, Any]]] = field(default_factory=list)
    remove_waiters: list[asyncio.Future[dict[str, Any]]] = field(default_factory=list)
    # attach requests made before start: (future of the shim stream, (stdin, stdout, stderr))
    pending_attach: list[tuple[asyncio.Future[Any], tuple[bool, bool, bool]]] = field(
        default_factory=list
    )
    state_changed: asyncio.Event = field(default_factory=asyncio.Event)
    restart_delay: float = 0.0  # the last back-off of the restart policy
    restart_task: asyncio.Task[None] | None = None


def _exit_code_for(message: str) -> int:
    """The exit code docker records for a start that failed (the CLI picks its own too)."""
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    if "permission denied" in low:
        return 126
    return 128


class ContainerService:
    def __init__(
        self,
        config: EngineConfig,
        records: ContainerRecords,
        images: ContainerImages,
        launcher: Launcher,
        build_spec: SpecBuilder,
    ) -> None:
        self.cfg = config
        self.records = records
        self.images = images
        self.launcher = launcher
        self.build_spec = build_spec
        self.on_remove: list[
            Callable[[str], None]
        ] = []  # called with the id of a removed container
        self.by_id: dict[str, Container] = {}
        self.names: dict[str, str] = {}  # "/name" -> id
        self.live: dict[str, _Live] = {}
        self.cfg.containers_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.shim_dir.mkdir(parents=True, exist_ok=True)
        for doc in records.all():
            c = Container.from_doc(doc)
            c.exec_ids.clear()  # exec sessions do not outlive the daemon that ran them
            self._index(c)

    # --- lookup -------------------------------------------------------------------

    def _index(self, c: Container) -> None:
        self.by_id[c.id] = c
        self.names[c.name] = c.id
        self.live.setdefault(c.id, _Live())

    def get(self, ref: str) -> Container:
        """By full id, name (with or without '/') or unique id prefix, as docker resolves."""
        if ref in self.by_id:
            return self.by_id[ref]
        name = ref if ref.startswith("/") else "/" + ref
        if name in self.names:
            return self.by_id[self.names[name]]
        try:
            return self.by_id[resolve_prefix(ref, self.by_id)]
        except errors.NotFound:
            raise errors.NotFound(f"No such container: {ref}") from None

    def _persist(self, c: Container) -> None:
        self.records.update(c.id, c.name, c.to_doc())

    def _changed(self, c: Container) -> None:
        lv = self.live[c.id]
        lv.state_changed.set()
        lv.state_changed = asyncio.Event()

    def containers_using(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) for every container created from ``image_id``."""
        return [
            (c.id, c.status.is_running()) for c in self.by_id.values() if c.image_id == image_id
        ]

    def counts(self) -> dict[str, int]:
        out = {
            "Containers": len(self.by_id),
            "ContainersRunning": 0,
            "ContainersPaused": 0,
            "ContainersStopped": 0,
        }
        for c in self.by_id.values():
            st = c.status
            if st is Status.PAUSED:
                out["ContainersPaused"] += 1
            elif st.is_running():
                out["ContainersRunning"] += 1
            else:
                out["ContainersStopped"] += 1
        return out

    # --- create -------------------------------------------------------------------

    def create(self, name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: the container config must be an object")
        image_ref = body.get("Image")
        if not image_ref or not isinstance(image_ref, str):
            raise errors.InvalidArgument("Config cannot be empty in order to create a container")
        host_config = body.get("HostConfig")
        if host_config is None:
            host_config = {}
        if not isinstance(host_config, dict):
            raise errors.InvalidArgument(
                "json: cannot unmarshal array into Go struct field .HostConfig "
                "of type container.HostConfig"
                if isinstance(host_config, list)
                else "invalid JSON: HostConfig must be an object"
            )
        _check_types(body)
        if name:
            full = validate_name(name)
            if full in self.names:
                raise errors.Conflict(
                    f'Conflict. The container name "{full}" is already in use by container '
                    f'"{self.names[full]}". You have to remove (or rename) that container to be '
                    f"able to reuse that name."
                )
        else:
            full = "/" + random_name(frozenset(self.names))
        image_id, image_cfg = self.images.resolve_image(image_ref)
        user_cfg = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
        cfg = merge_config(user_cfg, image_cfg)
        argv = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
        if not argv:
            raise errors.InvalidArgument("no command specified")
        cid = generate_id()
        cfg["Image"] = image_ref
        if not cfg.get("Hostname"):
            cfg["Hostname"] = cid[:12]
        cfg.setdefault("Domainname", "")
        for key, default in (
            ("AttachStdin", False),
            ("AttachStdout", False),
            ("AttachStderr", False),
            ("Tty", False),
            ("OpenStdin", False),
            ("StdinOnce", False),
            ("WorkingDir", ""),
            ("User", ""),
        ):
            cfg.setdefault(key, default)
        hc = _normalise_host_config(host_config)
        check_host_config(hc)  # binds, ports, network mode: refuse what cannot work
        cdir = self.cfg.containers_dir / cid
        c = Container(
            id=cid,
            name=full,
            created=rfc3339nano(now_ns()),
            image_id=image_id,
            config=cfg,
            host_config=hc,
            networking=body.get("NetworkingConfig") or {},
            paths={
                "LogPath": str(cdir / f"{cid}-json.log"),
                "HostnamePath": str(cdir / "hostname"),
                "HostsPath": str(cdir / "hosts"),
                "ResolvConfPath": str(cdir / "resolv.conf"),
            },
        )
        cdir.mkdir(parents=True)
        try:
            (cdir / "rootfs").mkdir()
            self._write_net_files(c)
            self.images.prepare_rootfs(image_id, cid)
            try:
                self.records.insert(cid, full, image_id, c.created, c.to_doc())
            except BaseException:
                self.images.remove_rootfs(cid)
                raise
        except BaseException:
            shutil.rmtree(cdir, ignore_errors=True)
            raise
        self._index(c)
        return {"Id": cid, "Warnings": []}

    def _write_net_files(self, c: Container) -> None:
        hostname = c.config.get("Hostname") or c.id[:12]
        domain = c.config.get("Domainname") or ""
        write_atomic(c.paths["HostnamePath"], hostname + "\n", durable=False)
        fqdn = f"{hostname}.{domain}" if domain else hostname
        hosts = (
            "127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            "ff02::2\tip6-allrouters\n"
            f"127.0.1.1\t{fqdn}" + (f" {hostname}" if domain else "") + "\n"
        )
        for extra in c.host_config.get("ExtraHosts") or []:
            host, _, ip = str(extra).partition(":")
            if ip:
                hosts += f"{ip}\t{host}\n"
        write_atomic(c.paths["HostsPath"], hosts, durable=False)
        write_atomic(c.paths["ResolvConfPath"], _resolv_conf(c.host_config), durable=False)

    # --- start --------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        c = self.get(ref)
        lv = self.live[c.id]
        async with lv.lock:
            if not c.status.is_running():  # a user's start: the restart policy applies again
                c.manually_stopped = False
                c.restart_count = 0
            await self._start_locked(c, lv)

    async def _start_locked(self, c: Container, lv: _Live) -> None:
        st = c.status
        if st is Status.PAUSED:
            raise errors.Conflict("cannot start a paused container, try unpause instead")
        if st.is_running():
            raise errors.NotModified("container already started")
        if not st.can_start():
            raise errors.Conflict(f"cannot start a container that is {st.value}")
        cdir = self.cfg.containers_dir / c.id
        state_dir = self.cfg.shim_dir / c.id
        spec = self.build_spec(c, cdir)
        write_atomic(cdir / "config.json", json.dumps(spec), durable=False)
        shutil.rmtree(state_dir, ignore_errors=True)
        shim_cfg = {
            "id": c.id,
            "bundle": str(cdir),
            "state_dir": str(state_dir),
            "log_path": c.paths["LogPath"],
            "tty": c.tty,
            "open_stdin": bool(c.config.get("OpenStdin")),
            "stdin_once": bool(c.config.get("StdinOnce")),
            "rootfs_mounts": [m.to_json() for m in self.images.rootfs_mounts(c.id)],
            "cgroup_path": f"{self.cfg.cgroup_parent}/{c.id}",
            "fresh": not spec_fits_spare(spec),
            # nobody to attach before the start: the native shim starts the init as soon
            # as it is ready, saving a round trip (it then waits for our "wait")
            "start": not lv.pending_attach,
        }
        if shim_cfg["fresh"]:
            # a fresh init is moved into its cgroup ~10 ms from now: start the kernel's slow
            # first-mover wait for that lock now, beside the spawn (runtime.cgroups.warm_up;
            # a spare init is in its cgroup already: no move, no wait)
            asyncio.get_running_loop().run_in_executor(None, warm_up)
        try:
            spawned = await self.launcher.spawn(shim_cfg)
        except errors.OCIRuntimeError as exc:
            msg = (
                f"failed to create task for container: failed to create shim task: "
                f"OCI runtime create failed: dockyard-runtime create failed: "
                f"unable to start container process: {exc.message}: unknown"
            )
            c.set_start_failed(_exit_code_for(exc.message), msg)
            self._persist(c)
            self._fail_pending_attach(lv, msg)
            shutil.rmtree(state_dir, ignore_errors=True)
            self._auto_remove_after_failed_start(c)
            raise errors.OCIRuntimeError(msg) from None
        shim = ShimClient(state_dir)
        lv.shim = shim
        # The monitor's wait is registered before the start, so the exit cannot be missed.
        waiter = await shim.open_wait()
        await self._connect_pending_attach(c, lv)
        if spawned.get("started_at"):  # started already (see "start" above)
            c.set_running(int(spawned.get("pid") or 0), spawned["started_at"])
            self._persist(c)
            self._changed(c)
            lv.monitor = asyncio.create_task(self._monitor(c, waiter))
            return
        try:
            reply = await shim.call("start")
        except errors.DockyardError as exc:
            waiter.cancel()
            await self._kill_quietly(shim)
            c.set_start_failed(_exit_code_for(exc.message), exc.message)
            self._persist(c)
            self._auto_remove_after_failed_start(c)
            raise errors.OCIRuntimeError(exc.message) from None
        c.set_running(int(reply.get("pid") or 0), reply.get("started_at") or rfc3339nano(now_ns()))
        self._persist(c)
        self._changed(c)
        lv.monitor = asyncio.create_task(self._monitor(c, waiter))

    def _auto_remove_after_failed_start(self, c: Container) -> None:
        """dockerd removes an auto-remove container whose start failed; ``run --rm`` waits
        for that removal (``wait?condition=removed``) after the failed start."""
        if not c.host_config.get("AutoRemove"):
            return

        async def remove() -> None:
            try:
                await self.remove(c.id, force=True)
            except errors.DockyardError as exc:
                log.warning("auto-remove of %s failed: %s", c.short_id, exc)

        asyncio.get_running_loop().create_task(remove())

    async def _kill_quietly(self, shim: ShimClient) -> None:
        try:
            await shim.call("kill", signal=int(_signal.SIGKILL))
        except errors.DockyardError:
            pass

    async def _connect_pending_attach(self, c: Container, lv: _Live) -> None:
        assert lv.shim is not None
        pending, lv.pending_attach = lv.pending_attach, []
        for fut, (i, o, e) in pending:
            if fut.done():
                continue
            try:
                fut.set_result(await lv.shim.attach(i, o, e))
            except errors.DockyardError as exc:
                fut.set_exception(exc)

    def _fail_pending_attach(self, lv: _Live, message: str) -> None:
        pending, lv.pending_attach = lv.pending_attach, []
        for fut, _ in pending:
            if not fut.done():
                fut.set_exception(errors.Conflict(message))

    async def _monitor(self, c: Container, waiter: asyncio.Future[dict[str, Any]]) -> None:
        """Wait for the container to exit, record it, wake waiters, auto-remove."""
        lv = self.live[c.id]
        try:
            st = await waiter
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            assert lv.shim is not None
            st = lv.shim.status_file() or {}
            if st.get("exit_code") is None:
                log.warning("lost the shim of %s: %s", c.short_id, exc)
                st = {
                    "exit_code": 255,
                    "finished_at": rfc3339nano(now_ns()),
                    "error": "the container's shim exited unexpectedly",
                }
        await self._record_exit(c, st)

    async def _record_exit(self, c: Container, st: dict[str, Any]) -> None:
        lv = self.live[c.id]
        raw = st.get("exit_code")
        code = 255 if raw is None else int(raw)
        c.set_exited(code, st.get("finished_at") or rfc3339nano(now_ns()), st.get("error") or "")
        lv.shim = None
        lv.monitor = None
        if c.id in self.by_id:
            self._persist(c)
        shutil.rmtree(self.cfg.shim_dir / c.id, ignore_errors=True)
        self._changed(c)
        result = {"StatusCode": code, "Error": None}
        waiters, lv.exit_waiters = lv.exit_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(result)
        if c.host_config.get("AutoRemove") and c.id in self.by_id:
            try:
                await self.remove(c.id, force=True)
            except errors.DockyardError as exc:
                log.warning("auto-remove of %s failed: %s", c.short_id, exc)
        elif c.id in self.by_id:
            self._maybe_restart(c, code)

    def _maybe_restart(self, c: Container, code: int) -> None:
        """Apply the restart policy (engine.restart) after an exit: start again after the
        back-off. The container stays ``exited`` meanwhile, so stop/rm/kill need no special
        case; a user's stop or kill in between cancels the restart."""
        policy = c.host_config.get("RestartPolicy") or {}
        if not restart.should_restart(policy, code, c.manually_stopped, c.restart_count):
            return
        lv = self.live[c.id]
        ran = (
            _ns_of(c.state.get("FinishedAt") or "") - _ns_of(c.state.get("StartedAt") or "")
        ) / 1e9
        lv.restart_delay = restart.next_delay(lv.restart_delay, ran)

        async def again() -> None:
            await asyncio.sleep(lv.restart_delay)
            if c.id not in self.by_id or c.manually_stopped:
                return
            async with lv.lock:
                if c.status.is_running() or c.manually_stopped or c.id not in self.by_id:
                    return
                c.restart_count += 1
                try:
                    await self._start_locked(c, lv)
                except errors.DockyardError as exc:
                    log.warning("restart of %s failed: %s", c.short_id, exc)

        lv.restart_task = asyncio.get_running_loop().create_task(again())

    # --- attach / wait ----------------------------------------------------------------

    async def attach(self, ref: str, stdin: bool, stdout: bool, stderr: bool) -> ShimStream:
        """The container's live streams. For a container that is not running, the stream
        opens at its next start (docker's attach-then-start used by ``run`` and ``start -a``)."""
        c = self.get(ref)
        lv = self.live[c.id]
        if c.status is Status.PAUSED:
            raise errors.Conflict(
                f"container {c.id} is paused, unpause the container before attach"
            )
        if c.status.is_running() and lv.shim is not None:
            return await lv.shim.attach(stdin, stdout, stderr)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        lv.pending_attach.append((fut, (stdin, stdout, stderr)))
        try:
            return await fut  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            lv.pending_attach = [p for p in lv.pending_attach if p[0] is not fut]
            raise

    def wait_future(self, ref: str, condition: str) -> asyncio.Future[dict[str, Any]]:
        """A future for ``POST /wait``: resolved with ``{"StatusCode", "Error"}``.

        ``not-running`` (default) resolves at once for a container that is not running;
        ``next-exit`` at the next exit; ``removed`` once the container is removed."""
        c = self.get(ref)
        lv = self.live[c.id]
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        condition = condition or "not-running"
        if condition == "removed":
            lv.remove_waiters.append(fut)
        elif condition == "next-exit":
            lv.exit_waiters.append(fut)
        elif condition == "not-running":
            if c.status.is_running():
                lv.exit_waiters.append(fut)
            else:
                fut.set_result({"StatusCode": int(c.state.get("ExitCode", 0)), "Error": None})
        else:
            raise errors.InvalidArgument(f"invalid condition: {condition!r}")
        return fut

    # --- logs ---------------------------------------------------------------------------

    async def logs(
        self,
        ref: str,
        *,
        stdout: bool,
        stderr: bool,
        follow: bool = False,
        since_ns: int = 0,
        until_ns: int = 0,
        tail: int = -1,
    ) -> AsyncIterator[LogEntry]:
        c = self.get(ref)
        path = Path(c.paths["LogPath"])
        want = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        pos = 0
        entries, pos = await asyncio.to_thread(_read_log, path, 0)
        if tail >= 0:
            entries = [e for e in entries if e.stream in want and _in_window(e, since_ns, until_ns)]
            entries = entries[-tail:] if tail else []
        for e in entries:
            if e.stream in want and _in_window(e, since_ns, until_ns):
                yield e
        if not follow:
            return
        while True:
            running = self.by_id.get(c.id) is c and c.status.is_running()
            changed = self.live[c.id].state_changed if c.id in self.live else None
            more, pos = await asyncio.to_thread(_read_log, path, pos)
            for e in more:
                if e.stream in want and _in_window(e, since_ns, until_ns):
                    yield e
            if until_ns and now_ns() > until_ns:
                return
            if not running:
                return
            if changed is not None:
                try:
                    await asyncio.wait_for(changed.wait(), 0.1)
                except asyncio.TimeoutError:
                    pass

    # --- stop / kill / restart ------------------------------------------------------------

    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        lv = self.live[c.id]
        async with lv.lock:
            await self._stop_locked(c, lv, timeout, sig)

    async def _stop_locked(
        self, c: Container, lv: _Live, timeout: int | None, sig: str | None
    ) -> None:
        c.manually_stopped = True  # also cancels a pending restart
        if not c.status.is_running() or lv.shim is None:
            self._persist(c)
            raise errors.NotModified("container already stopped")
        self._persist(c)
        signum = parse_signal(sig or c.config.get("StopSignal") or "SIGTERM")
        if timeout is None:
            st = c.config.get("StopTimeout")
            timeout = int(st) if st is not None else 10
        fut = asyncio.get_running_loop().create_future()
        lv.exit_waiters.append(fut)
        await self._signal(lv, signum)
        try:
            await asyncio.wait_for(asyncio.shield(fut), None if timeout < 0 else timeout)
            return
        except asyncio.TimeoutError:
            pass
        await self._signal(lv, int(_signal.SIGKILL))
        await fut

    async def _signal(self, lv: _Live, signum: int) -> None:
        if lv.shim is None:
            return
        try:
            await lv.shim.call("kill", signal=signum)
        except (errors.Conflict, ShimGone):
            pass  # it exited meanwhile; the monitor records it

    async def kill(self, ref: str, sig: str | None = None) -> None:
        c = self.get(ref)
        lv = self.live[c.id]
        signum = parse_signal(sig, default=int(_signal.SIGKILL))
        if not c.status.is_running() or lv.shim is None:
            raise errors.Conflict(f"Cannot kill container: {ref}: container {c.id} is not running")
        if signum in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT):
            c.manually_stopped = True  # docker: a killed container is not restarted
            self._persist(c)
        fut = None
        if signum == _signal.SIGKILL:
            fut = asyncio.get_running_loop().create_future()
            lv.exit_waiters.append(fut)
        await self._signal(lv, signum)
        if fut is not None:  # docker's kill -9 returns once the container is gone
            try:
                await asyncio.wait_for(fut, 10)
            except asyncio.TimeoutError:
                pass

    async def restart(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        lv = self.live[c.id]
        async with lv.lock:
            try:
                await self._stop_locked(c, lv, timeout, sig)
            except errors.NotModified:
                pass
            if lv.monitor is not None:
                await asyncio.shield(lv.monitor)
            c.manually_stopped = False
            c.restart_count = 0
            await self._start_locked(c, lv)
            self._persist(c)

    async def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        lv = self.live[c.id]
        if not c.status.is_running() or lv.shim is None:
            raise errors.Conflict(f"Container {c.id} is not running")
        if not c.tty:
            return  # docker accepts and ignores a resize of a container without a tty
        await lv.shim.call("resize", height=height, width=width)

    # --- rename / top -----------------------------------------------------------------

    def rename(self, ref: str, new: str) -> None:
        c = self.get(ref)
        if not new:
            raise errors.InvalidArgument("Neither old nor new names may be empty")
        full = validate_name(new)
        if full == c.name:
            raise errors.InvalidArgument(
                "Renaming a container with the same name as its current name"
            )
        if full in self.names:
            raise errors.Conflict(
                f'Conflict. The container name "{full}" is already in use by container '
                f'"{self.names[full]}". You have to remove (or rename) that container to be '
                f"able to reuse that name."
            )
        old = c.name
        c.name = full
        try:
            self._persist(c)
        except BaseException:
            c.name = old
            raise
        del self.names[old]
        self.names[full] = c.id

    async def top(self, ref: str, ps_args: str = "") -> dict[str, Any]:
        c = self.get(ref)
        if not c.status.is_running() or not c.state.get("Pid"):
            raise errors.Conflict(f"container {c.id} is not running")
        pids = _pids_in_pidns(int(c.state["Pid"]))
        args = ps_args.split() if ps_args else ["-ef"]
        proc = await asyncio.create_subprocess_exec(
            "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise errors.Internal(f"ps: {err.decode(errors='replace').strip()}")
        return _parse_ps(out.decode(errors="replace"), pids)

    # --- remove / prune ---------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        lv = self.live[c.id]
        async with lv.lock:
            if c.status.is_running():
                if not force:
                    raise errors.Conflict(
                        f'cannot remove container "{c.name}": container is running: stop the '
                        f"container before removing or force remove"
                    )
                c.manually_stopped = True
                fut = asyncio.get_running_loop().create_future()
                lv.exit_waiters.append(fut)
                await self._signal(lv, int(_signal.SIGKILL))
                try:
                    await asyncio.wait_for(fut, 15)
                except asyncio.TimeoutError:
                    raise errors.Internal(f"could not kill container {c.id}") from None
                if lv.monitor is not None:
                    await asyncio.shield(lv.monitor)
            if c.id not in self.by_id:
                return  # auto-removed meanwhile
            self._remove_locked(c)

    def _remove_locked(self, c: Container) -> None:
        lv = self.live[c.id]
        c.state["Status"] = Status.REMOVING.value
        self.images.remove_rootfs(c.id)
        self.records.delete(c.id)
        shutil.rmtree(self.cfg.containers_dir / c.id, ignore_errors=True)
        shutil.rmtree(self.cfg.shim_dir / c.id, ignore_errors=True)
        del self.by_id[c.id]
        self.names.pop(c.name, None)
        self._fail_pending_attach(lv, f"container {c.id} was removed")
        result = {"StatusCode": int(c.state.get("ExitCode", 0)), "Error": None}
        for fut in lv.remove_waiters + lv.exit_waiters:
            if not fut.done():
                fut.set_result(result)
        lv.state_changed.set()
        self.live.pop(c.id, None)
        for hook in self.on_remove:
            hook(c.id)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        deleted: list[str] = []
        reclaimed = 0
        until = filters.get("until", [])
        for c in list(self.by_id.values()):
            if c.status.is_running() or not _labels_match(
                c, filters.get("label", []), filters.get("label!", [])
            ):
                continue
            if until and _ns_of(c.created) >= _until_ns(until[0]):
                continue
            try:
                reclaimed += self.images.rootfs_usage(c.id)[0]
            except errors.DockyardError:
                pass
            try:
                await self.remove(c.id)
            except errors.Conflict:
                continue
            deleted.append(c.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # --- list / inspect ------------------------------------------------------------------

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        c = self.get(ref)
        sizes = self.images.rootfs_usage(c.id) if size else None
        return c.inspect(self.images.graph_driver(c.id), sizes)

    def list(
        self,
        all_: bool = False,
        limit: int = -1,
        size: bool = False,
        filters: dict[str, list[str]] | None = None,
    ) -> list[dict[str, Any]]:
        filters = filters or {}
        _check_filters(filters)
        cs = sorted(self.by_id.values(), key=lambda c: c.created, reverse=True)
        if limit > 0:
            all_ = True
        out = []
        now = now_ns()
        names: dict[tuple[str, str], str] = {}  # (as typed, image id) -> shown name, per request
        before = self.get(filters["before"][0]).created if filters.get("before") else None
        since = self.get(filters["since"][0]).created if filters.get("since") else None
        for c in cs:
            if (
                not all_
                and not c.status.is_running()
                and "status" not in filters
                and "exited" not in filters
            ):
                continue
            if before is not None and c.created >= before:
                continue
            if since is not None and c.created <= since:
                continue
            if not self._matches(c, filters):
                continue
            sizes = self.images.rootfs_usage(c.id) if size else None
            key = (str(c.config.get("Image", "")), c.image_id)
            image_name = names.get(key)
            if image_name is None:
                image_name = names[key] = self.images.image_name_for(*key)
            out.append(c.summary(image_name, now, sizes))
            if 0 < limit <= len(out):
                break
        return out

    def _matches(self, c: Container, f: dict[str, builtins.list[str]]) -> bool:
        if f.get("status") and c.status.value not in f["status"]:
            return False
        if f.get("name") and not any(re.search(p, c.name[1:]) for p in f["name"]):
            return False
        if f.get("id") and not any(c.id.startswith(p) for p in f["id"]):
            return False
        if f.get("exited"):
            if c.status is not Status.EXITED or str(c.state.get("ExitCode")) not in f["exited"]:
                return False
        if f.get("ancestor"):
            ok = False
            for a in f["ancestor"]:
                try:
                    iid, _ = self.images.resolve_image(a)
                except errors.DockyardError:
                    iid = ""
                if (
                    c.image_id == iid
                    or c.config.get("Image") == a
                    or c.image_id.startswith(a)
                    or c.image_id[7:].startswith(a)
                ):
                    ok = True
            if not ok:
                return False
        if not _labels_match(c, f.get("label", []), []):
            return False
        if f.get("is-task") == ["true"]:
            return False  # no swarm tasks here
        if f.get("network") and (c.host_config.get("NetworkMode") or "bridge") not in f["network"]:
            return False
        return True

    # --- daemon start-up ----------------------------------------------------------------

    async def restore(self) -> None:
        """Reconcile the database with live shims after a (re)start of the daemon: running
        containers whose shim lives are monitored again, the others get the exit status
        their shim recorded (255 if none), and auto-remove containers that exited are removed."""
        for c in list(self.by_id.values()):
            if not c.status.is_running():
                # a shim spawned by a daemon that died before starting the container
                stale = ShimClient(self.cfg.shim_dir / c.id)
                if os.path.exists(stale.sock_path):
                    await self._kill_quietly(stale)
                    shutil.rmtree(self.cfg.shim_dir / c.id, ignore_errors=True)
                continue
            lv = self.live[c.id]
            shim = ShimClient(self.cfg.shim_dir / c.id)
            try:
                st = await shim.call("state")
            except (ShimGone, errors.DockyardError):
                st = shim.status_file() or {}
                if st.get("exit_code") is None:
                    st = {
                        "exit_code": 255,
                        "finished_at": rfc3339nano(now_ns()),
                        "error": "the container's shim was gone after a daemon restart",
                    }
                lv.shim = shim
                await self._record_exit(c, st)
                continue
            lv.shim = shim
            if st.get("status") == "exited":
                await self._record_exit(c, st)
                continue
            waiter = await shim.open_wait()
            lv.monitor = asyncio.create_task(self._monitor(c, waiter))
        # restart policies at daemon start (dockerd's): ``always`` containers, and
        # ``unless-stopped`` ones a user did not stop, that ran before and are down now
        for c in list(self.by_id.values()):
            policy = c.host_config.get("RestartPolicy") or {}
            if c.status is Status.EXITED and restart.on_daemon_start(policy, c.manually_stopped):
                try:
                    await self.start(c.id)
                except errors.DockyardError as exc:
                    log.warning("restart of %s at daemon start failed: %s", c.short_id, exc)


# --- helpers -------------------------------------------------------------------------------

_TYPES: dict[str, type | tuple[type, ...]] = {
    "Cmd": (list, str, type(None)),
    "Entrypoint": (list, str, type(None)),
    "Env": (list, type(None)),
    "Labels": (dict, type(None)),
    "Tty": bool,
    "OpenStdin": bool,
    "StdinOnce": bool,
    "AttachStdin": bool,
    "AttachStdout": bool,
    "AttachStderr": bool,
    "WorkingDir": str,
    "User": str,
    "Hostname": str,
    "Domainname": str,
    "StopSignal": str,
    "StopTimeout": (int, type(None)),
}


def _check_types(body: dict[str, Any]) -> None:
    for key, typ in _TYPES.items():
        if key in body and not isinstance(body[key], typ):
            raise errors.InvalidArgument(
                f"json: cannot unmarshal {type(body[key]).__name__} into Go struct field "
                f"Config.{key}"
            )
    for key in ("Cmd", "Entrypoint"):
        if isinstance(body.get(key), str):
            body[key] = [body[key]]
    for key in ("Cmd", "Entrypoint", "Env"):
        if isinstance(body.get(key), list) and not all(isinstance(x, str) for x in body[key]):
            raise errors.InvalidArgument(
                f"json: cannot unmarshal into Go struct field Config.{key} of type string"
            )
    if isinstance(body.get("Labels"), dict) and not all(
        isinstance(v, str) for v in body["Labels"].values()
    ):
        raise errors.InvalidArgument(
            "json: cannot unmarshal into Go struct field Config.Labels of type string"
        )


_HC_DEFAULTS: dict[str, Any] = {
    "Binds": None,
    "ContainerIDFile": "",
    "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "bridge",
    "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "VolumeDriver": "",
    "VolumesFrom": None,
    "ConsoleSize": [0, 0],
    "CapAdd": None,
    "CapDrop": None,
    "CgroupnsMode": "private",
    "Dns": [],
    "DnsOptions": [],
    "DnsSearch": [],
    "ExtraHosts": None,
    "GroupAdd": None,
    "IpcMode": "private",
    "Cgroup": "",
    "Links": None,
    "OomScoreAdj": 0,
    "PidMode": "",
    "Privileged": False,
    "PublishAllPorts": False,
    "ReadonlyRootfs": False,
    "SecurityOpt": None,
    "UTSMode": "",
    "UsernsMode": "",
    "ShmSize": 67108864,
    "Runtime": "dockyard",
    "Isolation": "",
    "Memory": 0,
    "NanoCpus": 0,
    "CpuShares": 0,
    "PidsLimit": None,
    "Mounts": None,
    "Init": None,
}


def _normalise_host_config(hc: dict[str, Any]) -> dict[str, Any]:
    out = dict(_HC_DEFAULTS)
    out.update({k: v for k, v in hc.items() if v is not None or k not in out})
    if out.get("NetworkMode") in ("", "default", None):
        out["NetworkMode"] = "bridge"
    lc = out.get("LogConfig") or {}
    if not lc.get("Type"):
        out["LogConfig"] = {"Type": "json-file", "Config": lc.get("Config") or {}}
    elif lc["Type"] != "json-file":
        raise errors.InvalidArgument(f"logging driver not supported: {lc['Type']}")
    if not out.get("ShmSize"):
        out["ShmSize"] = 67108864
    rp = out["RestartPolicy"] = restart.validate_policy(out.get("RestartPolicy"))
    if out.get("AutoRemove") and rp["Name"] != "no":
        raise errors.InvalidArgument("can't create 'AutoRemove' container with restart policy")
    return out


def _resolv_conf(hc: dict[str, Any]) -> str:
    """The container's resolv.conf: the host's, minus loopback name servers (unreachable
    from the container's network namespace), with the container's --dns options."""
    lines: list[str] = []
    try:
        host = Path("/etc/resolv.conf").read_text()
    except OSError:
        host = ""
    servers = list(hc.get("Dns") or [])
    search = list(hc.get("DnsSearch") or [])
    options = list(hc.get("DnsOptions") or [])
    for line in host.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1 and not servers:
            if not (parts[1].startswith("127.") or parts[1] == "::1"):
                lines.append(line)
        elif parts[0] == "search" and not search:
            lines.append(line)
        elif parts[0] == "options" and not options:
            lines.append(line)
    lines += [f"nameserver {s}" for s in servers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n" if lines else ""


def _read_log(path: Path, pos: int) -> tuple[list[LogEntry], int]:
    """Complete lines of the json-file log from byte ``pos``; the new position."""
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        return [], pos
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].splitlines():
        try:
            d = json.loads(line)
            out.append(
                LogEntry(d.get("stream", "stdout"), d.get("log", "").encode(), d.get("time", ""))
            )
        except ValueError:
            continue
    return out, pos + end


def _in_window(e: LogEntry, since_ns: int, until_ns: int) -> bool:
    if not since_ns and not until_ns:
        return True
    t = _ns_of(e.time)
    return (not since_ns or t >= since_ns) and (not until_ns or t <= until_ns)


def _ns_of(ts: str) -> int:
    try:
        return parse_rfc3339(ts)
    except ValueError:
        return 0


def _until_ns(v: str) -> int:
    try:
        return int(float(v) * 1e9)
    except ValueError:
        return _ns_of(v)


def _labels_match(c: Container, want: list[str], unwanted: list[str]) -> bool:
    labels = c.config.get("Labels") or {}

    def has(spec: str) -> bool:
        k, eq, v = spec.partition("=")
        return k in labels and (not eq or labels[k] == v)

    return all(has(s) for s in want) and not any(has(s) for s in unwanted)


_FILTERS = {
    "status",
    "name",
    "id",
    "label",
    "ancestor",
    "exited",
    "before",
    "since",
    "network",
    "is-task",
}
_STATUSES = {s.value for s in Status}


def _check_filters(f: dict[str, builtins.list[str]]) -> None:
    for k in f:
        if k not in _FILTERS:
            raise errors.InvalidArgument(f"invalid filter '{k}'")
    for s in f.get("status", []):
        if s not in _STATUSES:
            raise errors.InvalidArgument(f"invalid filter 'status={s}'")
    for code in f.get("exited", []):
        if not code.lstrip("-").isdigit():
            raise errors.InvalidArgument(f"invalid filter 'exited={code}'")


def _pids_in_pidns(init_pid: int) -> set[int]:
    """Host pids of every process in the pid namespace whose init is ``init_pid``."""
    try:
        target = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return set()
    out = set()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/ns/pid") == target:
                    out.add(int(p))
            except OSError:
                continue
    return out


def _parse_ps(out: str, pids: set[int]) -> dict[str, Any]:
    lines = out.splitlines()
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise errors.InvalidArgument("Couldn't find PID field in ps output") from None
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in pids:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}
