"""Lexer and parser of Go's text/template, the subset Prometheus templates use.

The template is split into text and `{{ }}` actions (trim markers and comments
honoured), and actions into pipelines of commands over operands. Everything that can be
checked without data is checked here, as Go does at parse time: syntax, undefined
variables, unknown functions, so a broken template refuses the rule file at load.
The result is a list of the plain nodes below, which `execute` walks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .values import TemplateError, go_sprint


@dataclass
class Text:
    """Literal text between actions, output as it is."""

    text: str


@dataclass
class Pipeline:
    """`cmd | cmd | ...`, optionally declaring or assigning variables first."""

    decl: list[str]  # variables declared (:=) or assigned (=)
    assign: bool
    cmds: list[list[Any]]  # each command: a list of operand nodes


@dataclass
class Action:
    """`{{ pipeline }}`: outputs the pipeline's value unless it declares a variable."""

    pipe: Pipeline


@dataclass
class Control:
    """`if`, `with` or `range` with its body and `else` body (`else if` nests another)."""

    kind: str  # "if", "with", "range"
    pipe: Pipeline
    body: list[Any]
    else_body: list[Any] = field(default_factory=list)


# operand nodes
@dataclass
class Field:
    """`.A.B`, `$x.A.B` or `(pipe).A`; an empty path is the dot or the variable itself."""

    base: Any  # "." for dot, "$name" for a variable, or a node
    path: list[str]


@dataclass
class Literal:
    """A string, character, number or boolean constant."""

    value: Any


@dataclass
class FunctionRef:
    """A function name, checked against the known functions at parse time."""

    name: str


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9_]+)(?:[eE][+-]?[0-9]+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

_GO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
               "v": "\v"}


