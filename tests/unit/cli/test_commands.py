"""Command flows against the fake daemon: request sequences, output and exit statuses."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests.unit.cli.conftest import RunCli
from tests.unit.cli.fakedaemon import FakeDaemon, Program, Reply

V = "/v1.47"


def _ids(d: FakeDaemon) -> str:
    return next(r.path.split("/")[2] for r in d.requests if r.path.endswith("/start"))


# -- run -------------------------------------------------------------------------------------

def test_run_rm_attached_call_order_and_output(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    daemon.programs["busybox"] = Program(stdout=b"hi\n")
    r = run_cli("run", "--rm", "busybox", "echo", "hi")
    assert (r.rc, r.out, r.err) == (0, "hi\n", "")
    cid = _ids(daemon)
    assert daemon.lines(skip_ping=False) == [
        "HEAD /_ping",
        f"POST {V}/containers/create",
        f"POST {V}/containers/{cid}/attach?stderr=1&stdout=1&stream=1",
        f"POST {V}/containers/{cid}/wait?condition=removed",
        f"POST {V}/containers/{cid}/start",
    ]
    create = daemon.requests[1]
    body = create.json()
    assert body["Cmd"] == ["echo", "hi"] and body["Image"] == "busybox"
    assert body["AttachStdout"] and body["AttachStderr"] and not body["AttachStdin"]
    assert body["HostConfig"]["AutoRemove"] is True
    assert body["HostConfig"]["ConsoleSize"] == [0, 0]
    assert list(body)[:4] == ["Hostname", "Domainname", "User", "AttachStdin"]
    assert create.headers["content-type"] == "application/json"
    attach = daemon.requests[2]
    assert attach.headers["connection"] == "Upgrade" and attach.headers["upgrade"] == "tcp"
    # the wait is on the create connection, the attach and start on their own
    assert daemon.requests[3].conn_no == daemon.requests[1].conn_no
    assert len({daemon.requests[2].conn_no, daemon.requests[3].conn_no,
                daemon.requests[4].conn_no}) == 3


def test_run_separates_stdout_and_stderr_and_returns_the_exit_code(daemon: FakeDaemon,
        run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    daemon.programs["busybox"] = Program(stdout=b"out\n", stderr=b"err\n", exit_code=3)
    r = run_cli("run", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n")
    assert "wait?condition=next-exit" in "\n".join(daemon.lines())


def test_run_detached_prints_the_id_and_drops_the_wait(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    r = run_cli("run", "-d", "--name", "web", "-e", "A=1", "-l", "k=v", "busybox", "sleep", "300")
    assert r.rc == 0 and r.err == ""
    cid = r.out.strip()
    assert len(cid) == 64
    assert daemon.lines() == [
        f"POST {V}/containers/create?name=web",
        f"POST {V}/containers/{cid}/wait?condition=next-exit",
        f"POST {V}/containers/{cid}/start",
    ]
    body = daemon.requests[1].json()
    assert body["Env"] == ["A=1"] and body["Labels"] == {"k": "v"}
    assert not (body["AttachStdin"] or body["AttachStdout"] or body["AttachStderr"])


def test_run_interactive_pipes_stdin_and_half_closes(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("cat")
    daemon.programs["cat"] = Program(echo_stdin=True, exit_code=5)
    r = run_cli("run", "-i", "cat", stdin=b"piped\nline two\n")
    assert (r.rc, r.out) == (5, "piped\nline two\n")
    c = daemon.requests[1].json()
    assert c["AttachStdin"] and c["OpenStdin"] and c["StdinOnce"]
    assert "attach?stderr=1&stdin=1&stdout=1&stream=1" in daemon.lines()[1]


def test_run_flags_build_the_create_body(daemon: FakeDaemon, run_cli: RunCli,
        tmp_path: Path) -> None:
    daemon.add_image("busybox")
    envf = tmp_path / "env"
    envf.write_text("FROMFILE=1\n")
    labf = tmp_path / "labels"
    labf.write_text("lf=1\n")
    r = run_cli("run", "-d", "-w", "/tmp", "-u", "1000:1000", "-h", "box", "--entrypoint", "sh",
                "--env-file", str(envf), "-e", "B=2", "--label-file", str(labf), "-l", "x=y",
                "--stop-signal", "SIGHUP", "--stop-timeout", "7", "--init", "-p", "8080:80",
                "-v", "/data:/data:ro", "-v", "/anon", "--restart", "on-failure:3",
                "--memory", "64m", "--network", "mynet", "busybox", "-c", "true")
    assert r.rc == 0, r.err
    b = daemon.requests[1].json()
    assert (b["WorkingDir"], b["User"], b["Hostname"]) == ("/tmp", "1000:1000", "box")
    assert b["Entrypoint"] == ["sh"] and b["Cmd"] == ["-c", "true"]
    assert b["Env"] == ["FROMFILE=1", "B=2"] and b["Labels"] == {"lf": "1", "x": "y"}
    assert b["StopSignal"] == "SIGHUP" and b["StopTimeout"] == 7
    assert b["ExposedPorts"] == {"80/tcp": {}} and b["Volumes"] == {"/anon": {}}
    hc = b["HostConfig"]
    assert hc["Init"] is True and hc["Binds"] == ["/data:/data:ro"]
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert hc["Memory"] == 64 * 1024 * 1024 and hc["NetworkMode"] == "mynet"
    assert list(b["NetworkingConfig"]["EndpointsConfig"]) == ["mynet"]


def test_run_pulls_a_missing_image_then_creates_again(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.pullable["docker.io/library/alpine:latest"] = "sha256:" + "a1" * 32
    r = run_cli("run", "alpine", "true")
    assert r.rc == 0
    assert r.err == ("Unable to find image 'alpine:latest' locally\n"
                     "latest: Pulling from library/alpine\n"
                     "ec562eabd705: Pulling fs layer\n"
                     "ec562eabd705: Download complete\n"
                     "ec562eabd705: Pull complete\n"
                     f"Digest: sha256:{'d1' * 32}\n"
                     "Status: Downloaded newer image for alpine:latest\n")
    lines = daemon.lines()
    assert lines[:3] == [f"POST {V}/containers/create",
                         f"POST {V}/images/create?fromImage=docker.io%2Flibrary%2Falpine"
                         "&tag=latest",
                         f"POST {V}/containers/create"]
    assert daemon.requests[2].headers["x-registry-auth"] == "e30="


def test_run_pull_failure_exits_125_with_the_daemons_message(daemon: FakeDaemon,
        run_cli: RunCli) -> None:
    r = run_cli("run", "127.0.0.1:5000/nosuch:1")
    assert r.rc == 125
    assert r.err == ("Unable to find image '127.0.0.1:5000/nosuch:1' locally\n"
                     "dockyard: Error response from daemon: pull access denied for "
                     "127.0.0.1:5000/nosuch, repository does not exist or may require "
                     "'docker login'\n\nRun 'dockyard run --help' for more information\n")


def test_run_error_in_the_progress_stream(daemon: FakeDaemon, run_cli: RunCli) -> None:
    @daemon.route("POST", "/images/create")
    def _pull(req, conn):  # type: ignore[no-untyped-def]
        return Reply(200, b"", {"Content-Type": "application/json"}, chunks=[
            b'{"status":"Pulling from x","id":"1"}\r\n',
            b'{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\r\n'])

    r = run_cli("run", "127.0.0.1:5000/x:1")
    assert r.rc == 125
    assert r.err.endswith("1: Pulling from x\ndockyard: manifest unknown\n\n"
                          "Run 'dockyard run --help' for more information\n")


@pytest.mark.parametrize("message, status", [
    ('failed to create task: exec: "nosuch": executable file not found in $PATH', 127),
    ("OCI runtime create failed: open /x: no such file or directory", 127),
    ('exec: "/etc/passwd": permission denied', 126),
    ("something else went wrong", 125),
])
def test_run_start_errors_map_to_docker_exit_codes(daemon: FakeDaemon, run_cli: RunCli,
                                                   message: str, status: int) -> None:
    daemon.add_image("busybox")
    daemon.programs["busybox"] = Program(start_error=message)
    r = run_cli("run", "--rm", "busybox", "nosuch")
    assert r.rc == status
    assert r.err == (f"dockyard: Error response from daemon: {message}\n\n"
                     "Run 'dockyard run --help' for more information\n")


def test_run_flag_and_option_errors(daemon: FakeDaemon, run_cli: RunCli) -> None:
    r = run_cli("run", "--bogus", "busybox")
    assert r.rc == 125 and r.err.startswith("unknown flag: --bogus\n\nUsage:  dockyard run")
    r = run_cli("run")
    assert r.rc == 1 and "requires at least 1 argument" in r.err
    r = run_cli("run", "--pull", "sometimes", "busybox")
    assert r.rc == 125 and "invalid pull option: 'sometimes'" in r.err
    r = run_cli("run", "--rm", "--restart", "always", "busybox")
    assert r.rc == 125 and "cannot specify both --restart and --rm" in r.err
    r = run_cli("run", "-d", "-a", "stdout", "busybox")
    assert r.rc == 1 and r.err == "conflicting options: cannot specify both --attach and --detach\n"
    r = run_cli("run", "-it", "busybox")
    assert r.rc == 1 and r.err == "the input device is not a TTY\n"
    assert daemon.lines() == []


def test_run_name_conflict(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    assert run_cli("run", "-d", "--name", "x", "busybox").rc == 0
    r = run_cli("run", "-d", "--name", "x", "busybox")
    assert r.rc == 125
    assert 'Conflict. The container name "/x" is already in use' in r.err


# -- create / start --------------------------------------------------------------------------

def test_create_prints_the_id(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    r = run_cli("create", "--name", "c", "-t", "-i", "busybox", "sh")
    assert r.rc == 0 and len(r.out.strip()) == 64
    b = daemon.requests[1].json()
    assert b["Tty"] and b["OpenStdin"] and b["AttachStdin"] and b["StdinOnce"]
    r = run_cli("create", "nosuch:1")
    assert r.rc == 1 and r.err.startswith("Unable to find image 'nosuch:1' locally\n")
    assert r.err.endswith("Error response from daemon: pull access denied for "
                          "docker.io/library/nosuch, repository does not exist or may require "
                          "'docker login'\n")


def test_start_plain_and_attached(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    daemon.programs["busybox"] = Program(stdout=b"hello\n", exit_code=2)
    run_cli("create", "--name", "c1", "busybox")
    run_cli("create", "--name", "c2", "busybox")
    r = run_cli("start", "c1", "nosuch")
    assert r.rc == 1 and r.out == "c1\n"
    assert r.err == ("Error response from daemon: No such container: nosuch\n"
                     "Error: failed to start containers: nosuch\n")
    daemon.requests.clear()
    r = run_cli("start", "-a", "c2")
    assert (r.rc, r.out) == (2, "hello\n")
    cid = daemon.find("c2").id  # type: ignore[union-attr]
    assert daemon.lines() == [f"GET {V}/containers/c2/json",
                              f"POST {V}/containers/{cid}/attach?stderr=1&stdout=1&stream=1",
                              f"POST {V}/containers/{cid}/wait?condition=next-exit",
                              f"POST {V}/containers/{cid}/start"]


# -- ps / images / inspect ------------------------------------------------------------------

def test_ps_requests_and_output(daemon: FakeDaemon, run_cli: RunCli) -> None:
    r = run_cli("ps")
    assert r.rc == 0
    assert r.out == "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    assert daemon.lines(skip_ping=False) == ["HEAD /_ping", f"GET {V}/containers/json"]
    daemon.requests.clear()
    run_cli("ps", "-a", "-n", "2", "-s", "-f", "status=exited", "-f", "name=x")
    q = daemon.requests[1].query
    assert q["all"] == ["1"] and q["limit"] == ["2"] and q["size"] == ["1"]
    assert json.loads(q["filters"][0]) == {"status": {"exited": True}, "name": {"x": True}}
    daemon.requests.clear()
    run_cli("container", "ls", "-l", "-q")
    assert daemon.requests[1].query == {"limit": ["1"]}


def test_ps_quiet_and_custom_format(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    run_cli("create", "--name", "one", "-l", "tier=web", "busybox", "sleep", "1")
    r = run_cli("ps", "-a", "-q")
    assert r.out == daemon.find("one").id[:12] + "\n"  # type: ignore[union-attr]
    r = run_cli("ps", "-a", "--format", '{{.Names}} {{.Label "tier"}} {{.Command}} {{.State}}')
    assert r.out == 'one web "sleep 1" created\n'
    r = run_cli("ps", "-a", "--no-trunc", "--format", "{{.ID}}")
    assert len(r.out.strip()) == 64
    r = run_cli("ps", "--format", "{{.Nope}}")
    assert r.rc == 1 and r.err.startswith("failed to execute template: template: :1:2: "
                                          'executing "" at <.Nope>: can\'t evaluate field Nope')
    r = run_cli("ps", "-q", "--format", "{{.Names}}", "-a")
    assert r.err == "WARNING: Ignoring custom format, because both --format and --quiet are set.\n"


def test_images_and_image_ls(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    daemon.images[next(iter(daemon.images))]["RepoTags"].append("127.0.0.1:5000/bb:1")
    r = run_cli("images")
    lines = r.out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert lines[1].split()[:2] == ["127.0.0.1:5000/bb", "1"]
    assert lines[2].split()[:2] == ["busybox", "latest"] and lines[2].endswith("4.33MB")
    r = run_cli("image", "ls", "-q", "--no-trunc")
    assert r.out == ("sha256:" + "01" * 32 + "\n") * 2
    daemon.requests.clear()
    run_cli("images", "-a", "busybox")
    q = daemon.requests[1].query
    assert q["all"] == ["1"] and json.loads(q["filters"][0]) == {"reference": {"busybox": True}}
    r = run_cli("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert r.out == "127.0.0.1:5000/bb:1\nbusybox:latest\n"


def test_inspect_variants(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    run_cli("create", "--name", "web", "-l", "a=b", "busybox")
    r = run_cli("inspect", "web")
    assert r.rc == 0 and r.out.startswith('[\n    {\n        "Id": "')
    assert json.loads(r.out)[0]["Name"] == "/web"
    r = run_cli("container", "inspect", "-f", "{{.State.Status}} {{.NetworkSettings.IPAddress}} "
                "{{index .Config.Labels \"a\"}}", "web")
    assert r.out == "created 10.88.0.2 b\n"
    r = run_cli("inspect", "--format", "json", "web", "busybox")
    objs = json.loads(r.out)
    assert [o["Id"][:7] for o in objs] == [daemon.find("web").id[:7], "sha256:"]  # type: ignore[union-attr]
    assert "\n" not in r.out.strip()
    r = run_cli("image", "inspect", "-f", "{{.Size}}", "busybox")
    assert r.out == "4326768\n"
    r = run_cli("inspect", "nosuch")
    assert (r.rc, r.out, r.err) == (1, "[]\n", "Error: No such object: nosuch\n")
    r = run_cli("container", "inspect", "nosuch")
    assert (r.rc, r.err) == (1, "Error response from daemon: No such container: nosuch\n")
    r = run_cli("inspect", "--type", "volume", "web")
    assert r.rc == 1 and "no such volume" in r.err
    r = run_cli("inspect", "-f", "{{.Foo", "web")
    assert r.rc == 64 and r.err.startswith("template parsing error: template: :1: unclosed action")


# -- logs / stop / kill / rm / wait / rename / top / prune -------------------------------------

def test_logs(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    daemon.programs["busybox"] = Program(stdout=b"out-line\n", stderr=b"err-line\n")
    run_cli("create", "--name", "c", "busybox")
    daemon.requests.clear()
    r = run_cli("logs", "c")
    assert (r.rc, r.out, r.err) == (0, "out-line\n", "err-line\n")
    cid = daemon.find("c").id  # type: ignore[union-attr]
    assert daemon.lines() == [f"GET {V}/containers/c/json",
                              f"GET {V}/containers/{cid}/logs?stderr=1&stdout=1&tail=all"]
    daemon.requests.clear()
    run_cli("logs", "-f", "-t", "--details", "-n", "5", "--since", "1700000000", "c")
    assert daemon.lines()[1] == (f"GET {V}/containers/{cid}/logs?details=1&follow=1&"
                                 "since=1700000000&stderr=1&stdout=1&tail=5&timestamps=1")


def test_logs_of_a_tty_container_are_raw(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    daemon.programs["busybox"] = Program(stdout=b"raw\r\n")
    run_cli("create", "-t", "--name", "t", "busybox")
    assert run_cli("logs", "t").out == "raw\r\n"


def test_stop_kill_restart_rm_wait(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    daemon.programs["busybox"] = Program(block=True)
    ids = [run_cli("run", "-d", "--name", f"c{i}", "busybox").out.strip() for i in range(3)]
    daemon.requests.clear()
    r = run_cli("stop", "-t", "3", "c0", "nosuch")
    assert (r.rc, r.out, r.err) == (1, "c0\n", "Error response from daemon: No such container: "
                                                "nosuch\n")
    assert f"POST {V}/containers/c0/stop?t=3" in daemon.lines()
    r = run_cli("kill", "-s", "HUP", "c1")
    assert (r.rc, r.out) == (0, "c1\n")
    assert daemon.lines()[-1] == f"POST {V}/containers/c1/kill?signal=HUP"
    r = run_cli("rm", "c2")
    assert r.rc == 1 and "container is running" in r.err
    r = run_cli("rm", "-f", "-v", "c2", "nosuch")
    assert (r.rc, r.out) == (0, "c2\n")
    assert r.err == "Error response from daemon: No such container: nosuch\n"
    assert daemon.lines()[-2:] in ([f"DELETE {V}/containers/c2?force=1&v=1",
                                    f"DELETE {V}/containers/nosuch?force=1&v=1"],
                                   [f"DELETE {V}/containers/nosuch?force=1&v=1",
                                    f"DELETE {V}/containers/c2?force=1&v=1"])
    r = run_cli("wait", "c0", "c1")
    assert r.out == "143\n143\n"
    assert daemon.lines()[-1] == f"POST {V}/containers/c1/wait"
    r = run_cli("restart", "c0")
    assert (r.rc, r.out) == (0, "c0\n")
    del ids


def test_rename_top_prune(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    run_cli("create", "--name", "old", "busybox")
    assert run_cli("rename", "old", "new").rc == 0
    assert daemon.lines()[-1] == f"POST {V}/containers/old/rename?name=new"
    r = run_cli("rename", "nosuch", "x")
    assert r.rc == 1 and r.err == ("Error response from daemon: No such container: nosuch\n"
                                   "Error: failed to rename container named nosuch\n")
    r = run_cli("top", "new", "-ef")
    assert daemon.lines()[-1] == f"GET {V}/containers/new/top?ps_args=-ef"
    assert r.out.splitlines()[0].startswith("UID                 PID                 PPID")
    r = run_cli("container", "prune", "-f")
    assert r.out.startswith("Deleted Containers:\n" + daemon.requests[-1].path[:0])
    assert r.out.endswith("\n\nTotal reclaimed space: 1.234kB\n")
    r = run_cli("container", "prune", stdin=b"n\n")
    assert (r.rc, r.out) == (0, "WARNING! This will remove all stopped containers.\n"
                                "Are you sure you want to continue? [y/N] ")
    r = run_cli("image", "prune", "-a", "-f", "--filter", "until=24h")
    q = json.loads(daemon.requests[-1].query["filters"][0])
    assert q == {"until": {"24h": True}, "dangling": {"false": True}}
    assert r.out == (f"Deleted Images:\nuntagged: x:1\ndeleted: sha256:{'9' * 64}\n\n"
                     "Total reclaimed space: 4.327MB\n")


# -- exec / attach ---------------------------------------------------------------------------

def test_exec_call_order_and_exit_code(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    daemon.programs["busybox"] = Program(block=True)
    run_cli("run", "-d", "--name", "c", "busybox")
    daemon.requests.clear()
    r = run_cli("exec", "c", "echo", "hi")
    assert (r.rc, r.out) == (0, "hi\n")
    eid = daemon.requests[3].path.split("/")[2]
    assert daemon.lines() == [f"GET {V}/containers/c/json", f"POST {V}/containers/c/exec",
                              f"POST {V}/exec/{eid}/start", f"GET {V}/exec/{eid}/json"]
    assert daemon.requests[2].json() == {
        "User": "", "Privileged": False, "Tty": False, "AttachStdin": False,
        "AttachStderr": True, "AttachStdout": True, "Detach": False, "DetachKeys": "",
        "Env": None, "WorkingDir": "", "Cmd": ["echo", "hi"]}
    assert daemon.requests[3].json() == {"Detach": False, "Tty": False}
    assert daemon.requests[3].headers["upgrade"] == "tcp"
    daemon.exec_codes["false"] = 1
    assert run_cli("exec", "c", "false").rc == 1
    r = run_cli("exec", "-i", "-e", "X=1", "-u", "nobody", "-w", "/tmp", "c", "cat", stdin=b"data")
    assert r.out == "data"
    cfg = daemon.requests[-3].json()
    assert cfg["AttachStdin"] and cfg["Env"] == ["X=1"] and cfg["User"] == "nobody"
    daemon.requests.clear()
    assert run_cli("exec", "-d", "c", "echo", "x").rc == 0
    start = daemon.requests[3]
    assert start.json() == {"Detach": True, "Tty": False} and "upgrade" not in start.headers
    assert len(daemon.lines()) == 3
    r = run_cli("exec", "nosuch", "ls")
    assert (r.rc, r.err) == (1, "Error response from daemon: No such container: nosuch\n")


def test_attach_requires_a_running_container(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox")
    run_cli("create", "--name", "c", "busybox")
    r = run_cli("attach", "c")
    assert (r.rc, r.err) == (1, "You cannot attach to a stopped container, start it first\n")
    assert daemon.lines()[-2:] == [f"POST {V}/containers/c/wait", f"GET {V}/containers/c/json"]


# -- images: pull / push / tag / rmi / history / import / save / load / commit --------------------

def test_pull_output_and_request(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.pullable["127.0.0.1:5000/busybox-notes:1"] = "sha256:" + "c" * 64
    r = run_cli("pull", "127.0.0.1:5000/busybox-notes:1")
    assert r.rc == 0
    assert r.out == ("1: Pulling from busybox-notes\n"
                     "ec562eabd705: Pulling fs layer\n"
                     "ec562eabd705: Download complete\n"
                     "ec562eabd705: Pull complete\n"
                     f"Digest: sha256:{'d1' * 32}\n"
                     "Status: Downloaded newer image for busybox-notes:1\n"
                     "127.0.0.1:5000/busybox-notes:1\n")
    assert daemon.lines() == [
        f"POST {V}/images/create?fromImage=127.0.0.1%3A5000%2Fbusybox-notes&tag=1"]
    daemon.pullable["127.0.0.1:5000/x:latest"] = "sha256:" + "e" * 64
    r = run_cli("pull", "-q", "127.0.0.1:5000/x")
    assert r.out == "127.0.0.1:5000/x:latest\n"
    r = run_cli("pull", "127.0.0.1:5000/x")
    assert r.out.startswith("Using default tag: latest\n")
    r = run_cli("pull", "-a", "127.0.0.1:5000/x:1")
    assert (r.rc, r.err) == (1, "tag can't be used with --all-tags/-a\n")
    r = run_cli("pull", "127.0.0.1:5000/nope:1")
    assert r.rc == 1 and r.err.startswith("Error response from daemon: pull access denied")


def test_login_stores_credentials_and_pull_push_send_them(daemon: FakeDaemon, run_cli: RunCli,
                                                          cfgdir: str) -> None:
    daemon.auth_ok["tracer"] = "tracerpass"
    r = run_cli("login", "-u", "tracer", "--password-stdin", "127.0.0.1:5000",
                stdin=b"tracerpass\n")
    assert (r.rc, r.out) == (0, "Login Succeeded\n")
    path = os.path.join(cfgdir, "config.json")
    assert r.err == (f"\nWARNING! Your credentials are stored unencrypted in '{path}'.\n"
                     "Configure a credential helper to remove this warning. See\n"
                     "https://docs.docker.com/go/credential-store/\n\n")
    assert daemon.requests[1].json() == {"username": "tracer", "password": "tracerpass",
                                         "serveraddress": "127.0.0.1:5000"}
    with open(path) as f:
        cfg = json.load(f)
    assert cfg == {"auths": {"127.0.0.1:5000": {"auth": base64.b64encode(b"tracer:tracerpass")
                                                 .decode()}}}
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    want = ("eyJ1c2VybmFtZSI6InRyYWNlciIsInBhc3N3b3JkIjoidHJhY2VycGFzcyIsInNlcnZlcmFkZHJlc3Mi"
            "OiIxMjcuMC4wLjE6NTAwMCJ9")  # traces/pull.txt
    daemon.pullable["127.0.0.1:5000/busybox-notes:1"] = "sha256:" + "c" * 64
    run_cli("pull", "127.0.0.1:5000/busybox-notes:1")
    assert daemon.requests[-1].headers["x-registry-auth"] == want
    r = run_cli("push", "127.0.0.1:5000/busybox-notes:1")
    push = daemon.requests[-1]
    assert push.line() == f"POST {V}/images/127.0.0.1:5000/busybox-notes/push?tag=1"
    assert push.headers["x-registry-auth"] == want
    assert r.out == ("The push refers to repository [127.0.0.1:5000/busybox-notes]\n"
                     "829ae087f05f: Preparing\n829ae087f05f: Pushed\n"
                     f"1: digest: sha256:{'2f' * 32} size: 528\n")
    r = run_cli("push", "-q", "127.0.0.1:5000/busybox-notes")
    assert r.out == "127.0.0.1:5000/busybox-notes:latest\n"
    # a wrong password: the daemon's 401 message, nothing stored
    r = run_cli("login", "-u", "tracer", "-p", "wrong", "127.0.0.1:5000")
    assert r.rc == 1 and r.err.startswith("WARNING! Using --password via the CLI is insecure.")
    assert "Error response from daemon: login attempt to http://127.0.0.1:5000/v2/ failed" in r.err
    r = run_cli("logout", "127.0.0.1:5000")
    assert r.out == "Removing login credentials for 127.0.0.1:5000\n"
    with open(path) as f:
        assert json.load(f) == {"auths": {}}


def test_login_to_docker_hub_uses_the_index_key(daemon: FakeDaemon, run_cli, cfgdir: str) -> None:  # type: ignore[no-untyped-def]
    daemon.auth_ok["u"] = "p"
    r = run_cli("login", "-u", "u", "--password-stdin", stdin=b"p")
    assert r.rc == 0
    assert daemon.requests[-1].json()["serveraddress"] == "https://index.docker.io/v1/"
    with open(os.path.join(cfgdir, "config.json")) as f:
        assert list(json.load(f)["auths"]) == ["https://index.docker.io/v1/"]
    r = run_cli("login", "--password-stdin")
    assert (r.rc, r.err) == (1, "the --password-stdin option requires --username to be set\n")
    r = run_cli("login", "127.0.0.1:5000")
    assert r.err == "Error: Cannot perform an interactive login from a non TTY device\n"


def test_tag_rmi_history_commit(daemon: FakeDaemon, run_cli: RunCli) -> None:
    daemon.add_image("busybox-notes:1")
    assert run_cli("tag", "busybox-notes:1", "127.0.0.1:5000/busybox-notes:1").rc == 0
    assert daemon.lines()[-1] == (f"POST {V}/images/busybox-notes:1/tag?"
                                  "repo=127.0.0.1%3A5000%2Fbusybox-notes&tag=1")
    run_cli("tag", "busybox-notes:1", "mine")
    assert daemon.lines()[-1].endswith("/tag?repo=docker.io%2Flibrary%2Fmine&tag=latest")
    r = run_cli("history", "busybox-notes:1")
    assert r.out.splitlines()[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE",
                                             "COMMENT"]
    assert "2 minutes ago" in r.out and "<missing>" in r.out and "…" in r.out
    r = run_cli("history", "--no-trunc", "-H=false", "--format", "{{.Size}}", "busybox-notes:1")
    assert r.out == "0\n4326768\n"
    r = run_cli("rmi", "busybox-notes:1", "nosuch")
    assert r.rc == 1
    assert r.out == ("Untagged: busybox-notes:1\nUntagged: 127.0.0.1:5000/busybox-notes:1\n"
                     "Untagged: docker.io/library/mine:latest\nDeleted: sha256:" + "01" * 32 + "\n")
    assert r.err == "Error response from daemon: No such image: nosuch\n"
    assert run_cli("rmi", "-f", "nosuch").rc == 0
    daemon.add_image("busybox")
    run_cli("create", "--name", "c", "busybox")
    r = run_cli("commit", "-m", "notes", "c", "busybox-notes:1")
    assert r.out.startswith("sha256:")
    assert daemon.lines()[-1] == (f"POST {V}/commit?author=&comment=notes&container=c&"
                                  "repo=docker.io%2Flibrary%2Fbusybox-notes&tag=1")
    run_cli("commit", "-p=false", "-a", "me", "-c", "ENV A=1", "-c", "CMD sh", "c")
    assert daemon.lines()[-1] == (f"POST {V}/commit?author=me&changes=ENV+A%3D1&changes=CMD+sh&"
                                  "comment=&container=c&pause=0&repo=&tag=")


def test_import_streams_the_tarball_chunked(daemon: FakeDaemon, run_cli: RunCli,
        tmp_path: Path) -> None:
    data = os.urandom(200_000)
    f = tmp_path / "rootfs.tar"
    f.write_bytes(data)
    r = run_cli("import", "-m", "msg", "-c", "CMD sh", str(f), "myimg:1")
    assert r.rc == 0 and r.out.startswith("sha256:")
    req = daemon.requests[-1]
    assert req.line() == (f"POST {V}/images/create?changes=CMD+sh&fromSrc=-&message=msg&"
                          "repo=myimg%3A1")
    assert req.headers["transfer-encoding"] == "chunked"
    assert req.headers["content-type"] == "text/plain"
    assert daemon.imported[-1] == data
    r = run_cli("import", "-", "fromstdin", stdin=b"TAR")
    assert daemon.imported[-1] == b"TAR"
    r = run_cli("import", str(tmp_path / "missing.tar"))
    assert r.rc == 1 and r.err.startswith("open ")


def test_save_and_load(daemon: FakeDaemon, run_cli: RunCli,
        tmp_path: Path) -> None:
    out = tmp_path / "img.tar"
    assert run_cli("save", "-o", str(out), "a:1", "b").rc == 0
    assert out.read_bytes() == b"TARDATA:a:1,b"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert daemon.lines()[-1] == f"GET {V}/images/get?names=a%3A1&names=b"
    assert run_cli("save", "x").out == "TARDATA:x"
    r = run_cli("load", "-i", str(out))
    assert (r.rc, r.out) == (0, "Loaded image: loaded:latest\n")
    assert daemon.loaded[-1] == b"TARDATA:a:1,b"
    assert daemon.lines()[-1] == f"POST {V}/images/load?quiet=1"
    run_cli("load", stdin=b"FROMSTDIN")
    assert daemon.loaded[-1] == b"FROMSTDIN"


# -- system ----------------------------------------------------------------------------------

def test_version(daemon: FakeDaemon, run_cli: RunCli) -> None:
    r = run_cli("version")
    assert r.rc == 0
    lines = r.out.splitlines()
    assert lines[:3] == ["Client:", " Version:           0.1.0", " API version:       1.47"]
    assert lines[8:11] == ["", "Server:", " Engine:"]
    assert "  API version:      1.47 (minimum version 1.24)" in lines
    assert "  Built:            Thu May  7 21:09:36 2026" in lines
    assert daemon.lines(skip_ping=False) == ["HEAD /_ping", f"GET {V}/version"]
    r = run_cli("version", "--format", "{{.Server.Version}} {{.Client.ApiVersion}}")
    assert r.out == "0.1.0 1.47\n"
    assert json.loads(run_cli("version", "-f", "json").out)["Server"]["ApiVersion"] == "1.47"


def test_api_version_is_negotiated_down(daemon: FakeDaemon, run_cli: RunCli) -> None:
    @daemon.route("HEAD", "/_ping")
    def _ping(req, conn):  # type: ignore[no-untyped-def]
        return Reply(200, b"", {"Api-Version-Override": "x"})

    import tests.unit.cli.fakedaemon as fd

    old = fd.API_VERSION
    fd.API_VERSION = "1.41"
    try:
        r = run_cli("version")
    finally:
        fd.API_VERSION = old
    assert " API version:       1.41 (downgraded from 1.47)" in r.out
    assert daemon.lines()[0] == "GET /v1.41/version"


def test_info(daemon: FakeDaemon, run_cli: RunCli) -> None:
    r = run_cli("info")
    assert r.rc == 0
    assert r.out.startswith("Client:\n Version:    0.1.0\n Context:    default\n"
                            " Debug Mode: false\n\nServer:\n Containers: 0\n  Running: 0\n")
    assert " Total Memory: 7.64GiB\n" in r.out and " Storage Driver: overlay2\n" in r.out
    assert run_cli("system", "info", "-f", "{{.NCPU}}").out == "2\n"


def test_unknown_command_and_help(run_cli: RunCli) -> None:
    r = run_cli("nosuch")
    assert (r.rc, r.err) == (1, "dockyard: unknown command: dockyard nosuch\n\n"
                                "Run 'dockyard --help' for more information\n")
    r = run_cli("container", "nosuch")
    assert r.rc == 1 and "unknown command: dockyard container nosuch" in r.err
    r = run_cli("--help")
    assert r.rc == 0 and r.out.startswith("Usage:  dockyard [OPTIONS] COMMAND\n")
    assert "  run         Create and run a new container from an image\n" in r.out
    r = run_cli("ps", "--help")
    assert r.rc == 0 and r.out.startswith("Usage:  dockyard ps [OPTIONS]\n\nList containers\n")
    r = run_cli("--bogus")
    assert r.rc == 125 and r.err.startswith("unknown flag: --bogus")
    assert run_cli("-v").out.startswith("Dockyard version ")


def test_connection_failure(run_cli: RunCli, sockdir: str) -> None:
    host = f"unix://{sockdir}/none.sock"
    r = run_cli("-H", host, "ps")
    assert (r.rc, r.err) == (1, f"Cannot connect to the dockyard daemon at {host}. "
                                "Is the dockyard daemon running?\n")
    r = run_cli("run", "busybox", env={"DOCKER_HOST": host})
    assert r.rc == 125 and r.err == (f"dockyard: Cannot connect to the dockyard daemon at {host}. "
                                     "Is the dockyard daemon running?\n\n"
                                     "Run 'dockyard run --help' for more information\n")
    r = run_cli("version", env={"DOCKER_HOST": host})
    assert r.rc == 1 and r.out.startswith("Client:\n") and "Server:" not in r.out
    r = run_cli("-H", "tcp://1.2.3.4:2375", "ps")
    assert r.rc == 1 and "only unix://PATH is supported" in r.err


def test_error_bodies_that_are_not_json(daemon: FakeDaemon, run_cli: RunCli) -> None:
    @daemon.route("GET", "/containers/json")
    def _text(req, conn):  # type: ignore[no-untyped-def]
        return Reply(500, b"plain failure\n", {"Content-Type": "text/plain; charset=utf-8"})

    assert run_cli("ps").err == "Error response from daemon: plain failure\n"

    @daemon.route("GET", "/images/json")
    def _empty(req, conn):  # type: ignore[no-untyped-def]
        return Reply(503, b"", {})

    r = run_cli("images")
    assert r.err == ("request returned 503 Service Unavailable for API route and version "
                     f"{V}/images/json, check if the server supports the requested API version\n")

    @daemon.route("GET", "/info")
    def _charset(req, conn):  # type: ignore[no-untyped-def]
        return Reply(500, b'{"message":"x"}', {"Content-Type": "application/json; charset=utf-8"})

    assert 'Error response from daemon: {"message":"x"}' in run_cli("info").err
