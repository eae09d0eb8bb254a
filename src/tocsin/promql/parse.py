"""Parse PromQL with `promql-parser` and convert it to the engine's tree.

`promql-parser` follows Prometheus 3 syntax; everything we cannot evaluate exactly as
Prometheus 2.42 would (unknown functions, native-histogram functions, `limitk`, fill
modifiers, `or` inside selectors, ...) is refused here, at load time, so a rule never
fails later for a reason that was visible up front.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import functools

import promql_parser as _pp

from . import chains, limits, source, spelling
from . import nodes as N
from .errors import PromQLParseError
from .functions import FUNCTIONS
from .labels import METRIC_NAME, is_valid_label_name
from .matchers import Matcher

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MS = _dt.timedelta(milliseconds=1)

AGGREGATIONS = frozenset(
    {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"}
)
_ARITH = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})
_COMPARE = frozenset({"==", "!=", ">", "<", ">=", "<="})
_SETOPS = frozenset({"and", "or", "unless"})

_VTYPES = {
    "Scalar": N.SCALAR,
    "Vector": N.VECTOR,
    "Matrix": N.MATRIX,
    "String": N.STRING,
}
_CARD = {
    "OneToOne": "one-to-one",
    "ManyToOne": "many-to-one",
    "OneToMany": "one-to-many",
    "ManyToMany": "many-to-many",
}
_MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def parse(expr: str) -> N.Expr:
    """Parse and validate `expr`; raises PromQLParseError with the reason."""
    return _parse_cached(expr)


@functools.lru_cache(maxsize=1024)
def _parse_cached(expr: str) -> N.Expr:
    whole = None
    limits.check_size(expr)
    try:
        text = spelling.rewrite(source.normalize(expr))  # 2.42's lexical rules, which the binding no longer follows
        whole = _binding_parse(text) if limits.fits_binding(text) else None
        # Deep or long: the binding would crash or eat memory on it whole, so piece by piece.
        tree = _convert(whole) if whole is not None else chains.parse(text, _convert_piece)
    except PromQLParseError as exc:
        if whole is not None and not isinstance(exc, _LibraryError):
            raise  # a reason of our own, about the expression as a whole
        raise PromQLParseError(f"parse error in {limits.clip(repr(expr))}: {exc.message}") from None
    except RecursionError:  # limits bound the depth; this is the last line of defence
        raise PromQLParseError(f"expression nested too deeply: {limits.clip(repr(expr))}") from None
    limits.check_tree(tree)
    return tree


def _binding_parse(text: str) -> object:
    try:
        return _pp.parse(text)
    except BaseException as exc:  # the Rust binding raises ValueError, or panics
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise _LibraryError(str(exc)) from None


class _LibraryError(PromQLParseError):
    """The parser library's own error, which gets the expression quoted before it."""


# A chain's operators are the same few short pieces (`PH0 + PH1`) over and over.
_short_piece = functools.lru_cache(maxsize=256)(_binding_parse)


def _convert_piece(text: str, subs: dict[str, N.Expr]) -> N.Expr:
    """One flat piece of a deep expression; its placeholders stand for the nodes in `subs`."""
    token = _SUBS.set(subs)
    try:
        return _convert(_short_piece(text) if len(text) <= 200 else _binding_parse(text))
    except PromQLParseError as exc:
        if not subs:
            raise
        # The library's words may name a placeholder: say where instead.
        raise PromQLParseError(f"{exc} (in {limits.clip(_unplaceholder(text, subs), 60)})") from None
    finally:
        _SUBS.reset(token)


# The nodes that placeholders in the piece being converted stand for (see chains.py).
_SUBS: contextvars.ContextVar[dict[str, N.Expr] | None] = contextvars.ContextVar("promql_placeholders",
                                                                                   default=None)


def _placeholder(e: object, subs: dict[str, N.Expr]) -> N.Expr | None:
    """The node a placeholder stands for: `name`, `scalar(name)`, `name[1m]` or `"name"`."""
    if isinstance(e, _pp.VectorSelector):
        return subs.get(e.name or "")
    if isinstance(e, _pp.MatrixSelector):
        return subs.get(e.vector_selector.name or "")
    if isinstance(e, _pp.StringLiteral):
        return subs.get(e.val)
    if isinstance(e, _pp.Call) and e.func.name == "scalar":
        args = list(e.args)
        if len(args) == 1 and isinstance(args[0], _pp.VectorSelector):
            node = subs.get(args[0].name or "")
            return node if node is not None and node.type == N.SCALAR else None  # else a real scalar()
    return None


def _unplaceholder(text: str, subs: dict[str, N.Expr]) -> str:
    for name in sorted(subs, key=len, reverse=True):
        text = text.replace(name, "…")
    return text


def _ename(v: object) -> str:
    """Member name of a binding enum (they print as `Type.Member` but lack `.name`)."""
    return str(v).rsplit(".", 1)[-1]


def _ms(td: _dt.timedelta | None) -> int:
    if td is None:
        return 0
    return td // _MS


