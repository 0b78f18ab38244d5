"""``dockyard logout``: forget the stored credentials of a registry (no daemon needed)."""

from __future__ import annotations

from dockyard.cli.app import Cli
from dockyard.cli.flags import Command, Parsed


def command(path: str, variant: str = "") -> Command:
    return Command(path, "logout [SERVER]", "Log out from a registry", args=("max", 1),
                   long="Log out from a registry.\nIf no server is specified, the default is "
                   "defined by the daemon.")


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.client.config import INDEX_SERVER, convert_to_hostname

    server = opts.args[0] if opts.args else ""
    default = not server
    if default:
        server = INDEX_SERVER
    regs = [server]
    host = server
    if not default:
        host = convert_to_hostname(server)
        regs += [host, "http://" + host, "https://" + host]
    cli.print("Removing login credentials for", host)
    errs = {}
    for r in regs:
        try:
            cli.config.erase_auth(r)
        except OSError as exc:
            errs[r] = exc
    if errs and len(errs) == len(regs):
        cli.err.write("WARNING: could not erase credentials:\n")
        for k, v in errs.items():
            cli.err.write(f"{k}: {v}\n")
    return 0
