"""``/version`` and ``/info``: facts about this engine and host."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockyard import __version__
from dockyard.engine.config import EngineConfig
from dockyard.util.timefmt import rfc3339nano

__all__ = ["SystemInfo"]


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def cgroup_version(root: Path = Path("/sys/fs/cgroup")) -> str:
    """ "2" on a unified host, else "1" (a hybrid host with v1 controllers counts as v1)."""
    return "2" if (root / "cgroup.controllers").exists() else "1"


class SystemInfo:
    def __init__(
        self,
        cfg: EngineConfig,
        daemon_id: str,
        counts: Callable[[], dict[str, int]],
        image_count: Callable[[], int],
    ) -> None:
        self.cfg = cfg
        self.daemon_id = daemon_id
        self._counts = counts
        self._image_count = image_count

    def version_info(self) -> dict[str, Any]:
        """Engine facts; the daemon adds ApiVersion and MinAPIVersion."""
        kernel = platform.release()
        py = f"python{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
        details = {
            "Arch": "amd64" if platform.machine() == "x86_64" else platform.machine(),
            "BuildTime": "",
            "Experimental": "false",
            "GitCommit": "dockyard",
            "GoVersion": py,
            "KernelVersion": kernel,
            "Os": "linux",
        }
        return {
            "Platform": {"Name": "dockyard"},
            "Components": [
                {"Name": "Engine", "Version": __version__, "Details": details},
                {
                    "Name": "dockyard-runtime",
                    "Version": __version__,
                    "Details": {"GitCommit": "dockyard"},
                },
            ],
            "Version": __version__,
            "GitCommit": "dockyard",
            "GoVersion": py,
            "Os": "linux",
            "Arch": details["Arch"],
            "KernelVersion": kernel,
            "BuildTime": "",
        }

    def system_info(self) -> dict[str, Any]:
        counts = self._counts()
        cgv = cgroup_version()
        return {
            "ID": self.daemon_id,
            **counts,
            "Images": self._image_count(),
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "none"],
                "Authorization": None,
                "Log": ["json-file"],
            },
            "MemoryLimit": True,
            "SwapLimit": False,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": True,
            "PidsLimit": True,
            "IPv4Forwarding": True,
            "Debug": False,
            "NFd": len(os.listdir("/proc/self/fd")),
            "OomKillDisable": False,
            "NGoroutines": 0,
            "SystemTime": rfc3339nano(time.time_ns()),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgv,
            "NEventsListener": 0,
            "KernelVersion": platform.release(),
            "OperatingSystem": _os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": platform.machine(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "IndexConfigs": {
                    "docker.io": {
                        "Name": "docker.io",
                        "Mirrors": list(self.cfg.registry_mirrors),
                        "Secure": True,
                        "Official": True,
                    }
                },
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "Mirrors": list(self.cfg.registry_mirrors),
            },
            "NCPU": os.cpu_count() or 1,
            "MemTotal": _mem_total(),
            "GenericResources": None,
            "DockerRootDir": str(self.cfg.data_root),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": socket.gethostname(),
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": __version__,
            "Runtimes": {"dockyard": {"path": "dockyard-runtime"}},
            "DefaultRuntime": "dockyard",
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": False,
                "Error": "",
                "RemoteManagers": None,
            },
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": ["name=cgroupns"] if cgv == "2" else [],
            "CDISpecDirs": [],
            "Warnings": [],
        }
