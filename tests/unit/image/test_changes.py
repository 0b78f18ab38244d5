"""``--change`` instructions (docker import/commit)."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.image.changes import apply_changes, parse_duration, split_words


def test_cmd_and_entrypoint_forms() -> None:
    assert apply_changes({}, ['CMD ["echo", "hi"]'])["Cmd"] == ["echo", "hi"]
    assert apply_changes({}, ["CMD echo hi $HOME"])["Cmd"] == ["/bin/sh", "-c", "echo hi $HOME"]
    assert apply_changes({}, ['ENTRYPOINT ["/init"]'])["Entrypoint"] == ["/init"]
    assert apply_changes({}, ["entrypoint top -b"])["Entrypoint"] == ["/bin/sh", "-c", "top -b"]
    # not a JSON array of strings: shell form
    assert apply_changes({}, ["CMD [1, 2]"])["Cmd"] == ["/bin/sh", "-c", "[1, 2]"]


def test_entrypoint_resets_an_earlier_image_cmd_but_not_one_set_here() -> None:
    base = {"Cmd": ["sh"]}
    assert apply_changes(base, ['ENTRYPOINT ["e"]'])["Cmd"] is None
    cfg = apply_changes(base, ['CMD ["c"]', 'ENTRYPOINT ["e"]'])
    assert (cfg["Cmd"], cfg["Entrypoint"]) == (["c"], ["e"])
    assert base == {"Cmd": ["sh"]}   # the input is not modified


def test_env_forms_and_expansion() -> None:
    cfg = apply_changes({"Env": ["PATH=/bin"]}, [
        "ENV A=1 B=\"two words\" C=x\\ y",
        "ENV LEGACY some value here",
        "ENV PATH=/usr/local/bin:$PATH D=${A}-${MISSING:-dflt}-${A:+set}",
    ])
    assert cfg["Env"] == ["A=1", "B=two words", "C=x y", "LEGACY=some value here",
                          "PATH=/usr/local/bin:/bin", "D=1-dflt-set"]


def test_label_expose_volume_workdir_user_stopsignal() -> None:
    cfg = apply_changes({"Env": ["V=/data", "P=8080"]}, [
        'LABEL a=b "c d"=e',
        "EXPOSE 80 443/tcp 53/udp $P 7000-7002",
        'VOLUME ["/v1"]',
        "VOLUME $V /other",
        "WORKDIR /srv",
        "WORKDIR app",
        "USER 1000:1000",
        "STOPSIGNAL SIGQUIT",
    ])
    assert cfg["Labels"] == {"a": "b", "c d": "e"}
    assert cfg["ExposedPorts"] == {p: {} for p in (
        "80/tcp", "443/tcp", "53/udp", "8080/tcp", "7000/tcp", "7001/tcp", "7002/tcp")}
    assert cfg["Volumes"] == {"/v1": {}, "/data": {}, "/other": {}}
    assert cfg["WorkingDir"] == "/srv/app"
    assert cfg["User"] == "1000:1000"
    assert cfg["StopSignal"] == "SIGQUIT"


def test_healthcheck_and_onbuild() -> None:
    cfg = apply_changes({}, ["HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://x/"])
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f http://x/"],
                                  "Interval": 30_000_000_000, "Retries": 3}
    assert apply_changes({}, ['HEALTHCHECK CMD ["true"]'])["Healthcheck"] == {"Test": ["CMD", "true"]}
    assert apply_changes({}, ["HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}
    assert apply_changes({}, ["ONBUILD RUN make"])["OnBuild"] == ["RUN make"]


@pytest.mark.parametrize("change,msg", [
    ("RUN echo hi", "RUN is not a valid change command"),
    ("FROM busybox", "FROM is not a valid change command"),
    ("ADD . /", "ADD is not a valid change command"),
    ("EXPOSE abc", "invalid containerPort"),
    ("LABEL =x", "names can not be blank"),
    ("WORKDIR a b", "exactly one argument"),
    ("ENV A", "two arguments"),
    ("ONBUILD FROM x", "isn't allowed as an ONBUILD trigger"),
    ("HEALTHCHECK --bogus=1 CMD x", "Unknown flag"),
    ('LABEL a="unterminated', "matching"),
])
def test_invalid_changes(change: str, msg: str) -> None:
    with pytest.raises(InvalidArgument, match=msg):
        apply_changes({}, [change])


def test_split_words_and_durations() -> None:
    assert split_words("a 'b c' \"d\\\"e\" f\\ g") == ["a", "b c", 'd"e', "f g"]
    assert parse_duration("1m30s") == 90_000_000_000
    assert parse_duration("500ms") == 500_000_000
    with pytest.raises(InvalidArgument):
        parse_duration("5 minutes")
