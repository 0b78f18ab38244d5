"""pflag-compatible parsing, docker's error texts, help rendering, and the JSON progress display."""

from __future__ import annotations

import io

import pytest

from dockyard.cli.flags import ArgsError, Command, Flag, FlagError, HelpRequested, help_text, parse
from dockyard.cli.opts import (
    OptError,
    filters_to_map,
    parse_timestamp,
    read_kv_env_strings,
    validate_env,
)
from dockyard.cli.progress import JSONMessageError, display_stream, go_duration, progress_string
from dockyard.cli.term import Detach, EscapeProxy, parse_detach_keys


def run_cmd() -> Command:
    from dockyard.cli.commands.run import command

    return command("dockyard run")


def test_interspersed_false_stops_at_the_image() -> None:
    o = parse(run_cmd(), ["-it", "--rm", "-e", "A=1", "-eB=2", "--name=web", "busybox", "ls", "-l",
                          "--rm"])
    assert o.interactive and o.tty and o.rm
    assert o.env == ["A=1", "B=2"] and o.name == "web"
    assert o.args == ["busybox", "ls", "-l", "--rm"]
    assert {"interactive", "tty", "rm", "env", "name"} <= o.changed


def test_bool_values_and_defaults() -> None:
    o = parse(run_cmd(), ["--sig-proxy=false", "--rm=true", "-d=false", "x"])
    assert o.sig_proxy is False and o.rm is True and o.detach is False
    o = parse(run_cmd(), ["x"])
    assert o.sig_proxy is True and o.pull == "missing" and o.attach == []


def test_double_dash_ends_flags() -> None:
    from dockyard.cli.commands.ps import command

    with pytest.raises(ArgsError):
        parse(command("dockyard ps"), ["--", "-a"])


def test_short_value_forms() -> None:
    from dockyard.cli.commands.ps import command

    cmd = command("dockyard ps")
    assert parse(cmd, ["-n", "3"]).last == 3
    assert parse(cmd, ["-n3"]).last == 3
    assert parse(cmd, ["-n=3"]).last == 3
    assert parse(cmd, ["-aqn", "2"]).last == 2
    assert parse(cmd, ["-f", "status=running", "--filter=name=x"]).filter == \
        ["status=running", "name=x"]


@pytest.mark.parametrize("argv, first_line", [
    (["--foo"], "unknown flag: --foo"),
    (["-x", "busybox"], "unknown shorthand flag: 'x' in -x"),
    (["-itx"], "unknown shorthand flag: 'x' in -x"),
    (["--name"], "flag needs an argument: --name"),
    (["-e"], "flag needs an argument: 'e' in -e"),
    (["--rm=maybe", "x"], 'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: '
                          'parsing "maybe": invalid syntax'),
    (["--stop-timeout", "x", "b"], 'invalid argument "x" for "--stop-timeout" flag: '
                                   'strconv.ParseInt: parsing "x": invalid syntax'),
    (["-a", "foo", "b"], 'invalid argument "foo" for "-a, --attach" flag: valid streams are '
                         "STDIN, STDOUT and STDERR"),
    (["---x"], "bad flag syntax: ---x"),
])
def test_flag_errors_like_docker(argv: list[str], first_line: str) -> None:
    with pytest.raises(FlagError) as ei:
        parse(run_cmd(), argv)
    assert str(ei.value) == (f"{first_line}\n\nUsage:  dockyard run [OPTIONS] IMAGE [COMMAND] "
                             "[ARG...]\n\nRun 'dockyard run --help' for more information")


