"""Reader for Prometheus' PromQL test files (`promql/testdata/*.test`, v2.42 format)
and for the expanding series notation they share with promtool's `input_series`.

Expanding notation, one item per whitespace-separated word:
  `7`          one value               `_`      one missing sample
  `1+2x3`      1 3 5 7 (N+1 values)    `_x3`    three missing samples
  `1-2x3`      1 -1 -3 -5              `4x2`    4 4 4 (same as 4+0x2)
  `stale`      a staleness marker      `Inf`, `-Inf`, `NaN` as numbers
Increments accumulate by repeated addition, as Prometheus does, so float results
match its own rounding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

from .errors import TestFileError
from .labels import METRIC_NAME, Labels, from_pairs
from .values import STALE_NAN

_NUM = r"(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF]|[nN][aA][nN])"
_ITEM_RE = re.compile(rf"(?P<a>[+-]?{_NUM})(?:(?P<b>[+-]{_NUM})?x(?P<n>[0-9]+))?\Z")
_BLANK_RE = re.compile(r"_(?:x(?P<n>[0-9]+))?\Z")
_DURATION_RE = re.compile(
    r"(?:(?P<y>[0-9]+)y)?(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?"
    r"(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?\Z"
)
_DURATION_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_EVAL_RE = re.compile(r"^eval(?:_(fail|ordered))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_LOAD_RE = re.compile(r"^load\s+(.+?)$")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"'}


def parse_duration(text: str) -> int:
    """Prometheus duration (`1h30m`, `90s`, `5m`, `0`) in milliseconds."""
    text = text.strip()
    if text == "0":
        return 0
    m = _DURATION_RE.match(text)
    if not text or m is None or not any(m.groupdict().values()):
        raise TestFileError(f"invalid duration {text!r}")
    return sum(int(v) * _DURATION_MS[k] for k, v in m.groupdict().items() if v)


def _number(text: str) -> float:
    low = text.lower()
    if low.lstrip("+-") == "nan":
        return float("nan")
    return float(text)


def parse_series_values(text: str) -> list[float | None]:
    """Expand a values string; None stands for a missing sample at that step."""
    out: list[float | None] = []
    for item in text.split():
        if item == "stale":
            out.append(STALE_NAN)
            continue
        m = _BLANK_RE.match(item)
        if m is not None:
            out.extend([None] * (int(m["n"]) if m["n"] is not None else 1))
            continue
        m = _ITEM_RE.match(item)
        if m is None:
            raise TestFileError(f"invalid series value {item!r}")
        a = _number(m["a"])
        if m["n"] is None:
            out.append(a)
            continue
        n = int(m["n"])
        b = _number(m["b"]) if m["b"] is not None else 0.0
        out.append(a)
        for _ in range(n):
            a += b
            out.append(a)
    return out


def _unquote(text: str, i: int) -> tuple[str, int]:
    quote = text[i]
    if quote == "`":
        j = text.find("`", i + 1)
        if j < 0:
            raise TestFileError(f"unterminated string in {text!r}")
        return text[i + 1 : j], j + 1
    if quote not in "\"'":
        raise TestFileError(f"expected a quoted string at {text[i:]!r}")
    buf: list[str] = []
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == quote:
            return "".join(buf), j + 1
        if c == "\\":
            j += 1
            if j >= len(text):
                break
            e = text[j]
            if e in _ESCAPES:
                buf.append(_ESCAPES[e])
                j += 1
            elif e in "xuU":
                width = {"x": 2, "u": 4, "U": 8}[e]
                buf.append(chr(int(text[j + 1 : j + 1 + width], 16)))
                j += 1 + width
            elif e in "01234567":
                buf.append(chr(int(text[j : j + 3], 8)))
                j += 3
            else:
                raise TestFileError(f"unknown escape \\{e} in {text!r}")
            continue
        buf.append(c)
        j += 1
    raise TestFileError(f"unterminated string in {text!r}")


def parse_metric(text: str) -> tuple[Labels, str]:
    """Parse `name{l="v",...}` (name or braces optional); returns labels and the rest."""
    s = text.strip()
    pairs: list[tuple[str, str]] = []
    i = 0
    m = _METRIC_NAME_RE.match(s)
    if m is not None:
        pairs.append((METRIC_NAME, m.group()))
        i = m.end()
    braces = i < len(s) and s[i] == "{"
    if braces:
        i += 1
        while True:
            while i < len(s) and s[i] in " \t,":
                i += 1
            if i < len(s) and s[i] == "}":
                i += 1
                break
            lm = _LABEL_NAME_RE.match(s, i)
            if lm is None:
                raise TestFileError(f"invalid label name in {text!r}")
            i = lm.end()
            while i < len(s) and s[i] in " \t":
                i += 1
            if i >= len(s) or s[i] != "=":
                raise TestFileError(f"expected '=' after label name in {text!r}")
            i += 1
            while i < len(s) and s[i] in " \t":
                i += 1
            value, i = _unquote(s, i)
            pairs.append((lm.group(), value))
    if not pairs and not braces:
        raise TestFileError(f"no metric in {text!r}")
    return from_pairs(pairs), s[i:]


def parse_series_line(text: str) -> tuple[Labels, list[float | None]]:
    """`metric{labels} <expanding values>` as in a `load` block or promtool input_series."""
    labels, rest = parse_metric(text)
    return labels, parse_series_values(rest)


@dataclass
class LoadCommand:
    interval_ms: int
    line: int
    series: list[tuple[Labels, list[float | None]]] = field(default_factory=list)

    def samples(self) -> Iterator[tuple[Labels, int, float]]:
        for labels, values in self.series:
            for i, v in enumerate(values):
                if v is not None:
                    yield labels, i * self.interval_ms, v


@dataclass
class Expected:
    labels: Labels | None  # None: the result is a scalar
    value: float


@dataclass
class EvalCommand:
    expr: str
    at_ms: int
    line: int
    fail: bool = False
    ordered: bool = False
    expected: list[Expected] = field(default_factory=list)


@dataclass
class ClearCommand:
    line: int


Command = Union[LoadCommand, EvalCommand, ClearCommand]


def _parse_number_line(text: str) -> float | None:
    try:
        return float(int(text, 0))
    except ValueError:
        pass
    try:
        return _number(text)
    except ValueError:
        return None


def parse_test_file(text: str) -> list[Command]:
    """Commands of a `.test` file; `line` is the 1-based line of each command."""
    lines = []
    for raw in text.split("\n"):
        s = raw.strip()
        lines.append("" if s.startswith("#") else s)
    cmds: list[Command] = []
    i = 0
    while i < len(lines):
        s = lines[i]
        if not s:
            i += 1
            continue
        word = s.split(None, 1)[0].lower()
        if word == "clear":
            cmds.append(ClearCommand(i + 1))
            i += 1
        elif word == "load":
            m = _LOAD_RE.match(s)
            if m is None:
                raise TestFileError(f"line {i + 1}: invalid load command")
            load = LoadCommand(parse_duration(m[1]), i + 1)
            i += 1
            while i < len(lines) and lines[i]:
                try:
                    load.series.append(parse_series_line(lines[i]))
                except TestFileError as exc:
                    raise TestFileError(f"line {i + 1}: {exc.message}") from None
                i += 1
            cmds.append(load)
        elif word.startswith("eval"):
            m = _EVAL_RE.match(s)
            if m is None:
                raise TestFileError(f"line {i + 1}: invalid eval command")
            ev = EvalCommand(m[3], parse_duration(m[2] or "0"), i + 1, fail=m[1] == "fail", ordered=m[1] == "ordered")
            i += 1
            while i < len(lines) and lines[i]:
                num = _parse_number_line(lines[i])
                if num is not None:
                    ev.expected.append(Expected(None, num))
                    i += 1
                    break
                try:
                    labels, values = parse_series_line(lines[i])
                except TestFileError as exc:
                    raise TestFileError(f"line {i + 1}: {exc.message}") from None
                if len(values) != 1 or values[0] is None:
                    raise TestFileError(f"line {i + 1}: expected exactly one value")
                ev.expected.append(Expected(labels, values[0]))
                i += 1
            cmds.append(ev)
        else:
            raise TestFileError(f"line {i + 1}: invalid command {s!r}")
    return cmds
