"""The engine's own expression tree.

The parser's objects are Rust-backed and rebuild Python objects on every attribute
access; rules are evaluated over and over, so the tree is converted once into these
plain slotted classes, with durations already in milliseconds, regexes compiled and
function implementations resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from .matchers import Matcher

# Value types, as strings so they print well in error messages.
SCALAR = "scalar"
VECTOR = "instant vector"
MATRIX = "range vector"
STRING = "string"


@dataclass(frozen=True, slots=True)
class At:
    """An `@` modifier: a fixed time in ms, or the query's start()/end()."""

    kind: str  # "ms", "start" or "end"
    ms: int = 0


@dataclass(eq=False, slots=True)
class NumberLiteral:
    value: float
    type: str = SCALAR


@dataclass(eq=False, slots=True)
class StringLiteral:
    value: str
    type: str = STRING


@dataclass(eq=False, slots=True)
class VectorSelector:
    name: str | None
    matchers: tuple[Matcher, ...]
    offset_ms: int = 0
    at: At | None = None
    type: str = VECTOR


@dataclass(eq=False, slots=True)
class MatrixSelector:
    selector: VectorSelector
    range_ms: int
    type: str = MATRIX


@dataclass(eq=False, slots=True)
class Subquery:
    expr: "Expr"
    range_ms: int
    step_ms: int | None
    offset_ms: int = 0
    at: At | None = None
    type: str = MATRIX


@dataclass(eq=False, slots=True)
class Call:
    name: str
    args: list["Expr"]
    impl: Any  # functions.FunctionDef
    type: str = VECTOR


@dataclass(eq=False, slots=True)
class Aggregate:
    op: str
    expr: "Expr"
    param: "Expr | None"
    grouping: tuple[str, ...]
    without: bool
    type: str = VECTOR


@dataclass(eq=False, slots=True)
class Binary:
    op: str
    lhs: "Expr"
    rhs: "Expr"
    return_bool: bool
    card: str  # "one-to-one", "many-to-one", "one-to-many", "many-to-many"
    on: bool  # True: on(...), False: ignoring(...) (or no modifier)
    matching: tuple[str, ...]
    include: tuple[str, ...]
    type: str = VECTOR


@dataclass(eq=False, slots=True)
class Unary:
    op: str
    expr: "Expr"
    type: str = VECTOR


Expr = Union[
    NumberLiteral, StringLiteral, VectorSelector, MatrixSelector, Subquery, Call, Aggregate, Binary, Unary
]


def children(node: Expr) -> list[Expr]:
    if isinstance(node, MatrixSelector):
        return [node.selector]
    if isinstance(node, Subquery):
        return [node.expr]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, Aggregate):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, Binary):
        return [node.lhs, node.rhs]
    if isinstance(node, Unary):
        return [node.expr]
    return []
