"""A subset of Go's ``text/template``, enough for docker's ``--format`` flags.

Supported: text and ``{{actions}}`` with ``{{-``/``-}}`` trimming and ``{{/* comments */}}``;
pipelines with ``|``; fields and chains (``.State.Status``, ``$v.Name``, ``(pipe).Field``);
methods with arguments (``.Label "k"``); variables (``$x := ...``, ``$x = ...``, ``$``);
string (``"..."``, raw), char, number, ``true``/``false``/``nil`` literals; ``if``/``else
if``/``else``, ``range`` (lists, maps in key order, integers; ``$i, $v :=``; ``break``,
``continue``), ``with``/``else with``; functions ``and or not len index slice print printf
println eq ne lt le gt ge html js urlquery`` and docker's ``json split join title lower
upper pad truncate``.

Data: dicts and lists (decoded JSON) and objects whose methods are the fields (the row
contexts of ``dockyard.cli.render``). A missing map key evaluates to ``<no value>``, as in Go;
values print with Go's ``fmt`` conventions (``map[k:v]``, ``[a b]``, ``<nil>``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["HEADER_FUNCS", "MISSING", "Template", "TemplateError", "go_sprint", "parse_template"]


class TemplateError(Exception):
    """A template that does not parse or fails while executing (message as Go's)."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# -- lexer -----------------------------------------------------------------------------------

# token kinds
T_FIELD, T_VAR, T_IDENT, T_STRING, T_NUMBER, T_CHAR, T_PIPE, T_LPAREN, T_RPAREN, T_DECLARE, \
    T_ASSIGN, T_COMMA, T_DOT, T_BOOL, T_NIL = range(15)

_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break",
             "continue"}


def _ident_start(c: str) -> bool:
    return c.isalpha() or c == "_"


def _lex_action(src: str, line: int) -> list[tuple[int, Any]]:
    toks: list[tuple[int, Any]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
        elif c == "|":
            toks.append((T_PIPE, "|"))
            i += 1
        elif c == "(":
            toks.append((T_LPAREN, "("))
            i += 1
        elif c == ")":
            toks.append((T_RPAREN, ")"))
            i += 1
        elif c == ",":
            toks.append((T_COMMA, ","))
            i += 1
        elif c == ":" and src[i + 1:i + 2] == "=":
            toks.append((T_DECLARE, ":="))
            i += 2
        elif c == "=":
            toks.append((T_ASSIGN, "="))
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                if src[j] == "\\":
                    j += 1
                j += 1
            if j >= n:
                raise TemplateError(f"template: :{line}: unterminated quoted string")
            toks.append((T_STRING, _unquote(src[i:j + 1], line)))
            i = j + 1
        elif c == "`":
            j = src.find("`", i + 1)
            if j < 0:
                raise TemplateError(f"template: :{line}: unterminated raw quoted string")
            toks.append((T_STRING, src[i + 1:j]))
            i = j + 1
        elif c == "'":
            j = i + 1
            while j < n and src[j] != "'":
                if src[j] == "\\":
                    j += 1
                j += 1
            if j >= n:
                raise TemplateError(f"template: :{line}: unterminated character constant")
            s = _unquote('"' + src[i + 1:j] + '"', line)
            if len(s) != 1:
                raise TemplateError(
                    f"template: :{line}: malformed character constant: {src[i:j + 1]}")
            toks.append((T_CHAR, ord(s)))
            i = j + 1
        elif c == "." and (i + 1 >= n or not (src[i + 1].isalpha() or src[i + 1] == "_")):
            if i + 1 < n and src[i + 1].isdigit():
                j = _scan_number(src, i)
                toks.append((T_NUMBER, _number(src[i:j], line)))
                i = j
            else:
                toks.append((T_DOT, "."))
                i += 1
        elif c == ".":
            j = i + 1
            names = []
            while True:
                k = j
                while k < n and (src[k].isalnum() or src[k] == "_"):
                    k += 1
                names.append(src[j:k])
                if k + 1 < n and src[k] == "." and _ident_start(src[k + 1]):
                    j = k + 1
                    continue
                break
            toks.append((T_FIELD, names))
            i = k
        elif c == "$":
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            name = src[i:j]
            chain: list[str] = []
            while j + 1 < n and src[j] == "." and _ident_start(src[j + 1]):
                k = j + 1
                while k < n and (src[k].isalnum() or src[k] == "_"):
                    k += 1
                chain.append(src[j + 1:k])
                j = k
            toks.append((T_VAR, (name, chain)))
            i = j
        elif c.isdigit() or (c in "+-" and i + 1 < n and (src[i + 1].isdigit()
                                                          or src[i + 1] == ".")):
            j = _scan_number(src, i)
            toks.append((T_NUMBER, _number(src[i:j], line)))
            i = j
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            if word in ("true", "false"):
                toks.append((T_BOOL, word == "true"))
            elif word == "nil":
                toks.append((T_NIL, None))
            else:
                toks.append((T_IDENT, word))
            i = j
        else:
            raise TemplateError(f"template: :{line}: unexpected {c!r} in command")
    return toks


def _scan_number(src: str, i: int) -> int:
    j = i
    if src[j] in "+-":
        j += 1
    while j < len(src) and (src[j].isalnum() or src[j] in "._+-"):
        if src[j] in "+-" and src[j - 1] not in "eEpP":
            break
        j += 1
    return j


def _number(s: str, line: int) -> int | float:
    t = s.replace("_", "")
    try:
        if t.lower().startswith(("0x", "-0x", "+0x", "0o", "0b")):
            return int(t, 0)
        if any(ch in t for ch in ".eE"):
            return float(t)
        return int(t)
    except ValueError:
        raise TemplateError(f"template: :{line}: bad number syntax: {s!r}") from None


_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
        "\\": "\\", '"': '"', "'": "'"}