def test_argument_count_errors() -> None:
    with pytest.raises(ArgsError) as ei:
        parse(run_cmd(), [])
    assert str(ei.value).startswith("dockyard: 'dockyard run' requires at least 1 argument\n\n"
                                    "Usage:  dockyard run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                                    "See 'dockyard run --help'")
    from dockyard.cli.commands.ps import command

    with pytest.raises(ArgsError, match="'dockyard ps' accepts no arguments"):
        parse(command("dockyard ps"), ["extra"])


def test_help_flag_and_deprecated_h() -> None:
    from dockyard.cli.commands.ps import command

    with pytest.raises(HelpRequested):
        parse(run_cmd(), ["--help"])
    warnings: list[str] = []
    with pytest.raises(HelpRequested):
        parse(command("dockyard ps"), ["-h"], warn=warnings.append)
    assert warnings == ["Flag shorthand -h has been deprecated, use --help\n"]
    assert parse(run_cmd(), ["-h", "myhost", "img"]).hostname == "myhost"  # -h is --hostname


def test_help_text_matches_docker_layout() -> None:
    from dockyard.cli.commands.logs import command

    assert help_text(command("dockyard logs"), width=80) == """\
Usage:  dockyard logs [OPTIONS] CONTAINER

Fetch the logs of a container

Aliases:
  dockyard container logs, dockyard logs

Options:
      --details        Show extra details provided to logs
  -f, --follow         Follow log output
      --since string   Show logs since timestamp (e.g.
                       "2013-01-02T13:23:37Z") or relative (e.g. "42m"
                       for 42 minutes)
  -n, --tail string    Number of lines to show from the end of the logs
                       (default "all")
  -t, --timestamps     Show timestamps
      --until string   Show logs before a timestamp (e.g.
                       "2013-01-02T13:23:37Z") or relative (e.g. "42m"
                       for 42 minutes)
"""


def test_deprecated_flag_warns_and_is_hidden() -> None:
    from dockyard.cli.commands.stop import command

    cmd = command("dockyard stop")
    w: list[str] = []
    o = parse(cmd, ["--time", "3", "c"], warn=w.append)
    assert o.time_ == 3 and w == ["Flag --time has been deprecated, use --timeout instead\n"]
    assert "--time " not in help_text(cmd, 80)


def test_custom_flag_kinds() -> None:
    cmd = Command("dockyard x", "x", "X", [Flag("tags", "", "strings"), Flag("n", "", "int", 5)])
    o = parse(cmd, ["--tags", "a,b", "--tags=c", "--n", "0x10"])
    assert o.tags == ["a", "b", "c"] and o.n == 16


# -- option values ---------------------------------------------------------------------------

def test_env_values(tmp_path: object) -> None:
    import os

    assert validate_env("A=1", {}) == "A=1"
    assert validate_env("HOME", {"HOME": "/root"}) == "HOME=/root"
    assert validate_env("UNSET", {}) == "UNSET"
    with pytest.raises(ValueError):
        validate_env("=x", {})
    f = os.path.join(str(tmp_path), "env")
    with open(f, "w") as fh:
        fh.write("# comment\n\nA=1\n  B=spaced value \nPASSED\nMISSING\nC=x=y\n")
    assert read_kv_env_strings([f], ["D=4"], {"PASSED": "yes"}) == \
        ["A=1", "B=spaced value ", "PASSED=yes", "C=x=y", "D=4"]
    with open(f, "w") as fh:
        fh.write("BAD KEY=1\n")
    with pytest.raises(OptError, match="variable 'BAD KEY' contains whitespaces"):
        read_kv_env_strings([f], [], {})


def test_filters_to_map() -> None:
    assert filters_to_map(["status=running", "Label=a=b", "status=exited", "status=running"]) == \
        {"status": ["running", "exited"], "label": ["a=b"]}


def test_parse_timestamp() -> None:
    assert parse_timestamp("10m", now=1000.0) == "400.000000000"
    assert parse_timestamp("1h30m", now=10000.0) == "4600.000000000"
    assert parse_timestamp("1700000000") == "1700000000"
    assert parse_timestamp("2013-01-02T13:23:37Z") == "1357133017.000000000"
    with pytest.raises(OptError):
        parse_timestamp("yesterday")


# -- terminal --------------------------------------------------------------------------------

def test_detach_keys() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-@,a,DEL,ctrl-\\") == b"\x00a\x7f\x1c"
    with pytest.raises(ValueError, match="Unknown character: 'ctrl-1'"):
        parse_detach_keys("ctrl-1")


def test_escape_proxy_holds_back_a_partial_sequence() -> None:
    p = EscapeProxy(b"\x10\x11")
    assert p.feed(b"ab\x10") == b"ab"
    assert p.feed(b"c") == b"\x10c"
    assert p.feed(b"\x10") == b""
    with pytest.raises(Detach):
        p.feed(b"\x11")


# -- progress display ------------------------------------------------------------------------

PULL = [
    {"status": "Pulling from library/busybox", "id": "latest"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "ec562eabd705"},
    {"status": "Downloading", "progressDetail": {"current": 1000000, "total": 4000000},
     "progress": "[===>  ]", "id": "ec562eabd705"},
    {"status": "Pull complete", "progressDetail": {}, "id": "ec562eabd705"},
    {"status": "Digest: sha256:abc"},
    {"status": "Status: Downloaded newer image for busybox:latest"},
]


def test_progress_plain_output() -> None:
    out = io.StringIO()
    display_stream(PULL, out, is_terminal=False)
    assert out.getvalue() == ("latest: Pulling from library/busybox\n"
                              "ec562eabd705: Pulling fs layer\n"
                              "ec562eabd705: Pull complete\n"
                              "Digest: sha256:abc\n"
                              "Status: Downloaded newer image for busybox:latest\n")


def test_progress_terminal_output_rewrites_lines() -> None:
    out = io.StringIO()
    display_stream(PULL, out, is_terminal=True, width=120)
    s = out.getvalue()
    assert "\x1b[2K\rec562eabd705: Downloading [" + "=" * 12 + ">" + " " * 38 + "] " \
        "     1MB/4MB\r" in s
    assert "\x1b[2K\rec562eabd705: Pulling fs layer \r" in s
    assert "\x1b[1A" in s and "\x1b[1B" in s
    assert s.endswith("Status: Downloaded newer image for busybox:latest\n")


def test_progress_error_ends_the_stream() -> None:
    msgs = [{"status": "Pulling"}, {"errorDetail": {"message": "boom"}, "error": "boom"}]
    with pytest.raises(JSONMessageError, match="boom"):
        display_stream(msgs, io.StringIO(), is_terminal=False)


def test_progress_string() -> None:
    assert progress_string({"current": 68608, "total": 4326768}, 200) == \
        "[>" + " " * 50 + "]  68.61kB/4.327MB"
    assert progress_string({"current": 5000, "total": 4000}, 80) == "     5kB"
    assert progress_string({"current": 100}, 80) == "    100B"
    assert progress_string({}, 80) == ""
    assert go_duration(65) == "1m5s" and go_duration(0) == "0s" and go_duration(3603) == "1h0m3s"
