"""The fixed function table: Prometheus's template functions and text/template's builtins.

Functions take and return plain template values and raise TemplateError with Go's
wording; the evaluator adds "error calling NAME:" in front. A few functions depend on
the expansion (`query`, `externalURL`, `now`...): they are only named here, so the
parser accepts them, and bound per expansion by the evaluator.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import re2

from ..gofmt import expand, format_float, time_string
from ..units import parse_duration
from .values import (
    MAX_OUTPUT_CHARS,
    NO_VALUE,
    QuerySample,
    TemplateError,
    go_printf,
    go_sprint,
    go_type_name,
    truth,
)

# ---------------------------------------------------------------------------- Prometheus's template.go


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TemplateError(f"can't convert {go_sprint(value)} to float")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip().lower() not in ("inf", "+inf", "-inf", "nan") else float(value)
        except ValueError:
            raise TemplateError(f'strconv.ParseFloat: parsing "{value}": invalid syntax') from None
    raise TemplateError(f"can't convert {go_sprint(value)} to float")


def _g4(v: float) -> str:
    """Go's %.4g: Python's, except for the names of NaN and the infinities."""
    return "%.4g" % v if math.isfinite(v) else format_float(v)


def humanize(value: Any) -> str:
    v = _to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v) + prefix


def humanize1024(value: Any) -> str:
    v = _to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v) + prefix


def _go_int64(v: float) -> int:
    """Go's int64(v) on amd64: beyond int64 (2**63 and more) it is the int64 minimum."""
    return int(v) if -9.223372036854775808e18 <= v < 9.223372036854775808e18 else -(1 << 63)


def _go_quo(a: int, b: int) -> int:
    """Go's integer division, truncated toward zero."""
    q = abs(a) // b
    return -q if a < 0 else q


def _go_rem(a: int, b: int) -> int:
    return a - _go_quo(a, b) * b


def humanize_duration(value: Any) -> str:
    v = _to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        whole = _go_int64(v)
        seconds, minutes = _go_rem(whole, 60), _go_rem(_go_quo(whole, 60), 60)
        hours, days = _go_rem(_go_quo(whole, 3600), 24), _go_quo(whole, 86400)
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(value: Any) -> str:
    return _g4(_to_float(value) * 100) + "%"


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _float_to_time(v: float) -> datetime:
    """Prometheus's floatToTime: whole nanoseconds (truncated toward zero), then whole
    milliseconds (the same), as model.TimeFromUnixNano does."""
    ns = v * 1e9
    if not -9.223372036854775808e18 <= ns <= 9.223372036854775807e18:
        raise TemplateError(f"{format_float(v)} cannot be represented as a nanoseconds timestamp since it overflows int64")
    whole = abs(int(ns)) // 1_000_000
    try:
        return _EPOCH + timedelta(milliseconds=whole if ns >= 0 else -whole)
    except OverflowError:
        raise TemplateError(f"{format_float(v)} is outside the years 1 to 9999") from None


def humanize_timestamp(value: Any) -> str:
    v = _to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return time_string(_float_to_time(v))


def _to_time(value: Any) -> datetime:
    v = _to_float(value)
    if math.isnan(v) or math.isinf(v):
        raise TemplateError("value is NaN or Inf")
    return _float_to_time(v)


def _title(s: str) -> str:
    """strings.Title: upper-case the first letter of each word."""
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), str(s))


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    try:
        rx = re2.compile(pattern)
    except Exception as exc:  # noqa: BLE001 - re2.error
        raise TemplateError(f"error parsing regexp: {exc}") from None
    dollars = repl.count("$")
    size = 0

    def replace(m: Any) -> str:
        # Every group lies inside the match: bound the expansion before making it.
        nonlocal size
        size += len(repl) + dollars * (m.end() - m.start())
        if size > MAX_OUTPUT_CHARS:
            raise TemplateError(f"result longer than {MAX_OUTPUT_CHARS} characters")
        return expand(repl, m)

    return rx.sub(replace, text)


def _match(pattern: str, text: str) -> bool:
    try:
        return re2.search(pattern, text) is not None
    except Exception as exc:  # noqa: BLE001 - the regex binding's error types vary; all are template errors
        raise TemplateError(f"error parsing regexp: {exc}") from None


def _strip_port(hostport: str) -> str:
    if hostport.startswith("["):
        end = hostport.find("]")
        return hostport[1:end] if end > 0 else hostport
    host, sep, _port = hostport.rpartition(":")
    if not sep or ":" in host:
        return hostport
    return host


def _strip_domain(hostport: str) -> str:
    host = _strip_port(hostport)
    port = hostport[len(host):] if hostport.startswith(host) else hostport[hostport.find("]") + 1:]
    if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", host) and (host.count(".") == 3 or ":" in host):
        return hostport
    return host.split(".", 1)[0] + port


