"""Dockerfile-style ``--change`` instructions applied to an image config (``docker import
--change``, ``docker commit --change``).

Supported, as docker's ``BuildFromConfig``: ``CMD``, ``ENTRYPOINT``, ``ENV``, ``EXPOSE``,
``HEALTHCHECK``, ``LABEL``, ``ONBUILD``, ``STOPSIGNAL``, ``USER``, ``VOLUME``, ``WORKDIR``.
Anything else raises ``InvalidArgument("<INSTR> is not a valid change command")``.

* ``CMD``/``ENTRYPOINT``/``VOLUME`` take the JSON form (``["a", "b"]``) when the argument
  parses as a JSON array of strings, else the shell form: ``CMD echo hi`` →
  ``["/bin/sh", "-c", "echo hi"]``; ``VOLUME /a /b`` → two volumes.
* ``ENTRYPOINT`` clears an image ``Cmd`` unless a ``CMD`` came earlier in the same changes.
* ``ENV``/``LABEL`` take ``k=v`` pairs with shell quoting, or the legacy ``ENV k v w``.
* ``$VAR``/``${VAR}`` (and ``${VAR:-x}``/``${VAR:+x}``) are expanded from the config's
  ``Env`` in ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR, as docker does;
  ``\\$`` keeps a literal dollar.
* ``WORKDIR`` relative to the previous one; ``EXPOSE 80`` means ``80/tcp``.

``apply_changes(config, changes)`` returns a new config dict (docker's container-config
field names: ``Cmd``, ``Entrypoint``, ``Env``, ``ExposedPorts``, ``Labels``, ``Volumes``,
``WorkingDir``, ``User``, ``StopSignal``, ``Healthcheck``, ``OnBuild``).
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
from collections.abc import Sequence
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = ["apply_changes", "parse_duration", "split_words"]

VALID = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD",
         "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


def _json_array(arg: str) -> list[str] | None:
    s = arg.strip()
    if not s.startswith("["):
        return None
    try:
        v = json.loads(s)
    except ValueError:
        return None
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    return None


def split_words(s: str) -> list[str]:
    """Shell-like words: whitespace separates, quotes group, backslash escapes."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    quote = ""
    i = 0
    while i < len(s):
        ch = s[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(s) and s[i + 1] in '"\\$':
                i += 1
                cur.append(s[i])
            else:
                cur.append(ch)
        elif ch in "\"'":
            quote = ch
            in_word = True
        elif ch == "\\" and i + 1 < len(s):
            i += 1
            cur.append(s[i])
            in_word = True
        elif ch.isspace():
            if in_word:
                words.append("".join(cur))
                cur = []
                in_word = False
        else:
            cur.append(ch)
            in_word = True
        i += 1
    if quote:
        raise InvalidArgument(f"unexpected end of statement while looking for matching {quote}")
    if in_word:
        words.append("".join(cur))
    return words


_VAR = re.compile(
    r"\\\$"                                                  # an escaped dollar
    r"|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}"     # ${VAR}, ${VAR:-x}, ${VAR:+x}
    r"|\$([A-Za-z_][A-Za-z0-9_]*)"                             # $VAR
)


def _expand(s: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "\\$":
            return "\\$"  # kept for split_words, which turns it into "$"
        name = m.group(1) or m.group(4)
        val = env.get(name, "")
        op = m.group(2)
        if op == ":-":
            return val if val else m.group(3)
        if op == ":+":
            return m.group(3) if val else ""
        return val

    return _VAR.sub(sub, s)


def _env_map(env: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in env or ():
        k, _, v = e.partition("=")
        out[k] = v
    return out


def _pairs(instr: str, arg: str, env: dict[str, str]) -> list[tuple[str, str]]:
    words = split_words(_expand(arg, env))
    if not words:
        raise InvalidArgument(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        if instr == "LABEL":
            raise InvalidArgument(f"{instr} names can not be blank" if not words[0] else
                                  f"{instr} must have two arguments")
        # legacy "ENV key value with spaces"
        parts = arg.strip().split(None, 1)
        if len(parts) < 2:
            raise InvalidArgument(f"{instr} must have two arguments")
        value = " ".join(split_words(_expand(parts[1], env)))
        return [(parts[0], value)]
    out = []
    for w in words:
        k, sep, v = w.partition("=")
        if not sep:
            raise InvalidArgument(
                f"Syntax error - can't find = in {w!r}. Must be of the form: name=value")
        if not k:
            raise InvalidArgument(f"{instr} names can not be blank")
        out.append((k, v))
    return out


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration(s: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds."""
    if s in ("0", ""):
        return 0
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise InvalidArgument(f"time: invalid duration {s!r}")
    return int(total)


def _healthcheck(arg: str) -> dict[str, Any]:
    words = arg.strip().split()
    opts: dict[str, Any] = {}
    i = 0
    while i < len(words) and words[i].startswith("--"):
        flag, _, val = words[i][2:].partition("=")
        key = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
               "start-interval": "StartInterval", "retries": "Retries"}.get(flag)
        if key is None:
            raise InvalidArgument(f"Unknown flag: {flag}")
        if key == "Retries":
            try:
                opts[key] = int(val)
            except ValueError:
                raise InvalidArgument(f"invalid retries value: {val!r}") from None
        else:
            opts[key] = parse_duration(val)
        i += 1
    rest = arg.strip().split(None, i)[i] if i < len(words) else ""
    if not rest:
        raise InvalidArgument("Missing command after HEALTHCHECK")
    kind, _, cmdline = rest.partition(" ") if " " in rest else (rest, "", "")
    kind = kind.upper()
    if kind == "NONE":
        if cmdline.strip() or opts:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind != "CMD":
        raise InvalidArgument(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    js = _json_array(cmdline)
    test = ["CMD", *js] if js is not None else ["CMD-SHELL", cmdline.strip()]
    return {"Test": test, **opts}


def apply_changes(config: dict[str, Any] | None, changes: Sequence[str]) -> dict[str, Any]:
    """Apply each change line to a copy of ``config`` (docker container-config names)."""
    cfg: dict[str, Any] = copy.deepcopy(config) if config else {}
    cmd_set = False
    for raw in changes:
        line = raw.strip()
        if not line:
            continue
        instr, _, arg = line.partition(" ") if " " in line else (line, "", "")
        if "\t" in instr:
            instr, _, rest = instr.partition("\t")
            arg = rest + " " + arg
        instr_u = instr.upper()
        arg = arg.strip()
        if instr_u not in VALID:
            raise InvalidArgument(f"{instr_u} is not a valid change command")
        env = _env_map(cfg.get("Env"))
        if instr_u in ("CMD", "ENTRYPOINT"):
            js = _json_array(arg)
            value: list[str] | None
            if js is not None:
                value = js
            elif arg:
                value = ["/bin/sh", "-c", arg]
            else:
                value = None if instr_u == "ENTRYPOINT" else []
            if instr_u == "CMD":
                cfg["Cmd"] = value
                cmd_set = True
            else:
                cfg["Entrypoint"] = value
                if not cmd_set:
                    cfg["Cmd"] = None
        elif instr_u == "ENV":
            for k, v in _pairs("ENV", arg, env):
                lst = [e for e in (cfg.get("Env") or []) if e.partition("=")[0] != k]
                lst.append(f"{k}={v}")
                cfg["Env"] = lst
                env[k] = v
        elif instr_u == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            for k, v in _pairs("LABEL", arg, env):
                labels[k] = v
            cfg["Labels"] = labels
        elif instr_u == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            words = split_words(_expand(arg, env))
            if not words:
                raise InvalidArgument("EXPOSE requires at least one argument")
            for w in words:
                port, _, proto = w.partition("/")
                proto = (proto or "tcp").lower()
                if proto not in ("tcp", "udp", "sctp") or not re.fullmatch(r"\d+(-\d+)?", port):
                    raise InvalidArgument(f"invalid containerPort: {w}")
                lo, _, hi = port.partition("-")
                for n in range(int(lo), int(hi or lo) + 1):
                    ports[f"{n}/{proto}"] = {}
            cfg["ExposedPorts"] = ports
        elif instr_u == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            js = _json_array(arg)
            items = js if js is not None else split_words(_expand(arg, env))
            if not items:
                raise InvalidArgument("VOLUME requires at least one argument")
            for v in items:
                v = v.strip()
                if not v:
                    raise InvalidArgument("VOLUME specified can not be an empty string")
                vols[v] = {}
            cfg["Volumes"] = vols
        elif instr_u == "WORKDIR":
            words = split_words(_expand(arg, env))
            if len(words) != 1:
                raise InvalidArgument("WORKDIR requires exactly one argument")
            wd = words[0]
            if not wd.startswith("/"):
                wd = posixpath.join(cfg.get("WorkingDir") or "/", wd)
            cfg["WorkingDir"] = posixpath.normpath(wd)
        elif instr_u == "USER":
            words = split_words(_expand(arg, env))
            if len(words) != 1:
                raise InvalidArgument("USER requires exactly one argument")
            cfg["User"] = words[0]
        elif instr_u == "STOPSIGNAL":
            words = split_words(_expand(arg, env))
            if len(words) != 1:
                raise InvalidArgument("STOPSIGNAL requires exactly one argument")
            cfg["StopSignal"] = words[0]
        elif instr_u == "HEALTHCHECK":
            cfg["Healthcheck"] = _healthcheck(arg)
        elif instr_u == "ONBUILD":
            if not arg:
                raise InvalidArgument("ONBUILD requires at least one argument")
            trigger = arg.split(None, 1)[0].upper()
            if trigger in ("ONBUILD", "FROM", "MAINTAINER"):
                raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), arg]
    return cfg
