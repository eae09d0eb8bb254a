"""How Go and Prometheus print values, label sets and times, in one place.

Prometheus is written in Go: the text it shows (template output, label sets in
messages, `count_values` labels, timestamps in its API) follows Go's formatting rules,
not Python's. Rule files and tests written against Prometheus expect that text byte for
byte, so each rule is written down here once. Nothing of tocsin is imported: every
other module may use this one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

METRIC_NAME = "__name__"

# Go's zero `time.Time{}` in RFC 3339: what Prometheus and Alertmanager print for "never".
ZERO_TIME_RFC3339 = "0001-01-01T00:00:00Z"

# ---------------------------------------------------------------------------- floats


def _special(v: float) -> str | None:
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return None


def _shortest_digits(v: float) -> tuple[bool, str, int]:
    """Sign, shortest round-tripping digits and the decimal point's position (Go's
    `strconv` and Python's `repr` agree on the digits; only the layout differs)."""
    sign, digits, exponent = Decimal(repr(v)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    return bool(sign), ds, len(ds) + int(exponent)


def _exponent(exp: int) -> str:
    return f"{'-' if exp < 0 else '+'}{abs(exp):02d}"


def format_float(v: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64): how Go's `%v` and Prometheus print a float64.

    Shortest digits that round-trip; exponent form below 1e-4 and from 1e+06 on (Python's
    repr switches only at 1e+16), a two-digit exponent at least, `+Inf`, `NaN`, `-0`.
    """
    special = _special(v)
    if special is not None:
        return special
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    negative, ds, dp = _shortest_digits(v)
    neg = "-" if negative else ""
    exp = dp - 1
    if exp < -4 or exp >= 6:  # shortest %g switches to exponent form at 1e+06 (eprec 6), like Go
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{_exponent(exp)}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return f"{neg}{ds}{'0' * (dp - len(ds))}"
    return f"{neg}{ds[:dp]}.{ds[dp:]}"


def format_float_fixed(v: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64): never an exponent. Prometheus uses it for the
    label values `count_values` creates and for values in its messages."""
    special = _special(v)
    if special is not None:
        return special
    r = repr(v)
    if "e" in r or "E" in r:
        r = format(Decimal(r), "f")
    if "." in r:
        r = r.rstrip("0").rstrip(".")
    return r


def format_float_exponent(v: float) -> str:
    """strconv.FormatFloat(v, 'E', -1, 64), e.g. `1.5E+00`: how promtool lists samples."""
    special = _special(v)
    if special is not None:
        return special
    negative, ds, dp = _shortest_digits(v)
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{'-' if negative else ''}{mant}E{_exponent(dp - 1)}"


# ---------------------------------------------------------------------------- strings and label sets


def escape_label_value(value: str) -> str:
    """A label value inside double quotes: backslash, double quote and newline escaped,
    as the exposition format and Prometheus's label-set strings do."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def quote(text: str) -> str:
    """Go's `%q` of a string, as far as label values and templates need it.

    Escapes backslash, double quote and newline only; Go's strconv.Quote also escapes
    other control characters (`\\t`, `\\x00`...) and non-printable runes (`\\u....`).
    """
    return '"' + escape_label_value(text) + '"'


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def strconv_quote(text: str) -> str:
    """Go's strconv.Quote (and `%q`) in full: control characters as `\\t` or `\\x01`, runes Go
    does not print as `\\u00a0` / `\\U0001f600`. Go's printable set (letters, marks, numbers,
    punctuation, symbols, ASCII space) is Python's `isprintable()`."""
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ch < " " or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def go_label_set(labels: dict[str, str]) -> str:
    """`{a="b", c="d\\t"}`: prometheus/common's model.LabelSet.String(), which Alertmanager's
    group keys are made of: names sorted, values quoted with strconv.Quote."""
    return "{" + ", ".join(f"{name}={strconv_quote(labels[name])}" for name in sorted(labels)) + "}"


def format_label_set(pairs: Iterable[tuple[str, str]], separator: str = ", ") -> str:
    """`{a="b", c="d"}`: Prometheus's labels.Labels.String() of already sorted pairs, the
    metric name being an ordinary label. `separator=","` gives Alertmanager's compact form."""
    return "{" + separator.join(f'{name}="{escape_label_value(value)}"' for name, value in pairs) + "}"


def format_metric(pairs: Iterable[tuple[str, str]]) -> str:
    """`name{a="b", c="d"}`, or just `name` without other labels: how Prometheus prints a
    series in messages (model.Metric.String()); `{}` for the empty set."""
    name = ""
    inner: list[str] = []
    for label, value in pairs:
        if label == METRIC_NAME:
            name = value
        else:
            inner.append(f'{label}="{escape_label_value(value)}"')
    if name and not inner:
        return name
    return name + "{" + ", ".join(inner) + "}"


# ---------------------------------------------------------------------------- times


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def rfc3339_millis(t: datetime | None) -> str:
    """Alertmanager's API time (go-openapi strfmt.DateTime): always three fraction digits,
    in UTC with `Z`; a naive time is taken as UTC; `None` is the zero time."""
    if t is None:
        return ZERO_TIME_RFC3339
    return _utc(t).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_nano(t: datetime | None) -> str:
    """Go's time.RFC3339Nano, as `time.Time` marshals to JSON (Prometheus's API): the
    fraction without trailing zeros, none at all on a whole second; UTC with `Z`."""
    if t is None:
        return ZERO_TIME_RFC3339
    text = _utc(t).replace(tzinfo=None).isoformat()
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "Z"


def time_string(t: datetime) -> str:
    """time.Time.String() of a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`."""
    t = _utc(t)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            f"{'.' + frac if frac else ''} +0000 UTC")


# ---------------------------------------------------------------------------- regexp.Expand

def expand(template: str, match: Any) -> str:
    """Go's Regexp.Expand of `template` for `match` (an `re`/`re2` match object): `$1`,
    `${1}`, `$name`, `${name}`, `$$`. A `$name` takes the longest run of letters, digits
    and `_` (`$1x` is the group named `1x`); an unknown or unmatched group expands to
    nothing; a malformed `$` stays as it is. Everything else is literal, backslashes too."""
    out: list[str] = []
    i = 0
    n = len(template)
    groups = match.re.groups
    names = match.re.groupindex
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j
        if i + 1 < n and template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        j = i + 1
        brace = j < n and template[j] == "{"
        if brace:
            j += 1
        k = j
        while k < n and (template[k].isalnum() or template[k] == "_"):  # what Go's extract() accepts
            k += 1
        name = template[j:k]
        if not name or (brace and (k >= n or template[k] != "}")):
            out.append("$")
            i += 1
            continue
        i = k + 1 if brace else k
        if name.isdigit() and name.isascii():
            index: int | None = int(name) if int(name) <= groups else None
        else:
            index = names.get(name)
        if index is not None:
            value = match.group(index)
            if value is not None:
                out.append(value)
    return "".join(out)


__all__ = [
    "ZERO_TIME_RFC3339",
    "escape_label_value",
    "expand",
    "format_float",
    "format_float_exponent",
    "format_float_fixed",
    "format_label_set",
    "format_metric",
    "go_label_set",
    "quote",
    "rfc3339_millis",
    "rfc3339_nano",
    "strconv_quote",
    "time_string",
]