def _at(at: object) -> N.At | None:
    if at is None:
        return None
    kind = _ename(at.type)  # type: ignore[attr-defined]  # the binding's AtModifier, untyped here
    if kind == "Start":
        return N.At("start")
    if kind == "End":
        return N.At("end")
    try:
        when = at.at  # type: ignore[attr-defined]  # as above
    except BaseException as exc:  # the binding panics on times before 1970
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise PromQLParseError("@ timestamps before 1970 are not supported") from None
    return N.At("ms", spelling.at_ms((when - _EPOCH) // _MS))


def _check_label_name(name: str) -> None:
    if not is_valid_label_name(name):
        raise PromQLParseError(f'invalid label name "{name}" (Prometheus 2.x label names only)')


def _selector(vs: _pp.VectorSelector) -> N.VectorSelector:
    ms = vs.matchers
    if ms.or_matchers:
        raise PromQLParseError("'or' inside a selector's braces is not supported (Prometheus 3 syntax)")
    matchers: list[Matcher] = []
    name = vs.name
    if name is not None:
        matchers.append(Matcher.make(METRIC_NAME, "=", name))
    for m in ms.matchers:
        _check_label_name(m.name)
        matchers.append(Matcher.make(m.name, _MATCH_OPS[_ename(m.op)], m.value))
    if not any(not m.matches_empty() for m in matchers):
        raise PromQLParseError("vector selector must contain at least one non-empty matcher")
    return N.VectorSelector(name, tuple(matchers), _ms(vs.offset), _at(vs.at))


def _convert(e: object) -> N.Expr:
    subs = _SUBS.get()
    if subs:
        node = _placeholder(e, subs)
        if node is not None:
            return node
    if isinstance(e, _pp.ParenExpr):
        return _convert(e.expr)
    if isinstance(e, _pp.NumberLiteral):
        return N.NumberLiteral(float(e.val))
    if isinstance(e, _pp.StringLiteral):
        return N.StringLiteral(e.val)
    if isinstance(e, _pp.VectorSelector):
        return _selector(e)
    if isinstance(e, _pp.MatrixSelector):
        return N.MatrixSelector(_selector(e.vector_selector), _ms(e.range))
    if isinstance(e, _pp.SubqueryExpr):
        inner = _convert(e.expr)
        step = _ms(e.step) if e.step is not None else None
        if step is not None and step <= 0:
            step = None
        return N.Subquery(inner, _ms(e.range), step, _ms(e.offset), _at(e.at))
    if isinstance(e, _pp.UnaryExpr):
        inner = _convert(e.expr)
        if isinstance(inner, N.NumberLiteral):
            return N.NumberLiteral(-inner.value)
        return N.Unary("-", inner, N.SCALAR if inner.type == N.SCALAR else N.VECTOR)
    if isinstance(e, _pp.Call):
        return _call(e)
    if isinstance(e, _pp.AggregateExpr):
        return _aggregate(e)
    if isinstance(e, _pp.BinaryExpr):
        return _binary(e)
    raise PromQLParseError(f"unsupported expression {type(e).__name__}")


def _call(e: _pp.Call) -> N.Call:
    name = e.func.name
    fdef = FUNCTIONS.get(name)
    if fdef is None:
        raise PromQLParseError(f'unsupported function "{name}"')
    args = [_convert(a) for a in e.args]
    node = N.Call(name, args, fdef, _VTYPES[_ename(e.func.return_type)])
    fdef.validate(node)
    return node


def _aggregate(e: _pp.AggregateExpr) -> N.Aggregate:
    op = str(e.op).lower()
    if op not in AGGREGATIONS:
        raise PromQLParseError(f'unsupported aggregation "{op}"')
    inner = _convert(e.expr)
    param = _convert(e.param) if e.param is not None else None
    grouping: tuple[str, ...] = ()
    without = False
    if e.modifier is not None:
        grouping = tuple(e.modifier.labels)
        without = _ename(e.modifier.type) == "Without"
    if op == "count_values":
        if not isinstance(param, N.StringLiteral):
            raise PromQLParseError("count_values needs a string literal as its label name")
        # its validity is checked when evaluated, as 2.42 does (check rules accepts it)
    for g in grouping:
        _check_label_name(g)
    return N.Aggregate(op, inner, param, grouping, without)


def _binary(e: _pp.BinaryExpr) -> N.Binary:
    op = str(e.op).lower()
    if op not in _ARITH and op not in _COMPARE and op not in _SETOPS:
        raise PromQLParseError(f'unsupported operator "{op}"')
    lhs = _convert(e.lhs)
    rhs = _convert(e.rhs)
    mod = e.modifier
    return_bool = False
    card = "many-to-many" if op in _SETOPS else "one-to-one"
    on = False
    matching: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    if mod is not None:
        fill = mod.fill_values
        if fill is not None and (fill.lhs is not None or fill.rhs is not None):
            raise PromQLParseError("fill modifiers are not supported (not in Prometheus 2.42)")
        return_bool = bool(mod.return_bool)
        card = _CARD[_ename(mod.card)]
        if mod.matching is not None:
            on = _ename(mod.matching.type) == "Include"
            matching = tuple(mod.matching.labels)
        include = tuple(mod.group_labels or ())
        for name in matching + include:
            _check_label_name(name)
    if op in _SETOPS:
        card = "many-to-many"
    both_scalar = lhs.type == N.SCALAR and rhs.type == N.SCALAR
    if op in _COMPARE and both_scalar and not return_bool:
        raise PromQLParseError("comparisons between scalars must use BOOL modifier")
    if return_bool and op not in _COMPARE:
        raise PromQLParseError("bool modifier can only be used on comparison operators")
    rtype = N.SCALAR if both_scalar else N.VECTOR
    return N.Binary(op, lhs, rhs, return_bool, card, on, matching, include, rtype)

