"""The container as the engine sees it: its durable document, its state machine, and the
docker-shaped views of it (inspect, ps summary). Pure: no I/O here."""

from __future__ import annotations

import copy
import enum
import shlex
import signal as _signal
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import Conflict, InvalidArgument
from dockyard.ids import short_id
from dockyard.util.humanize import human_duration
from dockyard.util.timefmt import ZERO_TIME, parse_rfc3339

__all__ = [
    "Container",
    "Status",
    "human_duration",
    "merge_config",
    "parse_signal",
    "status_text",
]


class Status(str, enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"

    def can_start(self) -> bool:
        return self in (Status.CREATED, Status.EXITED)

    def is_running(self) -> bool:
        return self in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)

    def can_remove(self) -> bool:
        return not self.is_running() and self is not Status.REMOVING

    def check(self, verb: str, ok: bool) -> None:
        if not ok:
            raise Conflict(f"cannot {verb} a container that is {self.value}")


def parse_signal(sig: str | int | None, default: int = _signal.SIGKILL) -> int:
    """``9``, ``KILL``, ``SIGKILL``, ``sigkill`` → 9; InvalidArgument for anything else."""
    if sig is None or sig == "":
        return default
    if isinstance(sig, int):
        n = sig
    else:
        s = str(sig).strip().upper()
        if s.isdigit():
            n = int(s)
        else:
            name = s if s.startswith("SIG") else "SIG" + s
            try:
                n = int(getattr(_signal.Signals, name))
            except AttributeError:
                raise InvalidArgument(f"Invalid signal: {sig}") from None
    if not 0 < n < 65:
        raise InvalidArgument(f"Invalid signal: {sig}")
    return n


_DEFAULT_STATE = {
    "Status": "created",
    "Running": False,
    "Paused": False,
    "Restarting": False,
    "OOMKilled": False,
    "Dead": False,
    "Pid": 0,
    "ExitCode": 0,
    "Error": "",
    "StartedAt": ZERO_TIME,
    "FinishedAt": ZERO_TIME,
}


def merge_config(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """Docker's merge of a create request's Config with the image's config (moby's
    ``merge``): env by key, labels and ports and volumes by union, the rest by default."""
    cfg = copy.deepcopy(user)
    img = image or {}
    env: dict[str, str] = {}
    order: list[str] = []
    for item in list(img.get("Env") or []) + list(cfg.get("Env") or []):
        key = item.split("=", 1)[0]
        if key not in env:
            order.append(key)
        env[key] = item
    cfg["Env"] = [env[k] for k in order]
    entry = cfg.get("Entrypoint")
    if entry == [""]:
        entry = []
        cfg["Entrypoint"] = None
    cfg.setdefault("Cmd", None)
    cfg.setdefault("Entrypoint", None)
    if not entry:
        if not cfg.get("Cmd"):
            cfg["Cmd"] = img.get("Cmd")
        if entry is None:
            cfg["Entrypoint"] = img.get("Entrypoint")
    for key in ("WorkingDir", "User", "StopSignal"):
        if not cfg.get(key) and img.get(key):
            cfg[key] = img[key]
    for key in ("Labels", "ExposedPorts", "Volumes"):
        merged = dict(img.get(key) or {})
        merged.update(cfg.get(key) or {})
        cfg[key] = merged if merged or key == "Labels" else (cfg.get(key) or None)
    if cfg.get("Healthcheck") is None and img.get("Healthcheck"):
        cfg["Healthcheck"] = img["Healthcheck"]
    if not cfg.get("OnBuild"):
        cfg["OnBuild"] = None
    return cfg


def status_text(state: dict[str, Any], now_ns: int) -> str:
    """The ``Status`` column of ``docker ps``: "Up 3 minutes", "Exited (0) 2 seconds ago"."""
    st = state.get("Status")
    if st in ("running", "paused", "restarting"):
        if st == "restarting":
            return f"Restarting ({state.get('ExitCode', 0)}) " + _ago(
                state.get("FinishedAt"), now_ns
            )
        up = "Up " + human_duration((now_ns - _ns(state.get("StartedAt"))) / 1e9)
        return up + " (Paused)" if st == "paused" else up
    if st == "exited":
        if _ns(state.get("FinishedAt")) == 0:
            return f"Exited ({state.get('ExitCode', 0)})"
        return f"Exited ({state.get('ExitCode', 0)}) " + _ago(state.get("FinishedAt"), now_ns)
    if st == "removing":
        return "Removal In Progress"
    if st == "dead":
        return "Dead"
    return "Created"


def _ns(ts: Any) -> int:
    try:
        return parse_rfc3339(str(ts))
    except ValueError:
        return 0


def _ago(ts: Any, now_ns: int) -> str:
    return human_duration((now_ns - _ns(ts)) / 1e9) + " ago"


def _empty_endpoint() -> dict[str, Any]:
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": None,
        "MacAddress": "",
        "DriverOpts": None,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None,
    }


