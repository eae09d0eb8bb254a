"""Expressions too deep for the parser library, parsed one flat piece at a time.

The parser library recurses on the C stack and copies every subtree at every level, so a
`1+1+…` chain of 5 000 terms or 10 000 nested parentheses kills the process (SIGSEGV) or
takes gigabytes; Prometheus's own parser is a table-driven LALR parser and accepts them.
Here the expression's tokens are read once, with an explicit stack of open parentheses,
never recursing:

- each operand (a literal, a selector with its range, offset and @, a call or an
  aggregation) goes to the library as a flat piece of text, in which an argument that is
  itself more than one operand stands as a placeholder of the same type, so the library
  still checks every function's argument types and every modifier;
- binary and unary operators are ordered here with the grammar's precedence table
  (`or` < `and` `unless` < comparisons < `+` `-` < `*` `/` `%` `atan2` < `^`; `^`
  right-associative, the others left; unary minus binds as `*` does, so `-2^2` is -4),
  and each operator is checked by the library as `PH op modifiers PH`, so its type rules
  and its `bool`, `on`, `ignoring`, `group_left` and `group_right` are the library's;
- parentheses that hold a whole operand are transparent, as in Prometheus's evaluation.

A call, an aggregation or a subquery is one such piece around a placeholder, so they nest
as deep as the text allows without recursion here; their evaluation does not recurse
either (trampoline.py), and `limits.check_tree` bounds their depth all the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import nodes as N
from .errors import PromQLParseError

_TOKEN = re.compile(
    r"""
      (?P<skip>\s+|\#[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<word>(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+|[A-Za-z0-9_.:]+)
    | (?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=!@(){}\[\],])
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# Binary operators by precedence, as Prometheus's grammar declares them.
_BINARY = {
    "or": 1, "and": 2, "unless": 2,
    "==": 3, "!=": 3, "<=": 3, "<": 3, ">=": 3, ">": 3,
    "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "atan2": 5, "^": 6,
}
_UNARY_PRECEDENCE = 5  # `unary_expr: unary_op expr %prec MUL`
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_MODIFIED = frozenset({"offset", "@"})  # the sign and the value after these belong to the operand
_PREFIX = "__tocsin_piece_"

# Parses one flat piece of text; placeholders in it stand for the given nodes.
Convert = Callable[[str, dict[str, N.Expr]], N.Expr]


@dataclass(slots=True)
class _Piece:
    """A finished expression: flat text the library can take whole, or a converted node."""

    text: str | None = None
    node: N.Expr | None = None


@dataclass(slots=True)
class _Frame:
    """One open parenthesis (or the whole expression): its finished arguments, and the
    expression being read, as a shunting-yard's operand and operator stacks."""

    kind: str  # "top", "paren" or "call"
    args: list[_Piece] = field(default_factory=list)
    out: list[_Piece] = field(default_factory=list)
    ops: list[tuple[int, bool, str, str]] = field(default_factory=list)  # precedence, unary, op, modifiers
    # The operand being read: its text pieces, the nodes its placeholders stand for, whether
    # it is still flat text, the span of that text, and a parenthesised piece alone in it.
    parts: list[str] = field(default_factory=list)
    subs: dict[str, N.Expr] = field(default_factory=dict)
    flat: bool = True
    span: list[int] = field(default_factory=list)
    paren: _Piece | None = None
    modified: bool = False  # the last word was `offset` or `@`


