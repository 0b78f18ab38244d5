"""``dockyard``: the docker-compatible command line.

``dockyard [-H unix://PATH] [-D] COMMAND [ARG...]``. The daemon address is ``-H`` >
``$DOCKER_HOST`` > ``unix:///run/dockyard/dockyard.sock``.

Each verb lives in ``dockyard.cli.commands.<module>`` and is imported only when invoked
(start-up time is measured); a module provides ``command(path, variant) -> Command`` (its
flags and usage) and ``run(cli, opts) -> int | None``. Exit statuses follow docker: 125
for flag errors and for ``run``/``create`` failures before the container ran, 126/127 when
the command could not be invoked / found, 1 for other errors, else the container's status.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from dockyard.cli._types import TextWriter

__all__ = ["COMMANDS", "MANAGEMENT", "main", "run"]

#: top-level command → (module, variant, short description, category)
#: categories: "common" (docker's "Common Commands") and "" (plain "Commands")
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "run": ("run", "", "Create and run a new container from an image", "common"),
    "exec": ("exec", "", "Execute a command in a running container", "common"),
    "ps": ("ps", "ps", "List containers", "common"),
    "pull": ("pull", "", "Download an image from a registry", "common"),
    "push": ("push", "", "Upload an image to a registry", "common"),
    "images": ("images", "images", "List images", "common"),
    "login": ("login", "", "Authenticate to a registry", "common"),
    "logout": ("logout", "", "Log out from a registry", "common"),
    "version": ("version", "", "Show the Docker version information", "common"),
    "info": ("info", "", "Display system-wide information", "common"),
    "attach": ("attach", "", "Attach local standard input, output, and error streams to a "
               "running container", ""),
    "commit": ("commit", "", "Create a new image from a container's changes", ""),
    "create": ("create", "", "Create a new container", ""),
    "history": ("history", "", "Show the history of an image", ""),
    "import": ("import_", "", "Import the contents from a tarball to create a filesystem image",
               ""),
    "inspect": ("inspect", "", "Return low-level information on Docker objects", ""),
    "kill": ("kill", "", "Kill one or more running containers", ""),
    "load": ("load", "", "Load an image from a tar archive or STDIN", ""),
    "logs": ("logs", "", "Fetch the logs of a container", ""),
    "rename": ("rename", "", "Rename a container", ""),
    "restart": ("restart", "", "Restart one or more containers", ""),
    "rm": ("rm", "", "Remove one or more containers", ""),
    "rmi": ("rmi", "rmi", "Remove one or more images", ""),
    "save": ("save", "", "Save one or more images to a tar archive (streamed to STDOUT by "
             "default)", ""),
    "start": ("start", "", "Start one or more stopped containers", ""),
    "stop": ("stop", "", "Stop one or more running containers", ""),
    "tag": ("tag", "", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", ""),
    "top": ("top", "", "Display the running processes of a container", ""),
    "wait": ("wait", "", "Block until one or more containers stop, then print their exit "
             "codes", ""),
}

#: management command → (short, {subcommand: (module, variant, short)}, {alias: subcommand})
MANAGEMENT: dict[str, tuple[str, dict[str, tuple[str, str, str]], dict[str, str]]] = {
    "container": ("Manage containers", {
        "attach": ("attach", "", COMMANDS["attach"][2]),
        "commit": ("commit", "", COMMANDS["commit"][2]),
        "create": ("create", "", COMMANDS["create"][2]),
        "exec": ("exec", "", COMMANDS["exec"][2]),
        "inspect": ("inspect", "container", "Display detailed information on one or more "
                    "containers"),
        "kill": ("kill", "", COMMANDS["kill"][2]),
        "logs": ("logs", "", COMMANDS["logs"][2]),
        "ls": ("ps", "ls", "List containers"),
        "prune": ("container_prune", "", "Remove all stopped containers"),
        "rename": ("rename", "", COMMANDS["rename"][2]),
        "restart": ("restart", "", COMMANDS["restart"][2]),
        "rm": ("rm", "", COMMANDS["rm"][2]),
        "run": ("run", "", COMMANDS["run"][2]),
        "start": ("start", "", COMMANDS["start"][2]),
        "stop": ("stop", "", COMMANDS["stop"][2]),
        "top": ("top", "", COMMANDS["top"][2]),
        "wait": ("wait", "", COMMANDS["wait"][2]),
    }, {"list": "ls", "ps": "ls", "remove": "rm"}),
    "image": ("Manage images", {
        "history": ("history", "", COMMANDS["history"][2]),
        "import": ("import_", "", COMMANDS["import"][2]),
        "inspect": ("inspect", "image", "Display detailed information on one or more images"),
        "load": ("load", "", COMMANDS["load"][2]),
        "ls": ("images", "ls", "List images"),
        "prune": ("image_prune", "", "Remove unused images"),
        "pull": ("pull", "", COMMANDS["pull"][2]),
        "push": ("push", "", COMMANDS["push"][2]),
        "rm": ("rmi", "rm", "Remove one or more images"),
        "save": ("save", "", COMMANDS["save"][2]),
        "tag": ("tag", "", COMMANDS["tag"][2]),
    }, {"list": "ls", "remove": "rm", "rmi": "rm"}),
    "system": ("Manage Docker", {
        "info": ("info", "", COMMANDS["info"][2]),
    }, {}),
}

BIN = "dockyard"
VERSION_LINE = "Dockyard version {version}"


def _root_help() -> str:
    pad = 12

    def row(name: str, short: str) -> str:
        return f"  {name.ljust(pad)}{short}"

    lines = [f"Usage:  {BIN} [OPTIONS] COMMAND", "", "A self-sufficient runtime for containers",
             "", "Common Commands:"]
    lines += [row(n, v[2]) for n, v in COMMANDS.items() if v[3] == "common"]
    lines += ["", "Management Commands:"]
    lines += [row(n, v[0]) for n, v in MANAGEMENT.items()]
    lines += ["", "Commands:"]
    lines += [row(n, COMMANDS[n][2]) for n in sorted(COMMANDS) if COMMANDS[n][3] != "common"]
    lines += [
        "", "Global Options:",
        "      --config string      Location of client config files (default",
        '                           "~/.docker")',
        "  -D, --debug              Enable debug mode",
        "  -H, --host list          Daemon socket to connect to",
        '  -l, --log-level string   Set the logging level ("debug", "info",',
        '                           "warn", "error", "fatal") (default "info")',
        "  -v, --version            Print version information and quit",
        "", f"Run '{BIN} COMMAND --help' for more information on a command.", "",
    ]
    return "\n".join(lines)


def _management_help(name: str) -> str:
    short, subs, _ = MANAGEMENT[name]
    lines = [f"Usage:  {BIN} {name} COMMAND", "", short, "", "Commands:"]
    lines += [f"  {s.ljust(11)} {v[2]}" for s, v in sorted(subs.items())]
    lines += ["", f"Run '{BIN} {name} COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)


def _format_error(exc: BaseException) -> str:
    msg = str(exc)
    if getattr(exc, "from_daemon", False):
        return f"Error response from daemon: {msg}"
    return msg


def _parse_root(argv: Sequence[str], err: TextWriter) -> tuple[dict[str, object], list[str]]:
    """Global flags up to the command word (pflag, non-interspersed)."""
    from dockyard.cli.flags import Command, Flag, parse

    root = Command(BIN, f"{BIN} [OPTIONS] COMMAND [ARG...]", "", [
        Flag("config", "", "string"),
        Flag("context", "c", "string"),
        Flag("debug", "D", "bool"),
        Flag("host", "H", "list"),
        Flag("log-level", "l", "string", "info"),
        Flag("tls", "", "bool"),
        Flag("tlsverify", "", "bool"),
        Flag("tlscacert", "", "string"),
        Flag("tlscert", "", "string"),
        Flag("tlskey", "", "string"),
        Flag("version", "v", "bool"),
    ], interspersed=False)
    root.path = BIN
    opts = parse(root, argv, warn=err.write)
    return dict(opts.__dict__), opts.args


def run(argv: Sequence[str], streams: object = None, env: dict[str, str] | None = None) -> int:
    """Run one command line; returns the exit status (nothing is raised)."""
    from dockyard.cli.app import Cli, StatusError, Streams
    from dockyard.cli.flags import ArgsError, FlagError, HelpRequested, help_text

    st = streams if isinstance(streams, Streams) else Streams()
    out, err = st.out, st.err
    cmd = None
    cli = None
    try:
        if not argv:
            err.write(_root_help())  # docker shows the help on stderr when given nothing
            return 0
        if argv[0] in ("--help", "help") and len(argv) == 1:
            out.write(_root_help())
            return 0
        try:
            root, rest = _parse_root(argv, err)
        except HelpRequested:
            out.write(_root_help())
            return 0
        except FlagError as exc:
            msg = str(exc).split("\n\n", 1)[0]
            err.write(f"{msg}\n\nUsage:  {BIN} [OPTIONS] COMMAND [ARG...]\n\n"
                      f"Run '{BIN} --help' for more information\n")
            return 125
        if root.get("version"):
            from dockyard import __version__

            out.write(VERSION_LINE.format(version=__version__) + "\n")
            return 0
        hosts = root.get("host") or []
        if len(hosts) > 1:  # type: ignore[arg-type]
            err.write("Specify only one -H\n")
            return 1
        if not rest:
            err.write(_root_help())
            return 0
        name, args = rest[0], rest[1:]
        if name == "help":
            if args and (args[0] in COMMANDS or args[0] in MANAGEMENT):
                name, args = args[0], ["--help"] + args[1:]
            else:
                out.write(_root_help())
                return 0
        if name in MANAGEMENT:
            short, subs, aliases = MANAGEMENT[name]
            if not args:
                err.write(_management_help(name))
                return 0
            if args[0] in ("--help", "-h"):
                out.write(_management_help(name))
                return 0
            sub = aliases.get(args[0], args[0])
            if sub not in subs:
                if sub.startswith("-"):
                    err.write(f"unknown flag: {sub}\n\nUsage:  {BIN} {name} COMMAND\n\n"
                              f"Run '{BIN} {name} --help' for more information\n")
                    return 125
                err.write(f"{BIN}: unknown command: {BIN} {name} {args[0]}\n\n"
                          f"Usage:  {BIN} {name}\n\n"
                          f"Run '{BIN} {name} --help' for more information\n")
                return 1
            module, variant, _ = subs[sub]
            path = f"{BIN} {name} {sub}"
            args = args[1:]
        elif name in COMMANDS:
            module, variant = COMMANDS[name][0], COMMANDS[name][1]
            path = f"{BIN} {name}"
        else:
            err.write(f"{BIN}: unknown command: {BIN} {name}\n\n"
                      f"Run '{BIN} --help' for more information\n")
            return 1

        modname = f"dockyard.cli.commands.{module}"
        __import__(modname)  # importlib itself would cost an import
        mod = sys.modules[modname]
        cmd = mod.command(path, variant)
        from dockyard.cli.flags import parse

        opts = parse(cmd, args, warn=err.write)
        opts.variant = variant
        cli = Cli(host=hosts[0] if hosts else None, streams=st, env=env,  # type: ignore[index]
                  debug=bool(root.get("debug")), config_dir=str(root.get("config") or "") or None)
        rc = mod.run(cli, opts)
        return int(rc or 0)
    except HelpRequested:
        assert cmd is not None
        out.write(help_text(cmd))
        return 0
    except FlagError as exc:
        err.write(f"{exc}\n")
        return 125
    except ArgsError as exc:
        err.write(f"{exc}\n")
        return 1
    except StatusError as exc:
        if exc.message:
            err.write(exc.message.rstrip("\n") + "\n")
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - every error ends as a message and a status
        from dockyard.errors import DockyardError

        if not isinstance(exc, (DockyardError, OSError, ValueError)):
            if env and env.get("DOCKYARD_TRACEBACK") or (cli is not None and cli.debug):
                import traceback

                err.write(traceback.format_exc())
        err.write(_format_error(exc) + "\n")
        return 1
    finally:
        if cli is not None:
            try:
                cli.close()
            except Exception:  # noqa: BLE001
                pass


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``dockyard``).

    Called without ``argv`` (as the installed script and ``python -m dockyard.cli`` do),
    it ends the process itself once the output is flushed: ``os._exit`` skips the
    interpreter's tear-down (module and object clean-up, about 5 ms here, some 15% of a
    ``dockyard version``), which has nothing left to do for us: every file we wrote is
    closed, the terminal is restored by the commands, and the only threads left are
    daemon threads blocked on sockets. Called with ``argv`` it returns the status."""
    rc = run(list(sys.argv[1:] if argv is None else argv))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
    if argv is None:
        import os

        os._exit(rc & 0xFF)
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
