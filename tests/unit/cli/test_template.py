"""The Go text/template subset used by --format."""

from __future__ import annotations

import pytest

from dockyard.cli.gotemplate import MISSING, TemplateError, go_sprint, parse_template
from dockyard.cli.render import ContainerContext

DATA = {
    "Id": "aa5cba97fcd9",
    "Name": "/cranky_dirac",
    "State": {"Status": "running", "Running": True, "ExitCode": 0, "Pid": 42},
    "Config": {"Labels": {"com.example.a": "1", "b": "two"}, "Env": ["A=1", "B=2"],
               "Cmd": None},
    "NetworkSettings": {"IPAddress": "10.88.0.2",
                        "Networks": {"bridge": {"IPAddress": "10.88.0.2"}}},
    "Size": 4326768,
    "Ratio": 1.5,
}


def ex(t: str, data: object = DATA) -> str:
    return parse_template(t).execute(data)


@pytest.mark.parametrize("tmpl, want", [
    ("{{.State.Status}}", "running"),
    ("{{.NetworkSettings.IPAddress}}", "10.88.0.2"),
    ('{{index .Config.Labels "com.example.a"}}', "1"),
    ('{{index .Config.Labels "missing"}}', ""),
    ("{{.Config.Labels.b}}", "two"),
    ("{{.Config.Labels.nope}}", "<no value>"),
    ("{{.Config.Labels}}", "map[b:two com.example.a:1]"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Cmd}}", "<nil>"),
    ("{{.State.Running}}", "true"),
    ("{{.Size}} {{.Ratio}}", "4326768 1.5"),
    ("{{json .State}}", '{"Status":"running","Running":true,"ExitCode":0,"Pid":42}'),
    ("{{json .Config.Cmd}}", "null"),
    ('{{join .Config.Env ","}}', "A=1,B=2"),
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
    ("{{range $i, $e := .Config.Env}}{{$i}}={{$e}} {{end}}", "0=A=1 1=B=2 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}};{{end}}", "b:two;com.example.a:1;"),
    ("{{range .Config.Cmd}}x{{else}}empty{{end}}", "empty"),
    ('{{if eq .State.Status "running"}}up{{else}}down{{end}}', "up"),
    ('{{if ne .State.Status "running"}}up{{else if .State.Running}}r{{else}}d{{end}}', "r"),
    ("{{if and .State.Running (gt .State.Pid 10)}}yes{{end}}", "yes"),
    ("{{if or .Nope .State.Running}}yes{{end}}", "yes"),
    ("{{if not .State.Running}}no{{else}}yes{{end}}", "yes"),
    ("{{with .State}}{{.Pid}}{{end}}", "42"),
    ("{{with .Nope}}x{{else}}none{{end}}", "none"),
    ("{{$n := .Name}}{{$n}}", "/cranky_dirac"),
    ("{{.Name | upper}}", "/CRANKY_DIRAC"),
    ("{{.Name | printf \"%s!\"}}", "/cranky_dirac!"),
    ('{{printf "%-6s|%3d|%q|%v" "ab" 7 "q" .State.Running}}', 'ab    |  7|"q"|true'),
    ("{{lower \"ABC\"}} {{title \"hello world\"}}", "abc Hello World"),
    ('{{split "a:b:c" ":"}}', "[a b c]"),
    ('{{truncate "abcdef" 3}}', "abc"),
    ('{{pad "x" 2 1}}|', "  x |"),
    ("{{len .Config.Env}}", "2"),
    ("{{println .State.Pid}}", "42\n"),
    ("a {{- /* comment */ -}} b", "ab"),
    ("{{- .State.Pid -}}  \n x", "42x"),
    ("{{range .Config.Env}}{{if eq . \"B=2\"}}{{break}}{{end}}{{.}}{{end}}", "A=1"),
    ("{{range .Config.Env}}{{if eq . \"A=1\"}}{{continue}}{{end}}{{.}}{{end}}", "B=2"),
    ("{{(index .Config.Env 1)}}", "B=2"),
    ("{{(index .NetworkSettings.Networks \"bridge\").IPAddress}}", "10.88.0.2"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ('{{"quoted\\tstring"}}', "quoted\tstring"),
    ("{{`raw\\n`}}", "raw\\n"),
])
def test_execute(tmpl: str, want: str) -> None:
    assert ex(tmpl) == want


def test_methods_with_arguments_on_row_contexts() -> None:
    row = ContainerContext({"Id": "f" * 64, "Names": ["/web"], "Labels": {"tier": "front"}})
    assert ex('{{.Label "tier"}} {{.Names}} {{.ID}}', row) == "front web ffffffffffff"


def test_json_of_a_row_context_has_sorted_keys() -> None:
    row = ContainerContext({"Id": "f" * 64, "Names": ["/web"], "Created": 0}, now=10)
    out = ex("{{json .}}", row)
    assert out.startswith('{"Command":"\\"\\"","CreatedAt":')
    assert '"ID":"ffffffffffff"' in out and '"Names":"web"' in out and '"Platform":null' in out


@pytest.mark.parametrize("tmpl, msg", [
    ("{{foo}}", 'function "foo" not defined'),
    ("{{.A", "unclosed action"),
    ("{{if .A}}x", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ('{{"abc}}', "unterminated quoted string"),
])
def test_parse_errors(tmpl: str, msg: str) -> None:
    with pytest.raises(TemplateError, match="template: "):
        parse_template(tmpl)
    try:
        parse_template(tmpl)
    except TemplateError as exc:
        assert msg in str(exc)


def test_field_on_context_object_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(TemplateError) as ei:
        ex("{{.Foo}}", ContainerContext({}))
    assert str(ei.value) == ('template: :1:2: executing "" at <.Foo>: can\'t evaluate field Foo '
                             "in type *formatter.ContainerContext")


def test_fields_used() -> None:
    t = parse_template("{{.ID}} {{if .Size}}{{.Size}}{{end}} {{json (.Label \"x\")}}")
    assert t.fields_used() == {"ID", "Size", "Label"}


@pytest.mark.parametrize("value, want", [
    (None, "<nil>"), (MISSING, "<no value>"), (True, "true"), (3, "3"), (1.5, "1.5"),
    (4326768.0, "4.326768e+06"), (100.0, "100"), (0.0001, "0.0001"), (1e-05, "1e-05"),
    ({"b": 1, "a": [1, 2]}, "map[a:[1 2] b:1]"), ([], "[]"),
])
def test_go_sprint(value: object, want: str) -> None:
    assert go_sprint(value) == want
