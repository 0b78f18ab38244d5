"""A container's docker Config + HostConfig → the OCI runtime spec (config.json) its shim runs.

Docker's defaults come from ``dockyard.oci.runtime_spec.default_spec``; this module adds
what is per container: command, environment (PATH, HOSTNAME, TERM as dockerd sets them),
user, working dir, hostname, the /etc/hostname, /etc/hosts and /etc/resolv.conf binds,
/dev/shm size, capabilities added or dropped, privileged mode, rlimits and resources.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockyard.engine.model import Container
from dockyard.engine.mounts import mount_points
from dockyard.errors import InvalidArgument
from dockyard.linux.caps import CAPABILITIES
from dockyard.oci import runtime_spec as rs

__all__ = ["build_spec", "container_env"]

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ALL_CAPS = CAPABILITIES  # --privileged: every capability the kernel has a name for


def container_env(config: dict[str, Any]) -> list[str]:
    """dockerd's order: PATH, HOSTNAME, TERM (with a tty), then the container's own Env
    replacing those by key."""
    base = [DEFAULT_PATH, f"HOSTNAME={config.get('Hostname', '')}"]
    if config.get("Tty"):
        base.append("TERM=xterm")
    return rs.merge_env(base, config.get("Env") or [])


def _caps(hc: dict[str, Any]) -> list[str]:
    if hc.get("Privileged"):
        return list(ALL_CAPS)
    caps = list(rs.DEFAULT_CAPABILITIES)

    def norm(c: str) -> str:
        c = c.upper()
        return c if c.startswith("CAP_") else "CAP_" + c

    adds = [norm(c) for c in hc.get("CapAdd") or []]
    drops = [norm(c) for c in hc.get("CapDrop") or []]
    for c in adds + drops:
        if c != "CAP_ALL" and c not in ALL_CAPS:
            raise InvalidArgument(f"unknown capability: {c!r}")
    if "CAP_ALL" in adds:
        caps = list(ALL_CAPS)
    else:
        caps += [c for c in adds if c not in caps]
    if "CAP_ALL" in drops:
        caps = [c for c in adds if c != "CAP_ALL"]
    else:
        caps = [c for c in caps if c not in drops]
    return caps


def _resources(hc: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {}
    mem: dict[str, Any] = {}
    if hc.get("Memory"):
        mem["limit"] = int(hc["Memory"])
    if hc.get("MemoryReservation"):
        mem["reservation"] = int(hc["MemoryReservation"])
    if hc.get("MemorySwap"):
        mem["swap"] = int(hc["MemorySwap"])
    if mem:
        res["memory"] = mem
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = int(hc["NanoCpus"]) * 100000 // 1_000_000_000
    if hc.get("CpuQuota"):
        cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpuPeriod"):
        cpu["period"] = int(hc["CpuPeriod"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = str(hc["CpusetCpus"])
    if hc.get("CpusetMems"):
        cpu["mems"] = str(hc["CpusetMems"])
    if cpu:
        res["cpu"] = cpu
    if hc.get("PidsLimit"):
        res["pids"] = {"limit": int(hc["PidsLimit"])}
    return res


def _rlimits(hc: dict[str, Any]) -> list[dict[str, Any]]:
    limits = {r["type"]: dict(r) for r in rs.DEFAULT_RLIMITS}
    for u in hc.get("Ulimits") or []:
        name = "RLIMIT_" + str(u.get("Name", "")).upper()
        limits[name] = {"type": name, "soft": int(u.get("Soft", 0)), "hard": int(u.get("Hard", 0))}
    return list(limits.values())


def _namespaces(hc: dict[str, Any], netns_of: NetnsOf | None) -> dict[str, str | None]:
    """Docker's network modes: a new namespace with loopback only (bridge — real bridge
    networking is not built yet — and none), the host's (host), or another container's."""
    ns: dict[str, str | None] = {t: None for t in rs.DEFAULT_NAMESPACES}
    mode = str(hc.get("NetworkMode") or "bridge")
    if mode == "host":
        del ns["network"]
    elif mode.startswith("container:"):
        if netns_of is None:
            raise InvalidArgument(f"network mode {mode} needs the engine")
        ns["network"] = netns_of(mode.split(":", 1)[1])
    return ns


NetnsOf = Callable[[str], str]


def build_spec(c: Container, bundle: Path, cgroup_parent: str = "/dockyard",
               netns_of: NetnsOf | None = None) -> dict[str, Any]:
    """The spec for ``c``. ``netns_of(ref)`` gives the network namespace path of another
    running container (``--network container:ref``). Missing ``-v`` bind sources are
    created on the host, as docker does."""
    cfg, hc = c.config, c.host_config
    bind = ["rbind", "rprivate"]
    mounts: list[dict[str, Any]] = [
        {
            "destination": "/etc/resolv.conf",
            "type": "bind",
            "source": c.paths["ResolvConfPath"],
            "options": bind,
        },
        {
            "destination": "/etc/hostname",
            "type": "bind",
            "source": c.paths["HostnamePath"],
            "options": bind,
        },
        {
            "destination": "/etc/hosts",
            "type": "bind",
            "source": c.paths["HostsPath"],
            "options": bind,
        },
    ]
    shm = int(hc.get("ShmSize") or 67108864)
    mounts.append(
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"],
        }
    )
    for mp in mount_points(hc):
        if mp.type == "bind" and not os.path.exists(mp.source):
            os.makedirs(mp.source, exist_ok=True)  # docker's -v creates a missing source
        mounts.append(mp.oci())
    console = hc.get("ConsoleSize") or [0, 0]
    privileged = bool(hc.get("Privileged"))
    spec = rs.default_spec(
        c.argv,
        env=container_env(cfg),
        cwd=cfg.get("WorkingDir") or "/",
        hostname=cfg.get("Hostname") or c.id[:12],
        domainname=cfg.get("Domainname") or "",
        terminal=bool(cfg.get("Tty")),
        console_size=(int(console[0]), int(console[1]))
        if cfg.get("Tty") and console[0] and console[1]
        else None,
        user=cfg.get("User") or None,
        root_path="rootfs",
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
        capabilities=_caps(hc),
        namespaces=_namespaces(hc, netns_of),
        no_new_privileges=not privileged,
        rlimits=_rlimits(hc),
        mounts=mounts,
        masked_paths=() if privileged else rs.DEFAULT_MASKED_PATHS,
        readonly_paths=() if privileged else rs.DEFAULT_READONLY_PATHS,
        resources=_resources(hc),
        cgroups_path=f"{cgroup_parent}/{c.id}",
        oom_score_adj=int(hc["OomScoreAdj"]) if hc.get("OomScoreAdj") else None,
        sysctl=hc.get("Sysctls") or None,
        annotations={"org.dockyard.container.name": c.name},
    )
    return spec