@dataclass
class Container:
    """A container's durable document (persisted as JSON by store.containers)."""

    id: str
    name: str  # with the leading '/'
    created: str  # RFC 3339 nano
    image_id: str  # sha256:...
    config: dict[str, Any]  # docker's Config, merged with the image's
    host_config: dict[str, Any]  # docker's HostConfig
    networking: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=lambda: dict(_DEFAULT_STATE))
    restart_count: int = 0
    manually_stopped: bool = False  # docker's HasBeenManuallyStopped (restart policies)
    paths: dict[str, str] = field(
        default_factory=dict
    )  # LogPath, HostnamePath, HostsPath, ResolvConfPath
    exec_ids: list[str] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return Status(self.state.get("Status", "created"))

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def argv(self) -> list[str]:
        return list(self.config.get("Entrypoint") or []) + list(self.config.get("Cmd") or [])

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    def to_doc(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Created": self.created,
            "Image": self.image_id,
            "Config": self.config,
            "HostConfig": self.host_config,
            "NetworkingConfig": self.networking,
            "State": self.state,
            "RestartCount": self.restart_count,
            "ManuallyStopped": self.manually_stopped,
            "Paths": self.paths,
            "ExecIDs": self.exec_ids,
        }

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> "Container":
        return cls(
            id=d["Id"],
            name=d["Name"],
            created=d["Created"],
            image_id=d["Image"],
            config=d.get("Config") or {},
            host_config=d.get("HostConfig") or {},
            networking=d.get("NetworkingConfig") or {},
            state={**_DEFAULT_STATE, **(d.get("State") or {})},
            restart_count=int(d.get("RestartCount", 0)),
            manually_stopped=bool(d.get("ManuallyStopped")),
            paths=d.get("Paths") or {},
            exec_ids=list(d.get("ExecIDs") or []),
        )

    # --- state transitions (the engine persists after each) ---------------------------

    def set_running(self, pid: int, started_at: str) -> None:
        self.state.update(
            Status="running",
            Running=True,
            Paused=False,
            Restarting=False,
            Dead=False,
            Pid=pid,
            ExitCode=0,
            Error="",
            StartedAt=started_at,
            FinishedAt=ZERO_TIME,
            OOMKilled=False,
        )

    def set_exited(self, code: int, finished_at: str, error: str = "") -> None:
        self.state.update(
            Status="exited",
            Running=False,
            Paused=False,
            Restarting=False,
            Pid=0,
            ExitCode=code,
            FinishedAt=finished_at,
            Error=error,
        )

    def set_start_failed(self, code: int, error: str) -> None:
        """A failed start leaves the container where it was, with the error and its code."""
        self.state.update(ExitCode=code, Error=error)

    # --- docker's views ------------------------------------------------------------------

    def mounts_view(self) -> list[dict[str, Any]]:
        from dockyard.engine.mounts import mount_points

        try:
            return [m.inspect() for m in mount_points(self.host_config)]
        except Exception:  # a record from before a rule change: show nothing, not an error
            return []

    def command_text(self) -> str:
        """The ps COMMAND: the argv joined, quoting what needs it ("sh -c 'echo hi'")."""
        argv = self.argv
        if not argv:
            return ""
        return " ".join([argv[0]] + [shlex.quote(a) if a else "''" for a in argv[1:]])

    def network_settings(self) -> dict[str, Any]:
        mode = self.host_config.get("NetworkMode") or "bridge"
        # an endpoint per network, empty until networking gives it addresses
        name = None if mode == "host" or mode.startswith("container:") else mode
        networks: dict[str, Any] = {name: _empty_endpoint()} if name else {}
        return {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": {},
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": networks,
        }

    def inspect(
        self, graph_driver: dict[str, Any] | None = None, sizes: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        argv = self.argv
        doc: dict[str, Any] = {
            "Id": self.id,
            "Created": self.created,
            "Path": argv[0] if argv else "",
            "Args": argv[1:],
            "State": dict(self.state),
            "Image": self.image_id,
            "ResolvConfPath": self.paths.get("ResolvConfPath", ""),
            "HostnamePath": self.paths.get("HostnamePath", ""),
            "HostsPath": self.paths.get("HostsPath", ""),
            "LogPath": self.paths.get("LogPath", ""),
            "Name": self.name,
            "RestartCount": self.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": list(self.exec_ids) or None,
            "HostConfig": self.host_config,
            "GraphDriver": graph_driver or {"Name": "overlay2", "Data": None},
            "Mounts": self.mounts_view(),
            "Config": self.config,
            "NetworkSettings": self.network_settings(),
        }
        if sizes is not None:
            doc["SizeRw"], doc["SizeRootFs"] = sizes
        return doc

    def summary(
        self, image_name: str, now_ns: int, sizes: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        """One entry of ``GET /containers/json``."""
        doc: dict[str, Any] = {
            "Id": self.id,
            "Names": [self.name],
            "Image": image_name,
            "ImageID": self.image_id,
            "Command": self.command_text(),
            "Created": _ns(self.created) // 1_000_000_000,
            "Ports": [],
            "Labels": self.config.get("Labels") or {},
            "State": self.state.get("Status", "created"),
            "Status": status_text(self.state, now_ns),
            "HostConfig": {"NetworkMode": self.host_config.get("NetworkMode") or "bridge"},
            "NetworkSettings": {"Networks": self.network_settings()["Networks"]},
            "Mounts": self.mounts_view(),
        }
        if sizes is not None:
            doc["SizeRw"], doc["SizeRootFs"] = sizes
        return doc
