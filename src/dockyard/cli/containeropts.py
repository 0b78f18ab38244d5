"""The flags of ``run``/``create`` and the container-create request they build.

``build(opts, cli)`` returns the ``POST /containers/create`` body laid out as the docker
CLI sends it (Config fields, then ``HostConfig``, then ``NetworkingConfig``; see
``shared/traces/run-d.txt``), so the daemon sees the same JSON from both clients.
Invalid values raise ``OptError`` (the command turns it into exit status 125).
"""

from __future__ import annotations

import os

from dockyard.cli.app import Cli
from dockyard.cli.flags import Flag, Parsed
from dockyard.cli.opts import (
    OptError,
    convert_kv_to_map,
    read_kv_env_strings,
    read_kv_strings,
    validate_attach,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["container_flags", "build", "parse_ports", "parse_bytes", "parse_restart"]


def container_flags() -> list[Flag]:
    """Flags shared by ``run`` and ``create`` (the container's configuration)."""
    return [
        Flag("add-host", "", "list", usage="Add a custom host-to-IP mapping (host:ip)"),
        Flag("attach", "a", "list", usage="Attach to STDIN, STDOUT or STDERR",
             validate=validate_attach),
        Flag("cap-add", "", "list", usage="Add Linux capabilities"),
        Flag("cap-drop", "", "list", usage="Drop Linux capabilities"),
        Flag("cidfile", "", "string", usage="Write the container ID to the file"),
        Flag("cpu-shares", "c", "int", usage="CPU shares (relative weight)"),
        Flag("cpus", "", "string", usage="Number of CPUs", varname="decimal"),
        Flag("dns", "", "list", usage="Set custom DNS servers"),
        Flag("dns-option", "", "list", usage="Set DNS options"),
        Flag("dns-search", "", "list", usage="Set custom DNS search domains"),
        Flag("domainname", "", "string", usage="Container NIS domain name"),
        Flag("entrypoint", "", "string", usage="Overwrite the default ENTRYPOINT of the image"),
        Flag("env", "e", "list", usage="Set environment variables"),
        Flag("env-file", "", "list", usage="Read in a file of environment variables"),
        Flag("expose", "", "list", usage="Expose a port or a range of ports"),
        Flag("group-add", "", "list", usage="Add additional groups to join"),
        Flag("hostname", "h", "string", usage="Container host name"),
        Flag("init", "", "bool", usage="Run an init inside the container that forwards signals "
             "and reaps processes"),
        Flag("interactive", "i", "bool", usage="Keep STDIN open even if not attached"),
        Flag("label", "l", "list", usage="Set meta data on a container"),
        Flag("label-file", "", "list", usage="Read in a line delimited file of labels"),
        Flag("log-driver", "", "string", usage="Logging driver for the container"),
        Flag("log-opt", "", "list", usage="Log driver options"),
        Flag("mount", "", "list", usage="Attach a filesystem mount to the container"),
        Flag("memory", "m", "string", usage="Memory limit", varname="bytes"),
        Flag("name", "", "string", usage="Assign a name to the container"),
        Flag("network", "", "string", usage="Connect a container to a network",
             varname="network"),
        Flag("net", "", "string", hidden=True),
        Flag("network-alias", "", "list", usage="Add network-scoped alias for the container"),
        Flag("pids-limit", "", "int", usage="Tune container pids limit (set -1 for unlimited)"),
        Flag("platform", "", "string", usage="Set platform if server is multi-platform capable"),
        Flag("privileged", "", "bool", usage="Give extended privileges to this container"),
        Flag("publish", "p", "list", usage="Publish a container's port(s) to the host"),
        Flag("publish-all", "P", "bool", usage="Publish all exposed ports to random ports"),
        Flag("read-only", "", "bool", usage="Mount the container's root filesystem as read only"),
        Flag("restart", "", "string", "no", usage="Restart policy to apply when a container exits"),
        Flag("rm", "", "bool", usage="Automatically remove the container and its associated "
             "anonymous volumes when it exits"),
        Flag("security-opt", "", "list", usage="Security Options"),
        Flag("stop-signal", "", "string", usage="Signal to stop the container"),
        Flag("stop-timeout", "", "int", usage="Timeout (in seconds) to stop a container"),
        Flag("tmpfs", "", "list", usage="Mount a tmpfs directory"),
        Flag("tty", "t", "bool", usage="Allocate a pseudo-TTY"),
        Flag("user", "u", "string", usage="Username or UID (format: <name|uid>[:<group|gid>])"),
        Flag("volume", "v", "list", usage="Bind mount a volume"),
        Flag("workdir", "w", "string", usage="Working directory inside the container"),
    ]


_BINARY = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4,
           "p": 1024 ** 5}


