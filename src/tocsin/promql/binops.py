"""Binary operators: arithmetic, comparisons (filtering or `bool`), and/or/unless, with
on/ignoring and group_left/group_right vector matching, as Prometheus 2.42 does it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..gofmt import format_label_set
from . import gomath as G
from . import nodes as N
from .errors import PromQLEvalError
from .labels import METRIC_NAME, Labels, drop_name, get, keep, memo_table, without
from .values import Sample

ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": G.div,
    "%": G.mod,
    "^": G.pow_,
    "atan2": G.atan2,
}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


# Prometheus 2.42 keeps the metric name for atan2 (only + - * / % ^ drop it).
_DROPS_NAME = frozenset({"+", "-", "*", "/", "%", "^"})


def scalar_binop(op: str, a: float, b: float) -> float:
    f = ARITH.get(op)
    if f is not None:
        return f(a, b)
    return 1.0 if COMPARE[op](a, b) else 0.0


_drop_name = drop_name


def vector_scalar(op: str, vec: list[Sample], scalar: float, swap: bool, return_bool: bool) -> list[Sample]:
    """`vec op scalar`, or `scalar op vec` when swap; comparisons filter and keep the
    vector's own value (even when the scalar is on the left)."""
    out: list[Sample] = []
    arith = ARITH.get(op)
    if arith is not None:
        drop = op in _DROPS_NAME
        for lbl, v in vec:
            out.append(Sample(_drop_name(lbl) if drop else lbl, arith(scalar, v) if swap else arith(v, scalar)))
        return out
    cmp = COMPARE[op]
    for lbl, v in vec:
        ok = cmp(scalar, v) if swap else cmp(v, scalar)
        if return_bool:
            out.append(Sample(_drop_name(lbl), 1.0 if ok else 0.0))
        elif ok:
            out.append(Sample(lbl, v))
    return out


# Match signatures per (on, names) and label set (labels.memo_table).
_SIGS: dict[tuple[bool, frozenset[str]], dict[Labels, Labels]] = {}


def _signature(on: bool, names: tuple[str, ...]) -> Callable[[Labels], Labels]:
    if on:
        key_names = frozenset(names)
        make: Callable[[Labels], Labels] = lambda lbl: keep(lbl, key_names)  # noqa: E731 - chosen once, called per series
    else:
        key_names = frozenset(names) | {METRIC_NAME}
        make = lambda lbl: without(lbl, key_names)  # noqa: E731 - chosen once, called per series
    cache = memo_table(_SIGS, (on, key_names))
    get = cache.get

    def sig(lbl: Labels) -> Labels:
        k = get(lbl)
        if k is None:
            k = cache[lbl] = make(lbl)
        return k

    return sig


def vector_vector(node: N.Binary, lhs: list[Sample], rhs: list[Sample]) -> list[Sample]:
    op = node.op
    sig = _signature(node.on, node.matching)
    if op == "and":
        rsigs = {sig(s.labels) for s in rhs}
        return [s for s in lhs if sig(s.labels) in rsigs]
    if op == "unless":
        rsigs = {sig(s.labels) for s in rhs}
        return [s for s in lhs if sig(s.labels) not in rsigs]
    if op == "or":
        lsigs = {sig(s.labels) for s in lhs}
        return list(lhs) + [s for s in rhs if sig(s.labels) not in lsigs]

    if not lhs or not rhs:
        return []
    card = node.card
    if card == "one-to-many":
        lhs, rhs = rhs, lhs
    # The right side is now the "one" side: its signatures must be unique.
    right: dict[Labels, Sample] = {}
    for s in rhs:
        k = sig(s.labels)
        dup = right.get(k)
        if dup is not None:
            side = "left" if card == "one-to-many" else "right"
            raise PromQLEvalError(
                f"found duplicate series for the match group {format_label_set(k)} on the {side} hand-side "
                f"of the operation: [{format_label_set(s.labels)}, {format_label_set(dup.labels)}];"
                "many-to-many matching not allowed: matching labels must be unique on one side"
            )
        right[k] = s

    arith = ARITH.get(op)
    cmp = COMPARE.get(op)
    return_bool = node.return_bool
    drop_name = op in _DROPS_NAME
    one_to_one = card == "one-to-one"
    keep_on = frozenset(node.matching)
    include = node.include
    matched: dict[Labels, set[Labels] | None] = {}
    out: list[Sample] = []
    for ls in lhs:
        k = sig(ls.labels)
        rs = right.get(k)
        if rs is None:
            continue
        vl, vr = ls.value, rs.value
        if card == "one-to-many":
            vl, vr = vr, vl
        if arith is not None:
            value = arith(vl, vr)
            ok = True
        else:
            assert cmp is not None
            ok = cmp(vl, vr)
            value = vl
        if return_bool:
            value = 1.0 if ok else 0.0
        elif not ok:
            continue
        # Result labels come from the "many" (left after swapping) side.
        lbl = ls.labels
        if drop_name or return_bool:
            lbl = _drop_name(lbl)
        if one_to_one:
            if node.on:
                lbl = keep(lbl, keep_on)
            elif node.matching:
                lbl = without(lbl, keep_on)
        elif include:
            d = dict(lbl)
            for name in include:
                v = get(rs.labels, name)
                if v:
                    d[name] = v
                else:
                    d.pop(name, None)
            lbl = tuple(sorted(d.items()))
        if one_to_one:
            if k in matched:
                raise PromQLEvalError(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                )
            matched[k] = None
        else:
            inserted = matched.get(k)
            if inserted is None:
                inserted = set()
                matched[k] = inserted
            elif lbl in inserted:
                raise PromQLEvalError("multiple matches for labels: grouping labels must ensure unique matches")
            inserted.add(lbl)
        out.append(Sample(lbl, value))
    return out