class _Splitter:
    def __init__(self, text: str, convert: Convert) -> None:
        self.text = text
        self.convert = convert
        prefix = _PREFIX
        while prefix in text:  # no name in the text can be taken for a placeholder
            prefix += "x"
        self.prefix = prefix
        self.tokens = [(m.lastgroup or "", m.group(), m.start(), m.end())
                       for m in _TOKEN.finditer(text) if m.lastgroup != "skip"]

    # ------------------------------------------------------------------ pieces

    def node(self, piece: _Piece) -> N.Expr:
        if piece.node is None:
            assert piece.text is not None
            piece.node = self.convert(piece.text, {})
        return piece.node

    def placeholder(self, node: N.Expr, subs: dict[str, N.Expr]) -> str:
        """Text the library reads as an expression of `node`'s type, standing for it."""
        name = f"{self.prefix}{len(subs)}"
        subs[name] = node
        if node.type == N.SCALAR:
            return f"scalar({name})"
        if node.type == N.MATRIX:
            return f"{name}[1m]"
        if node.type == N.STRING:
            return f'"{name}"'
        return name

    def emit(self, piece: _Piece, subs: dict[str, N.Expr]) -> str:
        return piece.text if piece.text is not None else self.placeholder(self.node(piece), subs)

    # ------------------------------------------------------------------ operands

    def add(self, f: _Frame, text: str, start: int, end: int, flat: bool = True) -> None:
        if not f.parts:
            f.span = [start, end]
        f.span[1] = end
        f.parts.append(text)
        f.flat = f.flat and flat
        f.paren = None

    def finish_operand(self, f: _Frame, where: int) -> None:
        if not f.parts:
            raise self.error(where, "unexpected " + self.describe(where))
        if f.paren is not None:  # `( expr )` alone: the parentheses change nothing
            piece = f.paren
        elif f.flat:
            piece = _Piece(text=self.text[f.span[0]:f.span[1]])
        else:
            piece = _Piece(node=self.convert(" ".join(f.parts), f.subs))
        f.out.append(piece)
        f.parts, f.subs, f.flat, f.paren, f.modified = [], {}, True, None, False

    # ------------------------------------------------------------------ operators

    def reduce(self, f: _Frame) -> None:
        _, unary, op, mods = f.ops.pop()
        subs: dict[str, N.Expr] = {}
        if unary:
            inner = self.node(f.out.pop())
            node = self.convert(f"{op}{self.placeholder(inner, subs)}", subs)
        else:
            rhs = self.node(f.out.pop())
            lhs = self.node(f.out.pop())
            lhs_text = self.placeholder(lhs, subs)
            node = self.convert(f"{lhs_text} {op} {mods} {self.placeholder(rhs, subs)}", subs)
        f.out.append(_Piece(node=node))

    def push_binary(self, f: _Frame, op: str, mods: str) -> None:
        precedence = _BINARY[op.lower()]
        right = op == "^"
        while f.ops and (f.ops[-1][0] > precedence or (f.ops[-1][0] == precedence and not right)):
            self.reduce(f)
        f.ops.append((precedence, False, op, mods))

    def finish_expression(self, f: _Frame, where: int) -> _Piece:
        self.finish_operand(f, where)
        while f.ops:
            self.reduce(f)
        return f.out.pop()

    def modifiers(self, i: int) -> tuple[str, int]:
        """The text of `bool`, `on(...)`/`ignoring(...)`, `group_left(...)` after the
        operator at token i, and the index of the token after them."""
        toks = self.tokens
        j = i + 1
        start = toks[j][2] if j < len(toks) else len(self.text)
        end = start

        def word(k: int) -> str:
            return toks[k][1].lower() if k < len(toks) and toks[k][0] == "word" else ""

        if word(j) == "bool":
            end, j = toks[j][3], j + 1
        if word(j) in ("on", "ignoring"):
            j = self.skip_group(j + 1, required=True)
            end = toks[j - 1][3]
        if word(j) in ("group_left", "group_right"):
            j += 1
            end = toks[j - 1][3]
            if j < len(toks) and toks[j][1] == "(":
                j = self.skip_group(j, required=True)
                end = toks[j - 1][3]
        return self.text[start:end], j

    def skip_group(self, j: int, required: bool) -> int:
        """Skip a label list `( a, b )` starting at token j; the index after its `)`."""
        toks = self.tokens
        if j >= len(toks) or toks[j][1] != "(":
            if required:
                raise self.error(j, "expected a label list in parentheses")
            return j
        while j < len(toks) and toks[j][1] != ")":
            j += 1
        if j >= len(toks):
            raise self.error(j, "unclosed label list")
        return j + 1

    def skip_bracket(self, j: int) -> int:
        """Skip a `{...}` or `[...]` (no expressions inside); the index after its closer."""
        closer = "}" if self.tokens[j][1] == "{" else "]"
        k = j + 1
        while k < len(self.tokens) and self.tokens[k][1] != closer:
            k += 1
        if k >= len(self.tokens):
            raise self.error(j, f"unclosed {self.tokens[j][1]}")
        return k + 1

    # ------------------------------------------------------------------ errors

    def describe(self, i: int) -> str:
        return f'"{self.tokens[i][1]}"' if i < len(self.tokens) else "end of input"

    def error(self, i: int, what: str) -> PromQLParseError:
        at = self.tokens[i][2] if i < len(self.tokens) else len(self.text)
        line = self.text.count("\n", 0, at) + 1
        col = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return PromQLParseError(f"{line}:{col}: parse error: {what}")

    # ------------------------------------------------------------------ the scan

    def run(self) -> N.Expr:
        toks = self.tokens
        stack = [_Frame("top")]
        i = 0
        while i < len(toks):
            kind, tok, start, end = toks[i]
            f = stack[-1]
            low = tok.lower()
            if tok in ("(", "{", "["):
                if tok != "(":
                    j = self.skip_bracket(i)
                    self.add(f, self.text[start:toks[j - 1][3]], start, toks[j - 1][3])
                    i = j
                    continue
                if i + 1 < len(toks) and toks[i + 1][1] == ")":  # time(), start(): flat
                    self.add(f, "()", start, toks[i + 1][3])
                    i += 2
                    continue
                if f.parts and f.parts[-1].lower() in _GROUPING:
                    j = self.skip_group(i, required=True)
                    self.add(f, self.text[start:toks[j - 1][3]], start, toks[j - 1][3])
                    i = j
                    continue
                if f.parts:  # a call or an aggregation: its arguments are expressions
                    self.add(f, "(", start, end, flat=False)
                    stack.append(_Frame("call"))
                else:
                    stack.append(_Frame("paren"))
                i += 1
                continue
            if tok in (")", ","):
                if f.kind == "top" or (tok == "," and f.kind != "call"):
                    raise self.error(i, f'unexpected "{tok}"')
                f.args.append(self.finish_expression(f, i))
                if tok == ",":
                    i += 1
                    continue
                stack.pop()
                parent = stack[-1]
                if f.kind == "paren":
                    alone = not parent.parts
                    self.add(parent, "(" + self.emit(f.args[0], parent.subs) + ")", start, end, flat=False)
                    if alone:
                        parent.paren = f.args[0]
                else:
                    self.add(parent, ", ".join(self.emit(a, parent.subs) for a in f.args) + ")", start, end,
                             flat=False)
                i += 1
                continue
            if f.modified and tok in ("+", "-"):
                self.add(f, tok, start, end)
                i += 1
                continue
            if low in _BINARY and f.parts and not f.modified:
                self.finish_operand(f, i)
                mods, i = self.modifiers(i)
                self.push_binary(f, tok, mods)
                continue
            if tok in ("+", "-") and not f.parts:
                f.ops.append((_UNARY_PRECEDENCE, True, tok, ""))
                i += 1
                continue
            if kind in ("op", "other") and tok != "@":
                raise self.error(i, "unexpected " + self.describe(i))
            self.add(f, tok, start, end)
            f.modified = low in _MODIFIED
            i += 1
        if len(stack) > 1:
            raise self.error(i, "unclosed left parenthesis")
        piece = self.finish_expression(stack[0], i)
        return self.node(piece)


def parse(text: str, convert: Convert) -> N.Expr:
    """The tree of `text` (normalized PromQL), parsed without recursion; `convert` parses
    one flat piece with the parser library. Raises PromQLParseError."""
    return _Splitter(text, convert).run()