def parse_bytes(value: str) -> int:
    """go-units ``RAMInBytes``: ``512m`` → 536870912 (binary multiples)."""
    s = value.strip().lower()
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz ")
    suffix = s[len(num):].strip()
    if suffix.endswith("ib"):
        suffix = suffix[:-2]
    elif len(suffix) == 2 and suffix.endswith("b"):
        suffix = suffix[:-1]
    try:
        n = float(num)
    except ValueError:
        raise OptError(f"invalid size: '{value}'") from None
    if suffix not in _BINARY or n < 0:
        raise OptError(f"invalid size: '{value}'")
    return int(n * _BINARY[suffix])


def parse_restart(policy: str) -> dict[str, Any]:
    name, _, count = policy.partition(":")
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise OptError(f"invalid restart policy: unknown policy '{name}'; use one of 'no', "
                       "'always', 'on-failure', or 'unless-stopped'")
    n = 0
    if count:
        if name != "on-failure":
            raise OptError("invalid restart policy: maximum retry count can only be used "
                           "with 'on-failure'")
        try:
            n = int(count)
        except ValueError:
            raise OptError(f"invalid restart policy: invalid count: {count}") from None
    return {"Name": name or "no", "MaximumRetryCount": n}


def _port_range(s: str) -> list[int]:
    lo, _, hi = s.partition("-")
    try:
        a = int(lo)
        b = int(hi) if hi else a
    except ValueError:
        raise OptError(f"invalid port range: {s}") from None
    if not (0 <= a <= 65535 and 0 <= b <= 65535) or b < a:
        raise OptError(f"invalid port range: {s}")
    return list(range(a, b + 1))


def parse_ports(specs: list[str], exposes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``-p [ip:][host:]container[/proto]`` and ``--expose`` → (ExposedPorts, PortBindings)."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        raw, _, proto = spec.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise OptError(f"invalid proto: {proto}")
        ip = ""
        if raw.startswith("["):
            end = raw.find("]")
            if end < 0:
                raise OptError(f"invalid IP address: {raw}")
            ip = raw[1:end]
            rest = raw[end + 2:]
            parts = rest.split(":")
            host_port, cport = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
        else:
            parts = raw.split(":")
            if len(parts) == 1:
                host_port, cport = "", parts[0]
            elif len(parts) == 2:
                host_port, cport = parts
            elif len(parts) == 3:
                ip, host_port, cport = parts
            else:
                raise OptError(f"invalid port format: {spec}")
        if not cport:
            raise OptError(f"no port specified: {spec}<empty>")
        cports = _port_range(cport)
        hports = _port_range(host_port) if host_port else []
        if hports and len(hports) != len(cports) and len(hports) != 1:
            raise OptError(f"invalid ranges specified for container and host Ports: {cport} "
                           f"and {host_port}")
        for i, p in enumerate(cports):
            key = f"{p}/{proto}"
            exposed[key] = {}
            hp = ""
            if hports:
                hp = str(hports[i]) if len(hports) == len(cports) else host_port
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": hp})
    for e in exposes:
        raw, _, proto = e.partition("/")
        for p in _port_range(raw):
            exposed[f"{p}/{(proto or 'tcp').lower()}"] = {}
    return exposed, bindings


def _mounts(specs: list[str]) -> list[dict[str, Any]] | None:
    """``--mount type=bind,source=/a,target=/b,readonly`` → HostConfig.Mounts entries."""
    out: list[dict[str, Any]] = []
    for spec in specs:
        m: dict[str, Any] = {"Type": "volume"}
        for field in spec.split(","):
            key, eq, value = field.partition("=")
            key = key.strip().lower()
            if key == "type":
                m["Type"] = value
            elif key in ("source", "src"):
                m["Source"] = value
            elif key in ("target", "destination", "dst"):
                m["Target"] = value
            elif key in ("readonly", "ro"):
                m["ReadOnly"] = not eq or value.lower() in ("1", "true")
            elif key == "bind-propagation":
                m.setdefault("BindOptions", {})["Propagation"] = value
            elif key == "tmpfs-size":
                m.setdefault("TmpfsOptions", {})["SizeBytes"] = _bytes(value)
            elif key == "tmpfs-mode":
                m.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)
            elif key in ("consistency", "volume-nocopy", "volume-driver", "volume-opt",
                         "volume-label", "bind-recursive"):
                continue
            else:
                raise OptError(f"invalid argument \"{spec}\" for \"--mount\" flag: "
                               f"unexpected key '{key}' in '{field}'")
        if not m.get("Target"):
            raise OptError(f"invalid argument \"{spec}\" for \"--mount\" flag: "
                           "target is required")
        out.append(m)
    return out or None


def _bytes(value: str) -> int:
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    v = value.strip().lower().rstrip("b") or "0"
    if v[-1] in units:
        return int(float(v[:-1]) * units[v[-1]])
    return int(v)


