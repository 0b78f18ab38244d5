"""``dockyard login``: check credentials with the daemon (``POST /auth``) and store them in
docker's ``config.json`` (``auths.<server>.auth`` = base64 ``user:password``)."""

from __future__ import annotations

from dockyard.cli.app import Cli, StatusError
from dockyard.cli.flags import Command, Flag, Parsed

UNENCRYPTED_WARNING = (
    "\nWARNING! Your credentials are stored unencrypted in '{path}'.\n"
    "Configure a credential helper to remove this warning. See\n"
    "https://docs.docker.com/go/credential-store/\n"
)


def command(path: str, variant: str = "") -> Command:
    return Command(path, "login [OPTIONS] [SERVER]", "Authenticate to a registry", [
        Flag("password", "p", "string", usage="Password or Personal Access Token (PAT)"),
        Flag("password-stdin", "", "bool", usage="Take the Password or Personal Access Token "
             "(PAT) from stdin"),
        Flag("username", "u", "string", usage="Username"),
    ], args=("max", 1), long="Authenticate to a registry.\nDefaults to Docker Hub if no server is "
       "specified.")


def _read_line(cli: Cli, prompt: str, echo: bool = True) -> str:
    cli.out.write(prompt)
    fd = cli.streams.fd("stdin")
    state = None
    if not echo and fd >= 0:
        import termios

        try:
            state = termios.tcgetattr(fd)
            new = list(state)
            new[3] &= ~termios.ECHO
            termios.tcsetattr(fd, termios.TCSANOW, new)
        except (termios.error, OSError):
            state = None
    try:
        line = b""
        while True:
            ch = cli.streams.stdin.read(1)
            if not ch or ch == b"\n":
                break
            line += ch
    finally:
        if state is not None:
            import termios

            termios.tcsetattr(fd, termios.TCSANOW, state)
    return line.decode(errors="replace").strip()


def _store(cli: Cli, server: str, user: str, password: str, token: str) -> None:
    if token:
        password = ""
    try:
        changed = cli.config.store_auth(server, user, password, token)
    except OSError as exc:
        raise StatusError(1, f"Error saving credentials: {exc}") from None
    if changed and password:
        cli.err.write(UNENCRYPTED_WARNING.format(path=cli.config.path) + "\n")


def run(cli: Cli, opts: Parsed) -> int:
    from dockyard.client.config import INDEX_SERVER, convert_to_hostname
    from dockyard.errors import Unauthorized

    ch = opts.changed
    if "password-stdin" in ch:
        if "password" in ch:
            raise StatusError(1, "conflicting options: cannot specify both --password and "
                              "--password-stdin")
        if "username" not in ch:
            raise StatusError(1, "the --password-stdin option requires --username to be set")
    if "username" in ch and not opts.username:
        raise StatusError(1, "username is empty")
    if "password" in ch and not opts.password:
        raise StatusError(1, "password is empty")
    user, password = opts.username.strip(), opts.password
    if password:
        cli.err.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if opts.password_stdin:
        data = cli.streams.stdin.read().decode(errors="replace")
        password = data.removesuffix("\n").removesuffix("\r")
    arg = opts.args[0] if opts.args else ""
    server = arg if arg and arg != "docker.io" else INDEX_SERVER
    is_default = server == INDEX_SERVER
    key = server if is_default else convert_to_hostname(server)

    if not user and not password:
        stored = cli.config.get_auth(key)
        if stored.get("username") and stored.get("password"):
            cli.err.write(f"Authenticating with existing credentials... "
                          f"[Username: {stored['username']}]\n\n")
            cli.err.write("i Info → To login with a different account, run 'docker logout' "
                          "followed by 'docker login'\n\n\n")
            try:
                resp = cli.client.auth({"username": stored["username"],
                                        "password": stored["password"], "serveraddress": key})
                cli.print(resp.get("Status", ""))
                return 0
            except Unauthorized:
                cli.err.write("Stored credentials invalid or expired\n")
            except Exception as exc:  # noqa: BLE001
                from dockyard.cli.common import error_text

                cli.err.write(f"Login did not succeed, error: {error_text(exc)}\n")
    if (not user or not password) and not cli.streams.is_terminal("stdin"):
        raise StatusError(1, "Error: Cannot perform an interactive login from a non TTY device")
    if not user:
        default = cli.config.get_auth(key).get("username", "")
        user = _read_line(cli, f"Username ({default}): " if default else "Username: ") or default
        if not user:
            raise StatusError(1, "Error: Non-null Username Required")
    if not password:
        password = _read_line(cli, "Password: ", echo=False)
        cli.print()
        if not password:
            raise StatusError(1, "Error: Password Required")
    resp = cli.client.auth({"username": user, "password": password, "serveraddress": key})
    _store(cli, key, user, password, str(resp.get("IdentityToken", "") or ""))
    status = resp.get("Status", "")
    if status:
        cli.print(status)
    return 0
