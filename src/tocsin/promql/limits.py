"""Bounds on an expression: its size, what the parser library may see whole, and how deep
its evaluation recurses.

The `promql_parser` binding builds its Python tree by copying every subtree at every
level, so its memory grows with size × depth (a 4 000-term `1+1+…` chain took 2.3 GB),
and its recursion overflows the C stack on deep input (SIGSEGV, which no `except` can
catch). Prometheus has neither problem: its parser does not recurse. So an expression
the binding cannot take whole safely is parsed piece by piece (chains.py) instead, and
`fits_binding` decides which, with one linear scan that never recurses. It over-estimates
the tree's depth: every operator (binary or unary) adds a level within its bracket, as a
left-associative chain does, and every bracket adds one. `cost` sums each token's
estimated depth, which is what the binding's copies grow with.

Neither parsing nor evaluation recurses however deep calls, aggregations and subqueries
nest (chains.py, trampoline.py): depth costs heap memory only. `check_tree` still bounds it,
far beyond any real rule, so the cost of one expression has a limit of its own.
"""

from __future__ import annotations

import re

from . import nodes as N
from .errors import PromQLParseError

# Depth the binding may see whole: its recursion stays far from the C stack's end, and
# converting its tree stays far from Python's recursion limit.
MAX_DEPTH = 100
# Calls, aggregations and subqueries nested in one another. promtool 2.42 takes 50 000 levels
# in a second and 190 MB, 500 000 in 10 s and 1.4 GB; MAX_CHARS alone allows about 65 000
# (`ln(` and `)` are four characters a level). Beyond this, a clear error, whatever MAX_CHARS becomes.
MAX_NESTING = 100_000
# Characters of expression text: room for generated regular expressions naming thousands
# of hosts and for 50 000-term chains, small enough that parsing costs tens of megabytes.
MAX_CHARS = 256 * 1024
# Sum over tokens of their depth: what the binding's copying costs (about 150 bytes each).
MAX_COST = 400_000

_TOKEN = re.compile(
    r"""
      (?P<skip>\s+|\#[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)
    | (?P<open>[(\[{])
    | (?P<close>[)\]}])
    | (?P<comma>,)
    | (?P<matchop>=~|!~|!=|==|<=|>=|=)
    | (?P<op>[-+*/%^<>@])
    | (?P<word>[A-Za-z0-9_.:]+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_WORD_OPS = frozenset({"and", "or", "unless", "atan2", "offset"})
_NESTING = (N.Call, N.Aggregate, N.Subquery, N.MatrixSelector)


def clip(text: str, limit: int = 120) -> str:
    """The start of `text` for an error message: a huge expression must not make a huge line."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def check_size(expr: str) -> None:
    """Raise PromQLParseError if `expr` is too long to parse at all."""
    if len(expr) > MAX_CHARS:
        raise PromQLParseError(f"expression is {len(expr)} characters long; at most {MAX_CHARS} are supported")


def fits_binding(expr: str) -> bool:
    """Whether the parser library can take `expr` whole: shallow and small enough."""
    # Per open bracket: (kind, operators seen at that level). depth = brackets + operators.
    levels: list[list] = [["", 0]]
    depth = cost = 0
    for m in _TOKEN.finditer(expr):
        kind = m.lastgroup
        if kind == "skip":
            continue
        level = levels[-1]
        if kind == "open":
            depth += 1
            levels.append([m.group(), 0])
        elif kind == "close":
            if len(levels) > 1:
                depth -= 1 + levels.pop()[1]
        elif kind == "comma":
            depth -= level[1]
            level[1] = 0
        elif level[0] != "{" and (kind in ("op", "matchop") or (kind == "word" and m.group().lower() in _WORD_OPS)):
            level[1] += 1
            depth += 1
        cost += depth
        if depth > MAX_DEPTH or cost > MAX_COST:
            return False
    return True


def check_tree(tree: N.Expr) -> None:
    """Raise PromQLParseError if calls, aggregations and subqueries nest deeper than MAX_NESTING."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, _NESTING):
            depth += 1
            if depth > MAX_NESTING:
                raise PromQLParseError(
                    f"calls, aggregations and subqueries nest more than {MAX_NESTING} levels deep; "
                    "tocsin evaluates at most that many (split the expression, e.g. into recording rules)"
                )
        stack.extend((child, depth) for child in N.children(node))
