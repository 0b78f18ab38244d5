"""``dockyard run``: create and run a container (docker's call order, see runflow)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.containeropts import build, container_flags
from dockyard.cli.flags import Command, Flag, Parsed
from dockyard.cli.opts import OptError

PULL_CHOICES = ("always", "missing", "never")


def command(path: str, variant: str = "") -> Command:
    flags = container_flags() + [
        Flag("detach", "d", "bool", usage="Run container in background and print container ID"),
        Flag("detach-keys", "", "string", usage="Override the key sequence for detaching a "
             "container"),
        Flag("help", "", "bool", usage="Print usage"),
        Flag("pull", "", "string", "missing",
             usage='Pull image before running ("always", "missing", "never")'),
        Flag("quiet", "q", "bool", usage="Suppress the pull output"),
        Flag("sig-proxy", "", "bool", True, usage="Proxy received signals to the process"),
    ]
    return Command(path, "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
                   "Create and run a new container from an image", flags, args=("min", 1),
                   interspersed=False, aliases=aliases("container run", "run"))


def validate_pull(value: str) -> None:
    if value not in PULL_CHOICES:
        raise OptError(f"invalid pull option: '{value}': must be one of \"always\", "
                       "\"missing\" or \"never\"")


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.runflow import attached_session, create_container, to_status_error, with_help

    image, args = opts.args[0], opts.args[1:]
    try:
        validate_pull(opts.pull)
        body = build(opts, cli, image, args, console_size=cli.streams.tty_size())
    except (OptError, ValueError) as exc:
        raise StatusError(125, with_help(str(exc), "run")) from None
    if not opts.detach:
        if body["Tty"] and body["AttachStdin"] and not cli.streams.is_terminal("stdin"):
            raise StatusError(1, "the input device is not a TTY")
    else:
        if opts.attach:
            raise StatusError(1, "conflicting options: cannot specify both --attach and --detach")
        body["AttachStdin"] = body["AttachStdout"] = body["AttachStderr"] = False
        body["StdinOnce"] = False
    try:
        cid = create_container(cli, body, name=opts.name, platform=opts.platform, pull=opts.pull,
                               quiet=opts.quiet)
    except Exception as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise to_status_error(exc, "run") from None
    attach = body["AttachStdin"] or body["AttachStdout"] or body["AttachStderr"]
    if not attach:
        cli.print(cid)
    detach_keys = opts.detach_keys or cli.config.detach_keys
    status = attached_session(
        cli, cid, tty=body["Tty"], stdin=body["AttachStdin"], stdout=body["AttachStdout"],
        stderr=body["AttachStderr"], detach_keys=detach_keys,
        auto_remove=body["HostConfig"]["AutoRemove"], sig_proxy=opts.sig_proxy, verb="run")
    if status:
        raise StatusError(status)
    return 0
