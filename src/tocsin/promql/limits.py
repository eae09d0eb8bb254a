"""Bounds on an expression's size and nesting, checked before the parser library sees it.

The `promql_parser` binding builds its Python tree by copying every subtree at every
level, so its memory grows with size × depth (a 4 000-term `1+1+…` chain took 2.3 GB),
and its recursion overflows the C stack on deep input (SIGSEGV, which no `except` can
catch: a rule file could kill the daemon at every reload). Prometheus has no such limits
because its parser does not recurse; ours must refuse such text up front, with a reason.

The scan here is linear and never recurses. It over-estimates the tree's depth: every
operator (binary or unary) adds a level within its bracket, as a left-associative chain
does, and every bracket adds one. `cost` sums each token's estimated depth, which is
what the binding's copies grow with.
"""

from __future__ import annotations

import re

from .errors import PromQLParseError

# Depth of the parsed tree. The evaluator recurses about twice per level, so 100 levels
# stay far from Python's recursion limit even when the evaluation starts deep in a stack.
MAX_DEPTH = 100
# Characters of expression text: room for generated regular expressions naming thousands
# of hosts, small enough that parsing never costs more than a few tens of megabytes.
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


def clip(text: str, limit: int = 120) -> str:
    """The start of `text` for an error message: a huge expression must not make a huge line."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def check(expr: str) -> None:
    """Raise PromQLParseError if `expr` is too long or too deeply nested to parse safely."""
    if len(expr) > MAX_CHARS:
        raise PromQLParseError(f"expression is {len(expr)} characters long; at most {MAX_CHARS} are supported")
    # Per open bracket: (kind, operators seen at that level). depth = brackets + operators.
    levels: list[list] = [["", 0]]
    depth = max_depth = cost = 0
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
        elif level[0] != "{" and (kind in ("op", "matchop") or (kind == "word" and m.group() in _WORD_OPS)):
            level[1] += 1
            depth += 1
        cost += depth
        if depth > max_depth:
            max_depth = depth
            if depth > MAX_DEPTH:
                raise PromQLParseError(
                    f"expression nests more than {MAX_DEPTH} levels deep (brackets, or operators chained "
                    "within one bracket); split it, e.g. into recording rules"
                )
    if cost > MAX_COST:
        raise PromQLParseError(
            f"expression is too large to parse safely (size × nesting {cost}, at most {MAX_COST}); "
            "split it, e.g. into recording rules"
        )