def _unquote(s: str, line: int) -> str:
    body = s[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise TemplateError(f"template: :{line}: invalid syntax")
        e = body[i]
        if e in _ESC:
            out.append(_ESC[e])
            i += 1
        elif e == "x":
            out.append(chr(int(body[i + 1:i + 3], 16)))
            i += 3
        elif e == "u":
            out.append(chr(int(body[i + 1:i + 5], 16)))
            i += 5
        elif e == "U":
            out.append(chr(int(body[i + 1:i + 9], 16)))
            i += 9
        elif e in "01234567":
            out.append(chr(int(body[i:i + 3], 8)))
            i += 3
        else:
            raise TemplateError(f"template: :{line}: invalid syntax")
    return "".join(out)


# -- AST -------------------------------------------------------------------------------------

class _Node:
    __slots__ = ()


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Arg(_Node):
    """An operand: kind in field/var/ident/dot/lit/pipe/chain."""

    __slots__ = ("kind", "value", "chain", "src")

    def __init__(self, kind: str, value: Any, chain: list[str] | None = None,
                 src: str = "") -> None:
        self.kind = kind
        self.value = value
        self.chain = chain or []
        self.src = src


class _Pipe(_Node):
    __slots__ = ("decl", "assign", "cmds")

    def __init__(self, decl: list[str], assign: bool, cmds: list[list[_Arg]]) -> None:
        self.decl = decl
        self.assign = assign
        self.cmds = cmds


class _Action(_Node):
    __slots__ = ("pipe", "src")

    def __init__(self, pipe: _Pipe, src: str) -> None:
        self.pipe = pipe
        self.src = src


class _Branch(_Node):
    """if / with / range."""

    __slots__ = ("kind", "pipe", "body", "else_body", "src")

    def __init__(self, kind: str, pipe: _Pipe, body: list[_Node], else_body: list[_Node] | None,
                 src: str) -> None:
        self.kind = kind
        self.pipe = pipe
        self.body = body
        self.else_body = else_body
        self.src = src


class _Ctl(_Node):
    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind


# -- parser ----------------------------------------------------------------------------------

def _split(src: str) -> list[tuple[str, str, int]]:
    """Split into ("text", s, line) and ("action", s, line), applying trim markers."""
    items: list[tuple[str, str, int]] = []
    i = 0
    line = 1
    trim_next = False
    while True:
        j = src.find("{{", i)
        if j < 0:
            text = src[i:]
            if trim_next:
                text = text.lstrip(" \t\r\n")
            if text:
                items.append(("text", text, line))
            break
        text = src[i:j]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        k = j + 2
        if src.startswith("- ", k) or src.startswith("-\t", k) or src.startswith("-\n", k) \
                or src.startswith("-\r", k):
            text = text.rstrip(" \t\r\n")
            k += 1
        if text:
            items.append(("text", text, line))
        line += src.count("\n", i, j)
        # find the end of the action, skipping quoted strings and comments
        p = k
        end = -1
        while p < len(src):
            ch = src[p]
            if ch == '"' or ch == "'":
                q = p + 1
                while q < len(src) and src[q] != ch and src[q] != "\n":
                    if src[q] == "\\":
                        q += 1
                    q += 1
                if q >= len(src) or src[q] == "\n":
                    what = "quoted string" if ch == '"' else "character constant"
                    raise TemplateError(f"template: :{line}: unterminated {what}")
                p = q + 1
                continue
            if ch == "`":
                q = src.find("`", p + 1)
                p = (q + 1) if q >= 0 else len(src)
                continue
            if src.startswith("/*", p):
                q = src.find("*/", p + 2)
                if q < 0:
                    raise TemplateError(f"template: :{line}: unclosed comment")
                p = q + 2
                continue
            if src.startswith("}}", p):
                end = p
                break
            p += 1
        if end < 0:
            if "}" in src[k:]:
                raise TemplateError(f"template: :{line}: bad character U+007D '}}'")
            raise TemplateError(f"template: :{line}: unclosed action")
        body = src[k:end]
        trim_next = False
        if body.endswith((" -", "\t-", "\n-", "\r-")):
            body = body[:-1]
            trim_next = True
        items.append(("action", body.strip(), line))
        line += src.count("\n", j, end)
        i = end + 2
    return items


class _Parser:
    def __init__(self, src: str, funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.items = _split(src)
        self.pos = 0
        self.funcs = funcs

    def parse(self) -> list[_Node]:
        nodes, end = self._list(top=True)
        if end is not None:
            raise TemplateError(f"template: :{end[2]}: unexpected {{{{{end[0]}}}}}")
        return nodes

    def _list(self, top: bool = False) -> tuple[list[_Node], tuple[str, str, int] | None]:
        """Parse nodes until ``end``/``else``; returns (nodes, (keyword, rest, line))."""
        nodes: list[_Node] = []
        while self.pos < len(self.items):
            kind, s, line = self.items[self.pos]
            self.pos += 1
            if kind == "text":
                nodes.append(_Text(s))
                continue
            if s.startswith("/*") and s.endswith("*/"):
                continue
            word, _, rest = s.partition(" ")
            if not rest and "\t" in word:
                word, _, rest = s.partition("\t")
            rest = rest.strip()
            if word in ("end", "else"):
                if top:
                    raise TemplateError(f"template: :{line}: unexpected {{{{{word}}}}}")
                return nodes, (word, rest, line)
            if word in ("if", "with", "range"):
                nodes.append(self._branch(word, rest, line))
            elif word in ("break", "continue"):
                nodes.append(_Ctl(word))
            elif word in ("define", "template", "block"):
                raise TemplateError(f"template: :{line}: {{{{{word}}}}} is not supported")
            else:
                if not s:
                    raise TemplateError(f"template: :{line}: missing value for command")
                nodes.append(_Action(self._pipe(s, line), s))
        if top:
            return nodes, None
        raise TemplateError("template: :1: unexpected EOF")

    def _branch(self, kind: str, rest: str, line: int) -> _Branch:
        if not rest:
            raise TemplateError(f"template: :{line}: missing value for {kind}")
        pipe = self._pipe(rest, line, allow_decl=True, allow_two=(kind == "range"))
        body, end = self._list()
        assert end is not None
        else_body: list[_Node] | None = None
        if end[0] == "else":
            word, _, rest2 = end[1].partition(" ")
            if word in ("if", "with") and kind in ("if", "with"):
                # "else if" / "else with": a nested branch that shares our {{end}}
                else_body = [self._branch(word, rest2.strip(), end[2])]
                return _Branch(kind, pipe, body, else_body, rest)
            if end[1]:
                raise TemplateError(f"template: :{end[2]}: unexpected {end[1]!r} in else")
            else_body, end2 = self._list()
            assert end2 is not None
            if end2[0] != "end":
                raise TemplateError(f"template: :{end2[2]}: expected end; found {{{{else}}}}")
        return _Branch(kind, pipe, body, else_body, rest)

    def _pipe(self, s: str, line: int, allow_decl: bool = True, allow_two: bool = False) -> _Pipe:
        return self._pipe_tokens(_lex_action(s, line), line, allow_two)

    def _pipe_tokens(self, toks: list[tuple[int, Any]], line: int,
                     allow_two: bool = False) -> _Pipe:
        decl: list[str] = []
        assign = False
        # declarations: $x := / $x = / $i, $v :=
        if toks and toks[0][0] == T_VAR and not toks[0][1][1]:
            if len(toks) > 1 and toks[1][0] in (T_DECLARE, T_ASSIGN):
                decl = [toks[0][1][0]]
                assign = toks[1][0] == T_ASSIGN
                toks = toks[2:]
            elif (allow_two and len(toks) > 3 and toks[1][0] == T_COMMA and toks[2][0] == T_VAR
                  and toks[3][0] in (T_DECLARE, T_ASSIGN)):
                decl = [toks[0][1][0], toks[2][1][0]]
                assign = toks[3][0] == T_ASSIGN
                toks = toks[4:]
        pos = 0
        cmds: list[list[_Arg]] = []

        def operand() -> _Arg:
            nonlocal pos
            kind, val = toks[pos]
            pos += 1
            if kind == T_FIELD:
                arg = _Arg("field", val, src="." + ".".join(val))
            elif kind == T_VAR:
                arg = _Arg("var", val[0], val[1], src=val[0] + "".join("." + c for c in val[1]))
            elif kind == T_DOT:
                arg = _Arg("dot", None, src=".")
            elif kind == T_IDENT:
                if val in _KEYWORDS:
                    raise TemplateError(f"template: :{line}: unexpected <{val}> in command")
                if val not in self.funcs:
                    raise TemplateError(f'template: :{line}: function "{val}" not defined')
                arg = _Arg("ident", val, src=val)
            elif kind in (T_STRING, T_NUMBER, T_BOOL, T_NIL, T_CHAR):
                arg = _Arg("lit", val, src=repr(val))
            elif kind == T_LPAREN:
                depth = 1
                start = pos
                while pos < len(toks) and depth:
                    if toks[pos][0] == T_LPAREN:
                        depth += 1
                    elif toks[pos][0] == T_RPAREN:
                        depth -= 1
                    pos += 1
                if depth:
                    raise TemplateError(f"template: :{line}: unclosed left paren")
                inner = toks[start:pos - 1]
                arg = _Arg("pipe", self._pipe_tokens(inner, line), src="(...)")
            else:
                raise TemplateError(f"template: :{line}: unexpected {val!r} in operand")
            # a field chain after a parenthesized pipeline: (pipe).Field
            if arg.kind == "pipe" and pos < len(toks) and toks[pos][0] == T_FIELD:
                arg.chain = toks[pos][1]
                pos += 1
            return arg

        cmd: list[_Arg] = []
        while pos < len(toks):
            if toks[pos][0] == T_PIPE:
                if not cmd:
                    raise TemplateError(f"template: :{line}: missing command")
                cmds.append(cmd)
                cmd = []
                pos += 1
                continue
            if toks[pos][0] == T_RPAREN:
                raise TemplateError(f"template: :{line}: unexpected right paren")
            cmd.append(operand())
        if cmd:
            cmds.append(cmd)
        elif cmds:
            raise TemplateError(f"template: :{line}: missing command")
        if not cmds:
            raise TemplateError(f"template: :{line}: missing value for command")
        return _Pipe(decl, assign, cmds)


# -- printing --------------------------------------------------------------------------------

def _fmt_float(f: float) -> str:
    """Go's ``%v`` for float64: shortest digits, e-notation when exp < -4 or exp >= 6."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0"
    sign = "-" if f < 0 else ""
    r = repr(abs(f))
    if "e" in r:
        mant, e = r.split("e")
        exp = int(e)
        digits = mant.replace(".", "").rstrip("0") or "0"
    else:
        ip, _, frac = r.partition(".")
        if ip != "0":
            exp = len(ip) - 1
            digits = (ip + frac).rstrip("0") or "0"
        else:
            stripped = frac.lstrip("0")
            exp = -(len(frac) - len(stripped)) - 1
            digits = stripped.rstrip("0") or "0"
    if exp < -4 or exp >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if exp >= 0:
        ip = digits[: exp + 1].ljust(exp + 1, "0")
        frac = digits[exp + 1:]
    else:
        ip = "0"
        frac = "0" * (-exp - 1) + digits
    return sign + ip + ("." + frac if frac else "")


def go_sprint(v: Any) -> str:
    """``fmt.Sprint`` of one value with Go's conventions."""
    if isinstance(v, str):
        return v
    if v is MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _fmt_float(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{go_sprint(k)}:{go_sprint(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_sprint(x) for x in v) + "]"
    to_json = getattr(v, "to_json", None)
    if callable(to_json):
        return "{" + " ".join(go_sprint(x) for x in to_json().values()) + "}"
    return str(v)


def _truth(v: Any) -> bool:
    if v is MISSING or v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict)):
        return bool(v)
    return True


# -- functions -------------------------------------------------------------------------------

def _json_default(o: Any) -> Any:
    to_json = getattr(o, "to_json", None)
    if callable(to_json):
        return to_json()
    if o is MISSING:
        return None
    raise TypeError(f"cannot encode {type(o).__name__}")


def _f_json(v: Any) -> str:
    import json as _json  # only templates that use it pay for the import

    out = _json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=_json_default) \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if callable(getattr(v, "to_json", None)):
        # docker's row contexts marshal themselves with json.Marshal, which escapes HTML
        out = out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return out


def _f_len(v: Any) -> int:
    if v is None or v is MISSING:
        raise TemplateError("error calling len: len of nil pointer")
    try:
        return len(v)
    except TypeError:
        raise TemplateError(f"error calling len: len of type {type(v).__name__}") from None


def _f_index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if v is None or v is MISSING:
            raise TemplateError("error calling index: index of untyped nil")
        if isinstance(v, dict):
            v = v.get(k, "")
        elif isinstance(v, (list, tuple, str)):
            if not isinstance(k, int):
                raise TemplateError(
                    "error calling index: cannot index slice/array with type string")
            if not 0 <= k < len(v):
                raise TemplateError(f"error calling index: index out of range: {k}")
            v = v[k]
        else:
            raise TemplateError(f"error calling index: can't index item of type {type(v).__name__}")
    return v


def _f_slice(v: Any, *idx: int) -> Any:
    if len(idx) == 0:
        return v
    if len(idx) == 1:
        return v[idx[0]:]
    return v[idx[0]:idx[1]]


def _sprint_args(args: tuple[Any, ...]) -> str:
    out = []
    prev_str = True
    for i, a in enumerate(args):
        is_str = isinstance(a, str)
        if i > 0 and not is_str and not prev_str:
            out.append(" ")
        out.append(go_sprint(a))
        prev_str = is_str
    return "".join(out)


def _f_println(*args: Any) -> str:
    return " ".join(go_sprint(a) for a in args) + "\n"


def go_sprintf(fmt: str, *args: Any) -> str:
    """``fmt.Sprintf`` for the common verbs (v s d q t x X f e g c %)."""
    from dockyard.cli.render import go_quote

    out = []
    i = 0
    ai = 0
    n = len(fmt)
    while i < n:
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        i += 1
        if i < n and fmt[i] == "%":
            out.append("%")
            i += 1
            continue
        j = i
        while j < n and fmt[j] in "+-# 0":
            j += 1
        while j < n and fmt[j].isdigit():
            j += 1
        if j < n and fmt[j] == ".":
            j += 1
            while j < n and fmt[j].isdigit():
                j += 1
        if j >= n:
            out.append("%!(NOVERB)")
            break
        spec, verb = fmt[i:j], fmt[j]
        i = j + 1
        if ai >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[ai]
        ai += 1
        try:
            if verb in "vs":
                s = go_sprint(a)
                out.append(("%" + spec + "s") % s)
            elif verb == "q":
                out.append(("%" + spec + "s") % go_quote(go_sprint(a)))
            elif verb == "t":
                out.append(("%" + spec + "s") % go_sprint(bool(a)))
            elif verb in "dxXobc":
                if verb == "c":
                    out.append(chr(int(a)))
                elif verb == "b":
                    out.append(format(int(a), "b"))
                else:
                    out.append(("%" + spec + verb) % int(a))
            elif verb in "feEgG":
                out.append(("%" + spec + verb) % float(a))
            else:
                out.append(f"%!{verb}({go_sprint(a)})")
        except (TypeError, ValueError):
            out.append(f"%!{verb}({type(a).__name__}={go_sprint(a)})")
    if ai < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{type(a).__name__}={go_sprint(a)}"
                                             for a in args[ai:]) + ")")
    return "".join(out)


