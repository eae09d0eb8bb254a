"""Trees of binary and unary operators, evaluated without recursing through them.

A `1+1+…` chain of 50 000 terms, or 20 000 unary minuses, is as deep as it is long:
Prometheus accepts it, and an evaluator recursing once per operator would hit Python's
recursion limit. Here an explicit stack walks the operators, left operand before right as
Prometheus evaluates them; the value of every other node (calls, aggregations, selectors)
is asked of the caller's driver (trampoline.py), which evaluates those without recursing either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import nodes as N
from .binops import scalar_binop, vector_scalar, vector_vector
from .errors import PromQLEvalError
from .labels import drop_name
from .trampoline import Evaluation
from .values import Sample

_SET_OPS = frozenset({"and", "or", "unless"})
_FILTERS = frozenset({"==", "!=", ">", "<", ">=", "<="})


def check_unique(vec: list[Sample]) -> list[Sample]:
    if len(vec) > 1 and len({s.labels for s in vec}) != len(vec):
        raise PromQLEvalError("vector cannot contain metrics with the same labelset")
    return vec


def evaluate_operators(root: N.Binary | N.Unary, ts: int, tick: Callable[[], None] = lambda: None) -> Evaluation:
    """The value of `root` at `ts`, as a trampoline.py evaluation: it yields `(operand, ts)` for
    every operand that is no operator; `tick` is called every thousand nodes (the query's
    timeout check)."""
    todo: list[tuple[N.Expr, bool]] = [(root, False)]
    done: list[Any] = []
    steps = 0
    while todo:
        steps += 1
        if steps % 1024 == 0:
            tick()
        node, operands_done = todo.pop()
        if isinstance(node, N.Binary):
            if operands_done:
                rhs = done.pop()
                done.append(binary(node, done.pop(), rhs))
            else:
                todo += ((node, True), (node.rhs, False), (node.lhs, False))
        elif isinstance(node, N.Unary):
            if operands_done:
                done.append(unary(node, done.pop()))
            else:
                todo += ((node, True), (node.expr, False))
        else:
            done.append((yield node, ts))
    return done[0]


def binary(node: N.Binary, lhs: Any, rhs: Any) -> Any:
    if node.type == N.SCALAR:
        return scalar_binop(node.op, lhs, rhs)
    # Already unique: a comparison with a scalar without bool keeps a subset of one
    # unique vector, so do and/unless; `or` adds only right-hand series whose
    # signature (and so whose labels) the left side lacks.
    if node.lhs.type == N.SCALAR or node.rhs.type == N.SCALAR:
        swap = node.lhs.type == N.SCALAR
        out = vector_scalar(node.op, rhs if swap else lhs, lhs if swap else rhs, swap, node.return_bool)
        if node.op in _FILTERS and not node.return_bool:
            return out
        return check_unique(out)
    out = vector_vector(node, lhs, rhs)
    if node.op in _SET_OPS or node.card == "one-to-one":
        # One-to-one: each result's labels are its match signature (or the unique
        # left-hand labels), and vector_vector rejects a signature matched twice.
        return out
    return check_unique(out)


def unary(node: N.Unary, value: Any) -> Any:
    if node.type == N.SCALAR:
        return -value
    return check_unique([Sample(drop_name(lbl), -x) for lbl, x in value])
