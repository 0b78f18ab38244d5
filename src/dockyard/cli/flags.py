"""Command-line flags the way the docker CLI parses them (spf13/pflag + cobra), and help text.

Why not ``argparse``: it costs ~10 ms to import and parses differently from pflag
(``-it``, ``-eFOO=1``, ``--rm=false``, flags stop at the image name for ``run``, and
docker's exact error texts and exit code 125). Semantics kept from pflag:

* ``--name value``, ``--name=value``, ``-n value``, ``-nvalue``, ``-n=value``; short
  boolean flags combine (``-itd``); a boolean takes a value only as ``--rm=false``;
* ``--`` ends the flags; with ``interspersed=False`` (run, create, exec, top...) the first
  argument that is not a flag ends them too, so ``run busybox ls -l`` passes ``-l`` on;
* errors: ``unknown flag: --x``, ``unknown shorthand flag: 'x' in -x``,
  ``flag needs an argument: --name``, ``invalid argument "x" for "-n, --last" flag: ...``;
* help: ``--help`` (and ``-h`` unless the command uses ``-h`` itself, as run does for
  ``--hostname``), rendered like docker's usage template with pflag's wrapping.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = [
    "ArgsError",
    "Command",
    "Flag",
    "FlagError",
    "HelpRequested",
    "Parsed",
    "help_text",
    "parse",
]

BIN = "dockyard"


class FlagError(Exception):
    """A malformed command line; printed with the usage line, exit status 125."""


class ArgsError(Exception):
    """Wrong number of positional arguments; the message is complete, exit status 1."""


class HelpRequested(Exception):
    """``--help`` was given."""


class Flag:
    """One flag. ``kind``: bool, string, int, list (repeatable), filter (repeatable
    ``key=value``), strings (comma-separated, repeatable)."""

    __slots__ = ("name", "short", "kind", "default", "usage", "dest", "hidden", "deprecated",
                 "validate", "varname", "show_default")

    def __init__(
        self,
        name: str,
        short: str = "",
        kind: str = "bool",
        default: Any = None,
        usage: str = "",
        *,
        dest: str = "",
        hidden: bool = False,
        deprecated: str = "",
        validate: Callable[[str], str] | None = None,
        varname: str = "",
        show_default: bool = True,
    ) -> None:
        self.name = name
        self.short = short
        self.kind = kind
        if default is None:
            default = {"bool": False, "string": "", "int": 0}.get(kind)
            if kind in ("list", "filter", "strings"):
                default = []
        self.default = default
        self.usage = usage
        self.dest = dest or name.replace("-", "_")
        self.hidden = hidden or bool(deprecated)
        self.deprecated = deprecated
        self.validate = validate
        self.varname = varname
        self.show_default = show_default

    def label(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"

    def type_name(self) -> str:
        if self.varname:
            return self.varname
        return {"bool": "", "strings": "strings"}.get(self.kind, self.kind)


class Command:
    """A command's parser spec: ``use`` is cobra's Use line (``"ps [OPTIONS]"``), ``path``
    the full command path (``"dockyard container ls"``), ``args`` one of ``("none",)``,
    ``("min", n)``, ``("max", n)``, ``("exact", n)``, ``("range", lo, hi)``, ``("any",)``."""

    def __init__(
        self,
        path: str,
        use: str,
        short: str,
        flags: Sequence[Flag] = (),
        *,
        args: tuple[Any, ...] = ("any",),
        interspersed: bool = True,
        aliases: str = "",
        long: str = "",
    ) -> None:
        self.path = path
        self.use = use
        self.short = short
        self.flags = list(flags)
        self.args = args
        self.interspersed = interspersed
        self.aliases = aliases
        self.long = long
        self._by_name = {f.name: f for f in self.flags}
        self._by_short = {f.short: f for f in self.flags if f.short}
        if "help" not in self._by_name:
            h = Flag("help", "" if "h" in self._by_short else "h", "bool", usage="Print usage",
                     hidden=True)
            self.flags.append(h)
            self._by_name["help"] = h
            if h.short:
                self._by_short["h"] = h

    @property
    def usage_line(self) -> str:
        parent = self.path.rsplit(" ", 1)[0] if " " in self.path else ""
        return f"{parent} {self.use}".strip()

    def flag_error(self, msg: str) -> FlagError:
        return FlagError(
            f"{msg}\n\nUsage:  {self.usage_line}\n\nRun '{self.path} --help' for more information"
        )


class Parsed:
    """Parsed values by ``dest``; ``changed`` holds the names of flags given explicitly;
    ``variant`` is set by ``main`` (``"ls"`` for ``container ls``...)."""

    variant: str = ""

    def __init__(self, values: dict[str, Any], changed: set[str], args: list[str]) -> None:
        self.__dict__.update(values)
        self.changed = changed
        self.args = args

    def __getattr__(self, name: str) -> Any:  # only for names not set: a programming error
        raise AttributeError(name)


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _set(cmd: Command, flag: Flag, value: str, values: dict[str, Any], changed: set[str],
         warn: Callable[[str], object]) -> None:
    kind = flag.kind
    try:
        if kind == "bool":
            if value in _TRUE:
                v: Any = True
            elif value in _FALSE:
                v = False
            else:
                raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')
            values[flag.dest] = v
        elif kind == "int":
            try:
                values[flag.dest] = int(value, 0) if value.lower().startswith(("0x", "0o", "0b")) \
                    else int(value)
            except ValueError:
                raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
        elif kind == "string":
            if flag.validate is not None:
                value = flag.validate(value)
            values[flag.dest] = value
        elif kind in ("list", "filter"):
            if flag.validate is not None:
                value = flag.validate(value)
            if flag.name not in changed:
                values[flag.dest] = []
            values[flag.dest].append(value)
        elif kind == "strings":
            if flag.name not in changed:
                values[flag.dest] = []
            values[flag.dest].extend(v for v in value.split(",") if v)
        else:  # pragma: no cover - spec error
            raise ValueError(f"unknown flag kind {kind}")
    except ValueError as exc:
        raise cmd.flag_error(
            f'invalid argument "{value}" for "{flag.label()}" flag: {exc}'
        ) from None
    changed.add(flag.name)
    if flag.deprecated:
        warn(f"Flag --{flag.name} has been deprecated, {flag.deprecated}\n")


def parse(cmd: Command, argv: Sequence[str],
          warn: Callable[[str], object] | None = None) -> Parsed:
    """Parse ``argv`` (without the command words). Raises FlagError, HelpRequested, ArgsError."""
    warn = warn or (lambda s: None)
    values: dict[str, Any] = {}
    for f in cmd.flags:
        values[f.dest] = list(f.default) if isinstance(f.default, list) else f.default
    changed: set[str] = set()
    args: list[str] = []
    rest = list(argv)
    while rest:
        s = rest.pop(0)
        if len(s) < 2 or s[0] != "-":
            args.append(s)
            if not cmd.interspersed:
                args.extend(rest)
                break
            continue
        if s[1] == "-":
            if len(s) == 2:  # "--"
                args.extend(rest)
                break
            name = s[2:]
            if not name or name[0] in "-=":
                raise cmd.flag_error(f"bad flag syntax: {s}")
            name, eq, value = name.partition("=")
            flag = cmd._by_name.get(name)
            if flag is None:
                raise cmd.flag_error(f"unknown flag: --{name}")
            if not eq:
                if flag.kind == "bool":
                    value = "true"
                elif rest:
                    value = rest.pop(0)
                else:
                    raise cmd.flag_error(f"flag needs an argument: {s}")
            _set(cmd, flag, value, values, changed, warn)
            continue
        shorts = s[1:]
        while shorts:
            c = shorts[0]
            flag = cmd._by_short.get(c)
            if flag is None:
                raise cmd.flag_error(f"unknown shorthand flag: '{c}' in -{shorts}")
            if len(shorts) > 2 and shorts[1] == "=":
                value, shorts = shorts[2:], ""
            elif flag.kind == "bool":
                value, shorts = "true", shorts[1:]
            elif len(shorts) > 1:
                value, shorts = shorts[1:], ""
            elif rest:
                value, shorts = rest.pop(0), ""
            else:
                raise cmd.flag_error(f"flag needs an argument: '{c}' in -{s[1:]}")
            if flag.name == "help" and c == "h":
                warn("Flag shorthand -h has been deprecated, use --help\n")
            _set(cmd, flag, value, values, changed, warn)
    if values.get("help"):
        raise HelpRequested()
    _check_args(cmd, args)
    return Parsed(values, changed, args)


def _plural(n: int) -> str:
    return "argument" if n == 1 else "arguments"


def _check_args(cmd: Command, args: list[str]) -> None:
    spec = cmd.args
    kind = spec[0]
    n = len(args)
    tail = f"\n\nUsage:  {cmd.usage_line}\n\n"
    if kind == "none" and n:
        raise ArgsError(f"{BIN}: '{cmd.path}' accepts no arguments{tail}"
                        f"Run '{cmd.path} --help' for more information")
    if kind == "min" and n < spec[1]:
        raise ArgsError(f"{BIN}: '{cmd.path}' requires at least {spec[1]} {_plural(spec[1])}"
                        f"{tail}See '{cmd.path} --help' for more information")
    if kind == "max" and n > spec[1]:
        raise ArgsError(f"{BIN}: '{cmd.path}' requires at most {spec[1]} {_plural(spec[1])}"
                        f"{tail}Run '{cmd.path} --help' for more information")
    if kind == "exact" and n != spec[1]:
        raise ArgsError(f"{BIN}: '{cmd.path}' requires {spec[1]} {_plural(spec[1])}"
                        f"{tail}Run '{cmd.path} --help' for more information")
    if kind == "range" and not spec[1] <= n <= spec[2]:
        raise ArgsError(f"{BIN}: '{cmd.path}' requires at least {spec[1]} and at most "
                        f"{spec[2]} {_plural(spec[2])}{tail}"
                        f"Run '{cmd.path} --help' for more information")


# -- help ------------------------------------------------------------------------------------

def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    if i + slop > len(s):
        return s, ""
    head = s[:i]
    w = max(head.rfind(" "), head.rfind("\t"), head.rfind("\n"))
    if w <= 0:
        return s, ""
    nl = head.rfind("\n")
    if 0 < nl < w:
        return s[:nl], s[nl + 1:]
    return s[:w], s[w + 1:]


def _wrap(i: int, w: int, s: str) -> str:
    """pflag's ``wrap``: wrap ``s`` to width ``w`` with continuation indent ``i``."""
    if w == 0:
        return s.replace("\n", "\n" + " " * i)
    width = w - i
    r = ""
    if width < 24:
        i = 16
        width = w - i
        r += "\n" + " " * i
    if width < 24:
        return s.replace("\n", r)
    slop = 5
    width -= slop
    line, s = _wrap_n(width, slop, s)
    r += line.replace("\n", "\n" + " " * i)
    while s:
        t, s = _wrap_n(width, slop, s)
        r += "\n" + " " * i + t.replace("\n", "\n" + " " * i)
    return r