def _unquote(s: str) -> str:
    out: list[str] = []
    i = 0
    body = s[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n in _GO_ESCAPES:
                out.append(_GO_ESCAPES[n])
                i += 2
                continue
            if n in "xuU":
                size = {"x": 2, "u": 4, "U": 8}[n]
                digits = body[i + 2:i + 2 + size]
                if len(digits) != size or not all(d in "0123456789abcdefABCDEF" for d in digits):
                    raise TemplateError(f"invalid syntax in string {s}")
                code = int(digits, 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise TemplateError(f"invalid syntax in string {s}")
                out.append(chr(code))
                i += 2 + size
                continue
            raise TemplateError(f"invalid syntax in string {s}")
        out.append(c)
        i += 1
    return "".join(out)


# Deeper nesting of if/with/range or of parentheses is refused: the parser and the
# execution recurse once per level, and no real template needs a hundred.
MAX_NESTING = 100


class Parser:
    """Parses one template; `functions` are the names it may call."""

    def __init__(self, name: str, text: str, functions: frozenset[str]) -> None:
        self.name = name
        self.text = text
        self.functions = functions
        self.line = 1
        self.vars: list[set[str]] = [{"$"}]
        self._parens = 0
        self._depth = 0

    def error(self, msg: str) -> TemplateError:
        return TemplateError(f"template: {self.name}:{self.line}: {msg}")

    # Split into text and action chunks, honouring trim markers and comments.
    def chunks(self) -> list[tuple[str, str, int]]:
        out: list[tuple[str, str, int]] = []
        text, pos, line = self.text, 0, 1
        while True:
            start = text.find("{{", pos)
            if start < 0:
                out.append(("text", text[pos:], line))
                break
            chunk = text[pos:start]
            trim_left = text.startswith("{{- ", start) or text.startswith("{{-\t", start) or text.startswith("{{-\n", start)
            if trim_left:
                chunk = chunk.rstrip(" \t\r\n")
            out.append(("text", chunk, line))
            line += text.count("\n", pos, start)
            inner_start = start + (3 if trim_left else 2)
            if text.startswith("/*", inner_start) or text.startswith(" /*", inner_start - 1) and trim_left:
                end_comment = text.find("*/", inner_start)
                if end_comment < 0:
                    self.line = line
                    raise self.error("unclosed comment")
                end = text.find("}}", end_comment)
            else:
                end = self._find_close(inner_start)
            if end < 0:
                self.line = line
                raise self.error("unclosed action")
            trim_right = text[end - 1] == "-" and text[end - 2] in " \t\r\n"
            inner = text[inner_start:end - 1 if trim_right else end]
            out.append(("action", inner, line))
            line += text.count("\n", start, end)
            pos = end + 2
            if trim_right:
                while pos < len(text) and text[pos] in " \t\r\n":
                    pos += 1
        return out

    def _find_close(self, pos: int) -> int:
        """The `}}` ending an action, skipping over quoted strings."""
        text = self.text
        i = pos
        while i < len(text):
            c = text[i]
            if c in "\"'`":
                j = i + 1
                while j < len(text) and text[j] != c:
                    if text[j] == "\\" and c != "`":
                        j += 1
                    j += 1
                i = j + 1
                continue
            if text.startswith("}}", i):
                return i
            i += 1
        return -1

    def parse(self) -> list[Any]:
        self._items = self.chunks()
        self._i = 0
        body, end = self._list()
        if end is not None:
            raise self.error(f"unexpected {{{{{end}}}}}")
        return body

    def _list(self) -> tuple[list[Any], str | None]:
        body: list[Any] = []
        while self._i < len(self._items):
            kind, text, line = self._items[self._i]
            self._i += 1
            self.line = line
            if kind == "text":
                if text:
                    body.append(Text(text))
                continue
            stripped = text.strip()
            if stripped.startswith("/*"):
                continue
            word = stripped.split(None, 1)[0] if stripped else ""
            if word in ("end",):
                if stripped != "end":
                    raise self.error(f"unexpected {stripped[3:].strip()} in end")
                return body, "end"
            if word == "else":
                return body, stripped
            if word in ("if", "with", "range"):
                body.append(self._control(word, stripped[len(word):]))
                continue
            if word in ("define", "template", "block", "break", "continue"):
                raise self.error(f"{word} is not supported by tocsin's template subset")
            if not stripped:
                raise self.error("missing value for command")
            body.append(Action(self._pipeline(stripped)))
        return body, None

    def _control(self, kind: str, rest: str) -> Control:
        self._depth += 1  # an `else if` counts as a level too: it nests like one
        if self._depth > MAX_NESTING:
            raise self.error(f"{kind} nested more than {MAX_NESTING} levels deep (else if included)")
        try:
            return self._control_body(kind, rest)
        finally:
            self._depth -= 1

    def _control_body(self, kind: str, rest: str) -> Control:
        self.vars.append(set())
        pipe = self._pipeline(rest.strip(), context=kind)
        body, end = self._list()
        node = Control(kind, pipe, body)
        self.vars.pop()
        if end is None:
            raise self.error("unexpected EOF")
        if end.startswith("else"):
            tail = end[4:].strip()
            if tail.startswith("if") and kind == "if" or tail.startswith("with") and kind == "with":
                word = tail.split(None, 1)[0]
                # `else if X` is `else` + a nested `if` sharing this node's `end`.
                node.else_body = [self._control(word, tail[len(word):])]
            elif tail:
                raise self.error(f"unexpected {tail} in else")
            else:
                self.vars.append(set())
                node.else_body, end2 = self._list()
                self.vars.pop()
                if end2 != "end":
                    raise self.error("expected end; found " + (end2 or "EOF"))
        return node

    # -------- pipelines
    def _tokens(self, text: str) -> list[tuple[str, str]]:
        toks: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                raise self.error(f"unexpected {text[pos]!r} in command")
            pos = m.end()
            kind = m.lastgroup or ""
            if kind != "ws":
                toks.append((kind, m.group()))
        return toks

    def _pipeline(self, text: str, context: str = "command") -> Pipeline:
        toks = self._tokens(text)
        if not toks:
            raise self.error(f"missing value for {context}")
        decl: list[str] = []
        assign = False
        if len(toks) >= 2 and toks[0][0] == "var":
            # $x := pipeline, $x = pipeline, or range $i, $e := pipeline
            if toks[1][0] in ("decl", "assign"):
                decl = [toks[0][1]]
                assign = toks[1][0] == "assign"
                toks = toks[2:]
            elif toks[1][0] == "comma" and len(toks) >= 4 and toks[2][0] == "var" and toks[3][0] == "decl":
                decl = [toks[0][1], toks[2][1]]
                toks = toks[4:]
        self._toks = toks
        self._pos = 0
        pipe = self._parse_pipe(decl, assign)
        if self._pos != len(self._toks):
            raise self.error(f"unexpected {self._toks[self._pos][1]!r} in {context}")
        for name in decl:
            if assign:
                if not any(name in scope for scope in self.vars):
                    raise self.error(f'undefined variable "{name}"')
            else:
                self.vars[-1].add(name)
        return pipe

    def _parse_pipe(self, decl: list[str], assign: bool) -> Pipeline:
        cmds: list[list[Any]] = []
        while True:
            cmd: list[Any] = []
            while self._pos < len(self._toks) and self._toks[self._pos][0] not in ("pipe", "rp"):
                cmd.append(self._operand())
            if not cmd:
                raise self.error("missing command")
            if len(cmd) > 1 and not isinstance(cmd[0], (FunctionRef, Field)):
                raise self.error(f"can't give argument to non-function {self._describe(cmd[0])}")
            cmds.append(cmd)
            if self._pos < len(self._toks) and self._toks[self._pos][0] == "pipe":
                self._pos += 1
                continue
            break
        return Pipeline(decl, assign, cmds)

    @staticmethod
    def _describe(node: Any) -> str:
        if isinstance(node, Literal):
            return go_sprint(node.value) if not isinstance(node.value, str) else f'"{node.value}"'
        return "operand"

    def _operand(self) -> Any:
        kind, text = self._toks[self._pos]
        self._pos += 1
        node: Any
        if kind == "lp":
            self._parens += 1
            if self._parens > MAX_NESTING:
                raise self.error(f"parentheses nested more than {MAX_NESTING} levels deep")
            inner = self._parse_pipe([], False)
            self._parens -= 1
            if self._pos >= len(self._toks) or self._toks[self._pos][0] != "rp":
                raise self.error("unclosed left paren")
            self._pos += 1
            node = inner
        elif kind == "str" or kind == "raw":
            node = Literal(_unquote(text) if kind == "str" else text[1:-1])
        elif kind == "char":
            node = Literal(ord(_unquote('"' + text[1:-1] + '"')))
        elif kind == "num":
            node = Literal(self._number(text))
        elif kind == "var":
            if not any(text in scope for scope in self.vars):
                raise self.error(f'undefined variable "{text}"')
            node = Field(text, [])
        elif kind == "field":
            return Field(".", text[1:].split("."))
        elif kind == "dot":
            node = Field(".", [])
        elif kind == "ident":
            if text in ("true", "false"):
                node = Literal(text == "true")
            elif text == "nil":
                raise self.error("nil is not a command")
            elif text in self.functions:
                return FunctionRef(text)
            else:
                raise self.error(f'function "{text}" not defined')
        else:
            raise self.error(f"unexpected {text!r} in operand")
        # trailing field access: $x.a.b or (pipe).a
        if self._pos < len(self._toks) and self._toks[self._pos][0] == "field":
            path = self._toks[self._pos][1][1:].split(".")
            self._pos += 1
            if isinstance(node, Field) and node.base != ".":
                node = Field(node.base, node.path + path)
            else:
                node = Field(node, path)
        return node

    def _number(self, text: str) -> int | float:
        t = text.replace("_", "")
        try:
            if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", t):
                return int(t, 16)
            if re.fullmatch(r"[+-]?[0-9]+", t):
                return int(t, 8) if len(t.lstrip("+-")) > 1 and t.lstrip("+-").startswith("0") else int(t)
            return float(t)
        except ValueError:
            raise self.error(f"illegal number syntax: {text!r}") from None
