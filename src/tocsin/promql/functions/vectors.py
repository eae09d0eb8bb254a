"""Functions on a whole vector: vector(), scalar(), absent(), sort(), sort_desc()."""

from __future__ import annotations

import math
from typing import Any

from .. import nodes as N
from ..labels import METRIC_NAME, Labels
from ..values import Sample

NAN = math.nan


def s_vector(args: list[Any], _node: N.Call, _ts: int) -> list[Sample]:
    return [Sample((), args[0])]


def s_scalar(args: list[Any], _node: N.Call, _ts: int) -> float:
    vec = args[0]
    if len(vec) != 1:
        return NAN
    return vec[0].value


def absent_labels(arg: N.Expr) -> Labels:
    """Labels absent() invents, as Prometheus 2.42 builds them: the matchers in the order
    written, an equality matcher setting its label, any other matcher removing what is set
    so far, and a label given two equality matchers left out in the end. So
    `m{job!~"a", job="x"}` gives {job="x"}, while `m{job="x", job!~"a"}` and
    `m{job="a", job="b", job="c"}` give {} (checked against promtool 2.42)."""
    if isinstance(arg, N.MatrixSelector):
        arg = arg.selector
    if not isinstance(arg, N.VectorSelector):
        return ()
    out: dict[str, str] = {}
    repeated: list[str] = []
    for m in arg.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.op != "=":
            out.pop(m.name, None)
        elif m.name in out:
            repeated.append(m.name)  # two values for one label: neither, whatever comes after
        else:
            out[m.name] = m.value
    for name in repeated:
        out.pop(name, None)
    return tuple(sorted((k, v) for k, v in out.items() if v != ""))


def s_absent(args: list[Any], node: N.Call, _ts: int) -> list[Sample]:
    if args[0]:
        return []
    return [Sample(absent_labels(node.args[0]), 1.0)]


def s_sort(args: list[Any], _node: N.Call, _ts: int) -> list[Sample]:
    return sorted(args[0], key=lambda s: (s.value != s.value, s.value))


def s_sort_desc(args: list[Any], _node: N.Call, _ts: int) -> list[Sample]:
    return sorted(args[0], key=lambda s: (s.value != s.value, -s.value))
