"""``dockyard create``: create a container (pulling the image if it is missing)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.common import aliases
from dockyard.cli.containeropts import build, container_flags
from dockyard.cli.flags import Command, Flag, Parsed
from dockyard.cli.opts import OptError


def command(path: str, variant: str = "") -> Command:
    flags = container_flags() + [
        Flag("help", "", "bool", usage="Print usage"),
        Flag("pull", "", "string", "missing",
             usage='Pull image before creating ("always", "|missing", "never")'),
        Flag("quiet", "q", "bool", usage="Suppress the pull output"),
    ]
    return Command(path, "create [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
                   flags, args=("min", 1), interspersed=False,
                   aliases=aliases("container create", "create"))


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.cli.commands.run import validate_pull
    from dockyard.cli.runflow import create_container, with_help

    image, args = opts.args[0], opts.args[1:]
    try:
        validate_pull(opts.pull)
        body = build(opts, cli, image, args, console_size=cli.streams.tty_size())
    except (OptError, ValueError) as exc:
        raise StatusError(125, with_help(str(exc), "create")) from None
    cid = create_container(cli, body, name=opts.name, platform=opts.platform, pull=opts.pull,
                           quiet=opts.quiet)
    cli.print(cid)
    return 0
