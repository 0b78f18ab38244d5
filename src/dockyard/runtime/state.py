"""``dockyard-runtime``'s own container state: ``<root>/<id>/state.json`` and the Status
state machine.

Layout (runc's)::

    <root>/                    default /run/dockyard/runtime
      <id>/
        state.json             ContainerState, replaced atomically (util.atomicfile)
        exec.fifo              exists between `create` and `start` (the init blocks on it)

The stored state is static (pid, its start time, bundle, cgroup path...); the *status* is
derived each time from the kernel: the init gone (or a zombie, or its pid reused) →
stopped; exec.fifo present → created; the cgroup frozen → paused; else running.
"""

from __future__ import annotations

import enum
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from dockyard.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from dockyard.linux.proc import process_start_time, process_state
from dockyard.util.atomicfile import write_atomic

__all__ = ["ContainerState", "StateStore", "Status", "check_transition", "validate_id"]


class Status(str, enum.Enum):
    """The OCI lifecycle states (plus runc's ``paused``)."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"

    def can_start(self) -> bool:
        return self is Status.CREATED

    def can_kill(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING, Status.PAUSED)

    def can_delete(self) -> bool:
        """Without --force (a created container is killed and removed, as runc does)."""
        return self in (Status.STOPPED, Status.CREATED)

    def can_exec(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING)

    def can_pause(self) -> bool:
        return self is Status.RUNNING

    def can_resume(self) -> bool:
        return self is Status.PAUSED


_ALLOWED = {
    "start": "can_start",
    "kill": "can_kill",
    "delete": "can_delete",
    "exec": "can_exec",
    "pause": "can_pause",
    "resume": "can_resume",
}
_WANTED = {
    "start": "created",
    "kill": "created, running or paused",
    "delete": "stopped or created",
    "exec": "created or running",
    "pause": "running",
    "resume": "paused",
}


def check_transition(container_id: str, status: Status, verb: str) -> None:
    """Raise Conflict naming both states when ``verb`` is not allowed in ``status``.

    ``kill`` of a stopped container says runc's ``container not running`` (the shim
    matches on it)."""
    if getattr(status, _ALLOWED[verb])():
        return
    if verb == "kill" and status is Status.STOPPED:
        raise Conflict("container not running")
    if verb == "delete" and status in (Status.RUNNING, Status.PAUSED):
        raise Conflict(
            f"cannot delete container {container_id} that is not stopped: {status.value}"
        )
    raise Conflict(
        f"cannot {verb} container {container_id}: it is {status.value}, "
        f"{verb} needs {_WANTED[verb]}"
    )


_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(container_id: str) -> str:
    """runc's rule: ``^[\\w+-\\.]+$`` and not ``.``/``..``."""
    if not container_id or container_id in (".", "..") or not set(container_id) <= _ID_OK:
        raise InvalidArgument(f"invalid container id format: {container_id}")
    return container_id


class ContainerState(NamedTuple):
    id: str
    pid: int
    pid_start: int | None
    bundle: str
    rootfs: str
    created: str
    cgroup_path: str | None = None
    oci_version: str = "1.2.0"
    owner: str = ""
    annotations: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ContainerState":
        return cls(**{k: d[k] for k in cls._fields if k in d})

    def oci_state(self, status: Status) -> dict[str, Any]:
        """The ``state`` command's JSON (runc's fields)."""
        return {
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid if status not in (Status.STOPPED,) else 0,
            "status": status.value,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            **({"annotations": self.annotations} if self.annotations else {}),
        }


class StateStore:
    """The per-container directories under ``root``."""

    def __init__(self, root: str | Path, proc_root: str = "/proc") -> None:
        self.root = Path(root)
        self.proc_root = proc_root

    def dir(self, container_id: str) -> Path:
        return self.root / validate_id(container_id)

    def fifo(self, container_id: str) -> Path:
        return self.dir(container_id) / "exec.fifo"

    def reserve(self, container_id: str) -> Path:
        """Create the container's directory; AlreadyExists if the id is taken."""
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        d = self.dir(container_id)
        try:
            d.mkdir(mode=0o711)
        except FileExistsError as exc:
            raise AlreadyExists(f"container with id exists: {container_id}") from exc
        return d

    def save(self, state: ContainerState) -> None:
        write_atomic(
            self.dir(state.id) / "state.json", json.dumps(state.to_json()), 0o600, durable=False
        )

    def load(self, container_id: str) -> ContainerState:
        """The stored state; NotFound (runc's ``does not exist``) when there is none."""
        try:
            raw = (self.dir(container_id) / "state.json").read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f'container "{container_id}" does not exist') from exc
        return ContainerState.from_json(json.loads(raw))

    def remove(self, container_id: str) -> None:
        import shutil  # only on delete: keeps `dockyard-runtime` start-up short

        shutil.rmtree(self.dir(container_id), ignore_errors=True)

    def list(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if (d / "state.json").exists())

    def init_alive(self, state: ContainerState) -> bool:
        """Whether the init named by (pid, start time) still runs (a zombie does not)."""
        if process_state(state.pid, self.proc_root) in (None, "Z", "X"):
            return False
        if state.pid_start is None:
            return True
        return process_start_time(state.pid, self.proc_root) == state.pid_start

    def status(self, state: ContainerState, frozen: bool = False) -> Status:
        """Derive the status (see the module docstring); ``frozen``: the cgroup is frozen."""
        if not self.init_alive(state):
            return Status.STOPPED
        if os.path.exists(self.fifo(state.id)):
            return Status.CREATED
        if frozen:
            return Status.PAUSED
        return Status.RUNNING
