"""Option values the way the docker CLI reads them: env and label files, ``-e``/``-l``,
filters, ``-a`` streams, signals, and log time stamps (``--since 10m``)."""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "OptError",
    "platform_json",
    "convert_kv_to_map",
    "filters_to_map",
    "parse_timestamp",
    "read_kv_env_strings",
    "read_kv_strings",
    "validate_attach",
    "validate_env",
    "validate_filter",
]


class OptError(ValueError):
    """An invalid option value (becomes a 125 with the command's help hint)."""


def validate_env(val: str, env: Mapping[str, str] | None = None) -> str:
    """``-e KEY`` takes the value from the client's environment when it has one."""
    k, eq, _ = val.partition("=")
    if not k:
        raise ValueError(f"invalid environment variable: {val}")
    if eq:
        return val
    env = os.environ if env is None else env
    if k in env:
        return f"{k}={env[k]}"
    return val


def validate_attach(val: str) -> str:
    s = val.lower()
    if s in ("stdin", "stdout", "stderr"):
        return s
    raise ValueError("valid streams are STDIN, STDOUT and STDERR")


def validate_filter(val: str) -> str:
    if "=" not in val:
        raise ValueError("bad format of filter (expected name=value)")
    return val


def filters_to_map(values: Iterable[str]) -> dict[str, list[str]]:
    """``["status=running", "label=a=b"]`` → ``{"status": ["running"], "label": ["a=b"]}``."""
    out: dict[str, list[str]] = {}
    for v in values:
        name, _, value = v.partition("=")
        name = name.strip().lower()
        value = value.strip()
        lst = out.setdefault(name, [])
        if value not in lst:
            lst.append(value)
    return out


_WS = " \t"


def _parse_kv_file(path: str, lookup: Mapping[str, str] | None, what: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise OptError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise OptError(f"env file {path} contains invalid utf8 bytes at line 1") from None
    lines: list[str] = []
    for line in text.splitlines():
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        variable, eq, value = line.partition("=")
        if not variable:
            raise OptError(f"poorly formatted {what}: no variable name on line '{line}'")
        variable = variable.lstrip(_WS)
        if any(c in variable for c in _WS):
            raise OptError(f"poorly formatted {what}: variable '{variable}' contains whitespaces")
        if eq:
            lines.append(f"{variable}={value}")
        elif lookup is not None and variable.strip() in lookup:
            lines.append(f"{variable.strip()}={lookup[variable.strip()]}")
    return lines


def read_kv_env_strings(files: Sequence[str], overrides: Sequence[str],
                        env: Mapping[str, str] | None = None) -> list[str]:
    """``--env-file`` lines (``KEY`` alone is looked up) followed by the ``-e`` values."""
    lookup = os.environ if env is None else env
    out: list[str] = []
    for f in files:
        out.extend(_parse_kv_file(f, lookup, "environment"))
    out.extend(overrides)
    return out


def read_kv_strings(files: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """``--label-file`` lines followed by ``-l`` values."""
    out: list[str] = []
    for f in files:
        out.extend(_parse_kv_file(f, None, "environment"))
    out.extend(overrides)
    return out


def convert_kv_to_map(values: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        k, _, val = v.partition("=")
        out[k] = val
    return out


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _go_duration_seconds(s: str) -> float | None:
    """Parse a Go duration (``1h30m``, ``10s``, ``-5m``) into seconds, or None."""
    if not s:
        return None
    i = 0
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        i = 1
    total = 0.0
    seen = False
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i:
            return None
        num = float(s[i:j])
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        if unit not in _UNITS:
            return None
        total += num * _UNITS[unit]
        seen = True
        i = k
    return sign * total if seen else None


def parse_timestamp(value: str, now: float | None = None) -> str:
    """docker's ``timetypes.GetTimestamp``: a relative duration, RFC 3339 date, or unix
    seconds → ``"seconds.nanoseconds"`` as the API takes it."""
    if not value:
        return value
    now = time.time() if now is None else now
    d = _go_duration_seconds(value)
    if d is not None:
        t = now - d
        sec = int(t)
        return f"{sec}.{int(round((t - sec) * 1e9)):09d}"
    if value.replace(".", "", 1).isdigit():
        return value
    import datetime as _dt

    v = value
    fmts = ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z",
            "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H",
            "%Y-%m-%d")
    if v.endswith("Z"):
        v = v[:-1] + "+0000"
    frac_ns = 0
    if "." in v:
        head, _, tail = v.partition(".")
        digits = ""
        while tail and tail[0].isdigit():
            digits += tail[0]
            tail = tail[1:]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        v = head + tail
    for f in fmts:
        f2 = f.replace(".%f", "")
        try:
            dt = _dt.datetime.strptime(v, f2)
        except ValueError:
            continue
        if dt.tzinfo is None:
            ts = time.mktime(dt.timetuple())
        else:
            ts = dt.timestamp()
        return f"{int(ts)}.{frac_ns:09d}"
    raise OptError(f'failed to parse value as time or duration: "{value}"')


def platform_json(spec: str) -> str:
    """``os[/arch[/variant]]`` → the OCI platform object as JSON (push's ``platform=``)."""
    import json

    parts = spec.lower().split("/")
    if not parts[0] or len(parts) > 3:
        raise OptError(f"invalid platform: {spec}")
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(
        parts[1], parts[1]) if len(parts) > 1 else ""
    obj = {"architecture": arch, "os": parts[0]}
    if len(parts) > 2:
        obj["variant"] = parts[2]
    return json.dumps(obj, separators=(",", ":"))