def _sort_by_label(label: str, samples: list[QuerySample]) -> list[QuerySample]:
    return sorted(samples, key=lambda s: s.Labels.get(label, ""))


def _first(samples: Any) -> QuerySample:
    if isinstance(samples, list) and samples:
        return samples[0]
    raise TemplateError("first() called on vector with no elements")


def _label(name: str, sample: Any) -> str:
    if isinstance(sample, QuerySample):
        return sample.Labels.get(name, "")
    return ""


def _value(sample: Any) -> float:
    if isinstance(sample, QuerySample):
        return sample.Value
    raise TemplateError("value() called on a non-sample")


def _parse_duration(text: str) -> float:
    try:
        return float(parse_duration(text))
    except ValueError as exc:
        raise TemplateError(str(exc)) from None


def _graph_link(expr: str, tab: int) -> str:
    return "/graph?g0.expr=" + urllib.parse.quote_plus(expr) + f"&g0.tab={tab}"


# ---------------------------------------------------------------------------- text/template's builtins


def _basic_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if v is NO_VALUE or v is None:
        return "invalid"
    return "other"


def _cmp_check(a: Any, b: Any, ordered: bool) -> None:
    """Go compares only basic values of one kind: int with float64 is an error, not False."""
    ka, kb = _basic_kind(a), _basic_kind(b)
    if "invalid" in (ka, kb) or "other" in (ka, kb):
        raise TemplateError("invalid type for comparison")
    if ordered and "bool" in (ka, kb):
        raise TemplateError("invalid type for comparison")
    if ka != kb:
        raise TemplateError("incompatible types for comparison")


def _eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise TemplateError("missing argument for comparison")
    for b in bs:
        _cmp_check(a, b, False)
        if a == b:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    _cmp_check(a, b, False)
    return a != b


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        _cmp_check(a, b, True)
        return op(a, b)
    return compare


def _len(v: Any) -> int:
    if isinstance(v, (str, list, dict, tuple)):
        return len(v)
    raise TemplateError(f"len of type {go_type_name(v)}")


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k, "") if isinstance(k, str) else NO_VALUE
        elif isinstance(v, (list, tuple, str)) and isinstance(k, int) and not isinstance(k, bool):
            if not 0 <= k < len(v):
                raise TemplateError(f"error calling index: index out of range: {k}")
            v = v[k]
        else:
            raise TemplateError(f"error calling index: can't index item of type {go_type_name(v)}")
    return v


def _html(v: Any) -> str:
    return (go_sprint(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # Prometheus template.go
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage,
    "humanizeTimestamp": humanize_timestamp,
    "toTime": _to_time,
    "toDuration": lambda v: _to_float(v),
    "title": lambda s: _title(str(s)),
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "stripPort": _strip_port,
    "stripDomain": _strip_domain,
    "match": _match,
    "reReplaceAll": _re_replace_all,
    "first": _first,
    "label": _label,
    "value": _value,
    "sortByLabel": _sort_by_label,
    "urlQueryEscape": urllib.parse.quote_plus,
    "safeHtml": lambda s: str(s),
    "args": lambda *a: {f"arg{i}": v for i, v in enumerate(a)},
    "parseDuration": _parse_duration,
    "graphLink": lambda expr: _graph_link(expr, 0),
    "tableLink": lambda expr: _graph_link(expr, 1),
    # text/template builtins
    "printf": go_printf,
    "print": lambda *a: "".join(go_sprint(x) for x in a),
    "println": lambda *a: " ".join(go_sprint(x) for x in a) + "\n",
    "eq": _eq,
    "ne": _ne,
    # Go derives le, gt and ge from lt and eq, so with a NaN `gt` and `ge` are true.
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a < b or a == b),
    "gt": _ordered(lambda a, b: not (a < b or a == b)),
    "ge": _ordered(lambda a, b: not a < b),
    "len": _len,
    "index": _index,
    "not": lambda v: not truth(v),
    "html": _html,
    "urlquery": lambda *a: urllib.parse.quote_plus("".join(go_sprint(x) for x in a)),
    "js": lambda v: go_sprint(v).replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"'),
}

# Bound per expansion by the evaluator: they need the expansion's context (its query
# callback and times), or short-circuit over their arguments (`and`, `or`).
CONTEXT_FUNCTIONS = frozenset({"query", "externalURL", "pathPrefix", "now", "and", "or", "call"})

# Every name a template may call: the parser refuses the rest when the rule file is loaded.
KNOWN_FUNCTIONS = frozenset(FUNCTIONS) | CONTEXT_FUNCTIONS
