"""Exec sessions: ``docker exec``. A process started in every namespace of a running
container, in its cgroup and root, by an exec shim of its own (runtime/execshim.py: the
launcher forks one per session; it reaps the process and exits after it).

Exec records live in memory, as dockerd's do: they do not survive a daemon restart. The
exit code is recorded from the exec shim's exit report, which comes before the session's
stream is closed, because the docker CLI reads it from ``GET /exec/ID/json`` right after
the stream ends.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from dockyard import errors
from dockyard.engine.containers import ContainerService
from dockyard.engine.spec import ALL_CAPS, container_env
from dockyard.ids import generate_id
from dockyard.oci import runtime_spec as rs
from dockyard.runtime.cgroups import warm_up
from dockyard.runtime.shimclient import ExecSession, ShimStream

__all__ = ["ExecService"]

log = logging.getLogger("dockyard.engine")


@dataclass
class _Exec:
    id: str
    container_id: str
    cmd: list[str]
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    env: list[str]
    user: str
    workdir: str
    privileged: bool
    detach_keys: str
    console_size: list[int] | None
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    session: ExecSession | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _check_strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise errors.InvalidArgument(
            f"json: cannot unmarshal into Go struct field ExecOptions.{name} of type []string"
        )
    return list(value)


class ExecService:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.execs: dict[str, _Exec] = {}

    def get(self, exec_id: str) -> _Exec:
        ex = self.execs.get(exec_id)
        if ex is None:
            raise errors.NotFound(f"No such exec instance: {exec_id}")
        return ex

    def create(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: the exec config must be an object")
        c = self.containers.get(ref)
        cmd = _check_strings(body.get("Cmd"), "Cmd")
        env = _check_strings(body.get("Env"), "Env")
        if c.status.value == "paused":
            raise errors.Conflict(f"container {c.id} is paused, unpause the container before exec")
        if not c.status.is_running():
            raise errors.Conflict(f"container {c.id} is not running")
        if not cmd:
            raise errors.InvalidArgument("No exec command specified")
        console = body.get("ConsoleSize")
        ex = _Exec(
            id=generate_id(),
            container_id=c.id,
            cmd=cmd,
            tty=bool(body.get("Tty")),
            stdin=bool(body.get("AttachStdin")),
            stdout=bool(body.get("AttachStdout")),
            stderr=bool(body.get("AttachStderr")),
            env=env,
            user=str(body.get("User") or ""),
            workdir=str(body.get("WorkingDir") or ""),
            privileged=bool(body.get("Privileged")),
            detach_keys=str(body.get("DetachKeys") or ""),
            console_size=[int(x) for x in console]
            if isinstance(console, list) and len(console) == 2
            else None,
        )
        self.execs[ex.id] = ex
        c.exec_ids.append(ex.id)
        # the start follows at once and moves a process into the container's cgroup: begin
        # the kernel's slow first-mover wait for that lock now (runtime.cgroups.warm_up)
        asyncio.get_running_loop().run_in_executor(None, warm_up)
        return {"Id": ex.id}

    def _process(self, ex: _Exec, tty: bool, console: list[int] | None) -> dict[str, Any]:
        c = self.containers.get(ex.container_id)
        cfg = dict(c.config)
        caps = (
            list(ALL_CAPS)
            if ex.privileged or c.host_config.get("Privileged")
            else list(rs.DEFAULT_CAPABILITIES)
        )
        size = console or ex.console_size
        return rs.default_process(
            ex.cmd,
            env=rs.merge_env(container_env(cfg), ex.env),
            cwd=ex.workdir or cfg.get("WorkingDir") or "/",
            terminal=tty,
            console_size=(int(size[0]), int(size[1]))
            if tty and size and size[0] and size[1]
            else None,
            capabilities=caps,
            no_new_privileges=not (ex.privileged or c.host_config.get("Privileged")),
        )

    def check_startable(self, exec_id: str) -> None:
        """NotFound / Conflict as ``start`` would raise them, without starting anything."""
        ex = self.get(exec_id)
        if ex.started:
            raise errors.Conflict(
                f"Exec command {ex.id} is already running"
                if ex.running
                else f"exec {ex.id} has already run"
            )
        c = self.containers.get(ex.container_id)
        lv = self.containers.live.get(c.id)
        if not c.status.is_running() or lv is None or lv.shim is None:
            raise errors.Conflict(f"container {c.id} is not running")

    async def start(
        self,
        exec_id: str,
        *,
        detach: bool,
        tty: bool | None = None,
        console: list[int] | None = None,
    ) -> ShimStream | None:
        """Start the exec; its stream (None when detached). The exit is recorded by a
        background task; ``finished(exec_id)`` waits for it."""
        self.check_startable(exec_id)
        ex = self.get(exec_id)
        c = self.containers.get(ex.container_id)
        use_tty = ex.tty if tty is None else bool(tty)
        ex.tty = use_tty
        ex.started = True
        config = {
            "id": ex.id,
            "init_pid": int(c.state.get("Pid") or 0),
            # (no cgroup_path: the exec joins the init's own cgroups, read from /proc —
            # where the container kept its spare's cgroup, its name is not the container's)
            "process": self._process(ex, use_tty, console),
            "user": ex.user or c.config.get("User") or "",
            "tty": use_tty,
            "stdin": ex.stdin and not detach,
            "stdout": ex.stdout,
            "stderr": ex.stderr,
            "detach": detach,
        }
        try:
            session = await self.containers.launcher.exec(config, stream=not detach)
        except errors.OCIRuntimeError as exc:
            low = exc.message.lower()
            ex.exit_code = 127 if "not found" in low or "no such file" in low else 126
            self._ended(ex)
            raise errors.OCIRuntimeError(
                "OCI runtime exec failed: exec failed: unable to start container process: "
                f"{exc.message}: unknown"
            ) from None
        except errors.DockyardError:
            ex.exit_code = 126
            self._ended(ex)
            raise
        ex.running = True
        ex.session = session
        ex.pid = session.pid
        asyncio.get_running_loop().create_task(self._record_exit(ex, session))
        return session.stream

    async def _record_exit(self, ex: _Exec, session: ExecSession) -> None:
        try:
            ex.exit_code = await session.wait()
        except Exception as exc:  # the exec shim went away without a report
            log.debug("exec %s: %s", ex.id[:12], exc)
            ex.exit_code = 137 if ex.exit_code is None else ex.exit_code
        self._ended(ex)

    def _ended(self, ex: _Exec) -> None:
        ex.running = False
        ex.pid = 0
        ex.session = None
        ex.done.set()
        c = self.containers.by_id.get(ex.container_id)
        if c is not None and ex.id in c.exec_ids:
            c.exec_ids.remove(ex.id)

    async def finished(self, exec_id: str, timeout: float = 10.0) -> None:
        ex = self.get(exec_id)
        try:
            await asyncio.wait_for(ex.done.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        ex = self.get(exec_id)
        if not ex.running or ex.session is None:
            raise errors.Conflict(f"exec {ex.id} is not running")
        if not ex.tty:
            return
        await ex.session.call("resize", height=height, width=width)

    def inspect(self, exec_id: str) -> dict[str, Any]:
        ex = self.get(exec_id)
        return {
            "CanRemove": False,
            "ContainerID": ex.container_id,
            "DetachKeys": ex.detach_keys,
            "ExitCode": ex.exit_code,
            "ID": ex.id,
            "OpenStderr": ex.stderr,
            "OpenStdin": ex.stdin,
            "OpenStdout": ex.stdout,
            "ProcessConfig": {
                "arguments": ex.cmd[1:],
                "entrypoint": ex.cmd[0],
                "privileged": ex.privileged,
                "tty": ex.tty,
                "user": ex.user,
            },
            "Running": ex.running,
            "Pid": ex.pid,
        }

    def forget_container(self, container_id: str) -> None:
        """Drop the exec records of a removed container."""
        for eid in [e.id for e in self.execs.values() if e.container_id == container_id]:
            del self.execs[eid]