def _cmp_vals(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, bool) or isinstance(b, bool):
        return a, b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a, b
    if a is MISSING:
        a = None
    if b is MISSING:
        b = None
    return a, b


def _f_eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise TemplateError("error calling eq: missing argument for comparison")
    for b in bs:
        x, y = _cmp_vals(a, b)
        if x == y:
            return True
    return False


def _order(op: str) -> Callable[[Any, Any], bool]:
    def f(a: Any, b: Any) -> bool:
        x, y = _cmp_vals(a, b)
        try:
            if op == "lt":
                return bool(x < y)
            if op == "le":
                return bool(x <= y)
            if op == "gt":
                return bool(x > y)
            return bool(x >= y)
        except TypeError:
            raise TemplateError(f"error calling {op}: incompatible types for comparison") from None
    return f


def _f_and(*args: Any) -> Any:
    for a in args:
        if not _truth(a):
            return a
    return args[-1]


def _f_or(*args: Any) -> Any:
    for a in args:
        if _truth(a):
            return a
    return args[-1]


def _f_html(*args: Any) -> str:
    s = _sprint_args(args)
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&#34;"))


def _f_urlquery(*args: Any) -> str:
    from dockyard.client.api import _query_escape

    return _query_escape(_sprint_args(args))


def _f_js(*args: Any) -> str:
    s = _sprint_args(args)
    out = []
    for ch in s:
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch in "<>&=" or ord(ch) < 0x20:
            out.append("\\u%04X" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def _f_title(s: Any) -> str:
    s = go_sprint(s)
    out = []
    prev = " "
    for ch in s:
        out.append(ch.upper() if not (prev.isalnum() or prev == "_" or prev == "'") else ch)
        prev = ch
    return "".join(out)


def _f_split(s: Any, sep: Any) -> list[str]:
    text, by = go_sprint(s), go_sprint(sep)
    if by == "":
        return list(text)
    return text.split(by)


def _f_join(items: Any, sep: Any) -> str:
    if items is None or items is MISSING:
        return ""
    return go_sprint(sep).join(go_sprint(x) for x in items)


def _f_pad(s: Any, prefix: int, suffix: int) -> str:
    text = go_sprint(s)
    if text == "":
        return text
    return " " * prefix + text + " " * suffix


def _f_truncate(s: Any, length: int) -> str:
    text = go_sprint(s)
    return text if len(text) < length else text[:length]


FUNCS: dict[str, Callable[..., Any]] = {
    "and": _f_and, "or": _f_or, "not": lambda a: not _truth(a), "len": _f_len,
    "index": _f_index, "slice": _f_slice, "print": lambda *a: _sprint_args(a),
    "printf": lambda f, *a: go_sprintf(go_sprint(f), *a), "println": _f_println,
    "eq": _f_eq, "ne": lambda a, b: not _f_eq(a, b), "lt": _order("lt"), "le": _order("le"),
    "gt": _order("gt"), "ge": _order("ge"), "html": _f_html, "js": _f_js,
    "urlquery": _f_urlquery, "call": lambda f, *a: f(*a),
    # docker's additions (cli/templates)
    "json": _f_json, "split": _f_split, "join": _f_join, "title": _f_title,
    "lower": lambda s: go_sprint(s).lower(), "upper": lambda s: go_sprint(s).upper(),
    "pad": _f_pad, "truncate": _f_truncate,
}

#: the functions used to render a table header: docker's ``HeaderFunctions`` (identity)
HEADER_FUNCS: dict[str, Callable[..., Any]] = dict(FUNCS)
HEADER_FUNCS.update({
    "json": lambda v: v, "split": lambda v, _s: v, "join": lambda v, _s: v,
    "title": lambda v: v, "lower": lambda v: v, "upper": lambda v: v,
    "truncate": lambda v, _n: v,
})


# -- execution -------------------------------------------------------------------------------

class _State:
    __slots__ = ("funcs", "vars", "out")

    def __init__(self, funcs: Mapping[str, Callable[..., Any]], root: Any) -> None:
        self.funcs = funcs
        self.vars: list[tuple[str, Any]] = [("$", root)]
        self.out: list[str] = []

    def lookup(self, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise TemplateError(f"undefined variable: {name}")

    def set(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise TemplateError(f"undefined variable: {name}")


def _type_name(v: Any) -> str:
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if v is None or v is MISSING:
        return "interface {}"
    return "*formatter." + type(v).__name__


def _field(recv: Any, name: str, args: list[Any], src: str) -> Any:
    if type(recv) is not dict and isinstance(recv, dict) \
            and callable(getattr(type(recv), name, None)):
        return getattr(recv, name)(*args)  # a method of a map type wins over its keys, as in Go
    if isinstance(recv, dict):
        if args:
            raise TemplateError(f"executing \"\" at <{src}>: {name} has arguments but cannot "
                                "be invoked as function")
        return recv.get(name, MISSING)
    if recv is None or recv is MISSING:
        return MISSING
    if isinstance(recv, (str, int, float, bool, list, tuple)):
        raise TemplateError(f"executing \"\" at <{src}>: can't evaluate field {name} in type "
                            f"{_type_name(recv)}")
    attr = getattr(recv, name, None) if name[:1].isupper() else None
    if attr is None:
        raise TemplateError(f"executing \"\" at <{src}>: can't evaluate field {name} in type "
                            f"{_type_name(recv)}")
    if callable(attr):
        used = getattr(recv, "used", None)
        if isinstance(used, set):
            used.add(name)
        try:
            return attr(*args)
        except TypeError as exc:
            raise TemplateError(f"executing \"\" at <{src}>: wrong number of args for {name}: "
                                f"{exc}") from None
    return attr


def _chain(v: Any, chain: list[str], args: list[Any], src: str) -> Any:
    for i, name in enumerate(chain):
        v = _field(v, name, args if i == len(chain) - 1 else [], src)
    return v


class Template:
    """A parsed template; ``execute(data)`` returns the text."""

    def __init__(self, source: str, nodes: list[_Node],
                 funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.source = source
        self.nodes = nodes
        self.funcs = funcs

    def execute(self, data: Any, funcs: Mapping[str, Callable[..., Any]] | None = None) -> str:
        st = _State(funcs or self.funcs, data)
        try:
            self._list(st, self.nodes, data)
        except TemplateError as exc:
            msg = str(exc)
            if not msg.startswith("template:"):
                msg = f"template: :1:{2}: {msg}" if msg.startswith("executing") else \
                    f'template: :1:2: executing "" at <{self.source.strip()[:40]}>: {msg}'
            raise TemplateError(msg) from None
        except (_Break, _Continue):
            raise TemplateError("template: :1: break/continue outside range") from None
        return "".join(st.out)

    def fields_used(self) -> set[str]:
        """Names of the fields the template reads from dot (first chain element)."""
        found: set[str] = set()

        def pipe(p: _Pipe) -> None:
            for cmd in p.cmds:
                for a in cmd:
                    if a.kind == "field" and a.value:
                        found.add(a.value[0])
                    elif a.kind == "pipe":
                        pipe(a.value)

        def walk(nodes: list[_Node]) -> None:
            for n in nodes:
                if isinstance(n, _Action):
                    pipe(n.pipe)
                elif isinstance(n, _Branch):
                    pipe(n.pipe)
                    walk(n.body)
                    if n.else_body:
                        walk(n.else_body)

        walk(self.nodes)
        return found

    # -- evaluation --
    def _list(self, st: _State, nodes: list[_Node], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                st.out.append(node.text)
            elif isinstance(node, _Action):
                v = self._pipe(st, node.pipe, dot)
                if not node.pipe.decl:
                    st.out.append(go_sprint(v))
            elif isinstance(node, _Branch):
                self._branch(st, node, dot)
            elif isinstance(node, _Ctl):
                raise _Break() if node.kind == "break" else _Continue()

    def _branch(self, st: _State, node: _Branch, dot: Any) -> None:
        mark = len(st.vars)
        try:
            if node.kind == "range":
                self._range(st, node, dot)
                return
            v = self._pipe(st, node.pipe, dot, declare_range=False)
            if _truth(v):
                self._list(st, node.body, v if node.kind == "with" else dot)
            elif node.else_body is not None:
                self._list(st, node.else_body, dot)
        finally:
            del st.vars[mark:]

    def _range(self, st: _State, node: _Branch, dot: Any) -> None:
        v = self._pipe(st, node.pipe, dot, declare_range=True)
        if isinstance(v, dict):
            items: list[tuple[Any, Any]] = [(k, v[k]) for k in sorted(v)]
        elif isinstance(v, (list, tuple)):
            items = list(enumerate(v))
        elif isinstance(v, int) and not isinstance(v, bool):
            items = [(i, i) for i in range(v)]
        elif v is None or v is MISSING:
            items = []
        else:
            raise TemplateError(f"range can't iterate over {go_sprint(v)}")
        if not items:
            if node.else_body is not None:
                self._list(st, node.else_body, dot)
            return
        decl = node.pipe.decl
        for k, elem in items:
            mark = len(st.vars)
            if len(decl) == 1:
                st.vars.append((decl[0], elem))
            elif len(decl) == 2:
                st.vars.append((decl[0], k))
                st.vars.append((decl[1], elem))
            try:
                self._list(st, node.body, elem)
            except _Break:
                del st.vars[mark:]
                break
            except _Continue:
                pass
            del st.vars[mark:]

    def _pipe(self, st: _State, pipe: _Pipe, dot: Any, declare_range: bool = False) -> Any:
        value: Any = MISSING
        final_set = False
        for cmd in pipe.cmds:
            value = self._cmd(st, cmd, dot, value if final_set else None, final_set)
            final_set = True
        if pipe.decl and not declare_range:
            if pipe.assign:
                st.set(pipe.decl[0], value)
            else:
                st.vars.append((pipe.decl[0], value))
        return value

    def _arg(self, st: _State, a: _Arg, dot: Any) -> Any:
        if a.kind == "lit":
            return a.value
        if a.kind == "dot":
            return dot
        if a.kind == "field":
            return _chain(dot, a.value, [], a.src)
        if a.kind == "var":
            return _chain(st.lookup(a.value), a.chain, [], a.src)
        if a.kind == "pipe":
            v = self._pipe(st, a.value, dot)
            return _chain(v, a.chain, [], a.src) if a.chain else v
        if a.kind == "ident":
            return self._call(st, a.value, [], dot)
        raise TemplateError(f"can't handle {a.src}")  # pragma: no cover

    def _call(self, st: _State, name: str, args: list[Any], dot: Any) -> Any:
        fn = st.funcs.get(name)
        if fn is None:
            raise TemplateError(f'function "{name}" not defined')
        try:
            return fn(*args)
        except TemplateError:
            raise
        except TypeError as exc:
            raise TemplateError(f"error calling {name}: {exc}") from None
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            raise TemplateError(f"error calling {name}: {exc}") from None

    def _cmd(self, st: _State, cmd: list[_Arg], dot: Any, final: Any, has_final: bool) -> Any:
        first = cmd[0]
        rest = [self._arg(st, a, dot) for a in cmd[1:]]
        if has_final:
            rest.append(final)
        if first.kind == "ident":
            return self._call(st, first.value, rest, dot)
        if first.kind == "field":
            return _chain(dot, first.value, rest, first.src)
        if first.kind == "var":
            base = st.lookup(first.value)
            if first.chain:
                return _chain(base, first.chain, rest, first.src)
            if rest:
                raise TemplateError(f"can't give argument to non-function {first.src}")
            return base
        if rest:
            raise TemplateError(f"can't give argument to non-function {first.src}")
        return self._arg(st, first, dot)


_CACHE: dict[str, Template] = {}


def parse_template(source: str, funcs: Mapping[str, Callable[..., Any]] | None = None,
                   name: str = "") -> Template:
    """Parse ``source``; raises ``TemplateError`` with Go's wording (``template: NAME:LINE:``)."""
    f = funcs or FUNCS
    if funcs is None and not name and source in _CACHE:
        return _CACHE[source]
    try:
        t = Template(source, _Parser(source, f).parse(), f)
    except TemplateError as exc:
        if name:
            raise TemplateError(str(exc).replace("template: :", f"template: {name}:", 1)) from None
        raise
    if name:
        return t
    if funcs is None:
        _CACHE[source] = t
    return t