def flag_usages(flags: Sequence[Flag], cols: int) -> str:
    lines: list[str] = []
    maxlen = 0
    for f in sorted(flags, key=lambda f: f.name):
        if f.hidden:
            continue
        line = f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}"
        t = f.type_name()
        if t:
            line += " " + t
        line += "\x00"
        maxlen = max(maxlen, len(line))
        line += f.usage
        if f.show_default and f.default not in (None, False, "", 0, []):
            d = f.default
            if f.kind == "string":
                line += f' (default "{d}")'
            elif f.kind == "bool":
                line += " (default true)"
            else:
                line += f" (default {d})"
        lines.append(line)
    out = []
    for line in lines:
        sidx = line.index("\x00")
        spacing = " " * (maxlen - sidx)
        out.append(f"{line[:sidx]} {spacing} {_wrap(maxlen + 2, cols, line[sidx + 1:])}")
    return "\n".join(out)


def term_width() -> int:
    import os

    try:
        return os.get_terminal_size(0).columns
    except OSError:
        return 80


def help_text(cmd: Command, width: int | None = None) -> str:
    cols = (width if width is not None else term_width()) - 1
    parts = [f"Usage:  {cmd.usage_line}", "", (cmd.long or cmd.short).strip()]
    if cmd.aliases:
        parts += ["", "Aliases:", f"  {cmd.aliases}"]
    visible = [f for f in cmd.flags if not f.hidden]
    if visible:
        parts += ["", "Options:", flag_usages(visible, cols).rstrip()]
    return "\n".join(parts) + "\n"