def _volumes(specs: list[str]) -> tuple[list[str] | None, dict[str, Any]]:
    binds: list[str] = []
    volumes: dict[str, Any] = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) == 1:
            if not parts[0].startswith("/"):
                raise OptError(f"invalid volume specification: '{spec}'")
            volumes[parts[0]] = {}
            continue
        if len(parts) > 3 or not parts[1].startswith("/"):
            raise OptError(f"invalid volume specification: '{spec}'")
        src = parts[0]
        if not src:
            raise OptError(f"invalid volume specification: '{spec}'")
        if src.startswith("."):
            src = os.path.abspath(src)
        binds.append(":".join([src] + parts[1:]))
    return (binds or None), volumes


def _endpoint(aliases: list[str] | None) -> dict[str, Any]:
    return {"IPAMConfig": None, "Links": None, "Aliases": aliases, "MacAddress": "",
            "DriverOpts": None, "GwPriority": 0, "NetworkID": "", "EndpointID": "",
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}


def build(opts: Parsed, cli: Cli, image: str, args: list[str],
          console_size: tuple[int, int] = (0, 0), env: Mapping[str, str] | None = None,
          ) -> dict[str, Any]:
    """The create request body for ``image`` and ``args`` (the command)."""
    attach = opts.attach
    attach_stdin = "stdin" in attach or opts.interactive
    attach_stdout = "stdout" in attach or not attach
    attach_stderr = "stderr" in attach or not attach
    env_list = []
    for e in opts.env:
        from dockyard.cli.opts import validate_env

        try:
            env_list.append(validate_env(e, env if env is not None else cli.env))
        except ValueError as exc:
            raise OptError(str(exc)) from None
    envs = read_kv_env_strings(opts.env_file, env_list, env if env is not None else cli.env)
    labels = read_kv_strings(opts.label_file, opts.label)
    entrypoint: list[str] | None = None
    if opts.entrypoint:
        entrypoint = [opts.entrypoint]
    elif "entrypoint" in opts.changed:
        entrypoint = [""]
    exposed, bindings = parse_ports(opts.publish, opts.expose)
    binds, volumes = _volumes(opts.volume)
    restart = parse_restart(opts.restart)
    if opts.rm and restart["Name"] != "no":
        raise OptError("conflicting options: cannot specify both --restart and --rm")
    net = opts.network or opts.net or "default"
    memory = parse_bytes(opts.memory) if opts.memory else 0
    nano_cpus = 0
    if opts.cpus:
        try:
            nano_cpus = int(round(float(opts.cpus) * 1e9))
        except ValueError:
            raise OptError(f'invalid argument "{opts.cpus}" for "--cpus" flag') from None
    log_config: dict[str, Any] = {"Type": opts.log_driver,
                                  "Config": convert_kv_to_map(opts.log_opt)}
    tmpfs = {}
    for t in opts.tmpfs:
        k, _, v = t.partition(":")
        tmpfs[k] = v
    config: dict[str, Any] = {
        "Hostname": opts.hostname,
        "Domainname": opts.domainname,
        "User": opts.user,
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    config.update({
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        "StdinOnce": bool(opts.interactive and attach_stdin),
        "Env": envs or None,
        "Cmd": args or None,
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": opts.workdir,
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": convert_kv_to_map(labels),
    })
    if opts.stop_signal:
        config["StopSignal"] = opts.stop_signal
    if "stop-timeout" in opts.changed:
        config["StopTimeout"] = opts.stop_timeout
    host: dict[str, Any] = {
        "Binds": binds, "ContainerIDFile": opts.cidfile, "LogConfig": log_config,
        "NetworkMode": net, "PortBindings": bindings, "RestartPolicy": restart,
        "AutoRemove": opts.rm, "VolumeDriver": "", "VolumesFrom": None,
        "ConsoleSize": [console_size[0], console_size[1]],
        "CapAdd": opts.cap_add or None, "CapDrop": opts.cap_drop or None, "CgroupnsMode": "",
        "Dns": opts.dns, "DnsOptions": opts.dns_option, "DnsSearch": opts.dns_search,
        "ExtraHosts": opts.add_host or None, "GroupAdd": opts.group_add or None, "IpcMode": "",
        "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": opts.privileged, "PublishAllPorts": opts.publish_all,
        "ReadonlyRootfs": opts.read_only, "SecurityOpt": opts.security_opt or None,
        "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "",
        "CpuShares": opts.cpu_shares, "Memory": memory, "NanoCpus": nano_cpus,
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
        "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
        "MemorySwap": 0, "MemorySwappiness": -1, "OomKillDisable": False,
        "PidsLimit": opts.pids_limit, "Ulimits": [], "CpuCount": 0, "CpuPercent": 0,
        "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None,
        "ReadonlyPaths": None,
    }
    if tmpfs:
        host["Tmpfs"] = tmpfs
    mounts = _mounts(opts.mount)
    if mounts:
        host["Mounts"] = mounts
    if "init" in opts.changed:
        host["Init"] = opts.init
    config["HostConfig"] = host
    config["NetworkingConfig"] = {"EndpointsConfig": {net: _endpoint(opts.network_alias or None)}}
    return config
