"""A safe subset of Go's text/template, as Prometheus uses it in alert labels and annotations.

Rule files written for Prometheus carry templates such as
`{{ $labels.target }} is down ({{ $value | humanize }})`; tocsin must expand them to the
same text. This is a small interpreter of that syntax (actions, pipelines, variables,
`if`/`else if`/`else`/`range`/`with`/`end`, trim markers, comments) over plain data, with
a fixed function table. It never evaluates Python code, never reaches attributes other
than map keys and the few documented fields, and parse errors (syntax, unknown function)
surface when the rule file is loaded, as they do in Prometheus.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable

import re2

__all__ = ["Template", "TemplateError", "expand", "go_sprint", "go_float", "parse_template", "alert_template_data"]


class TemplateError(Exception):
    """A template cannot be parsed or executed; the message mimics Go's."""


# ---------------------------------------------------------------------------- values


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key yields; prints as <no value>."""

    _instance: "_NoValue | None" = None

    def __new__(cls) -> "_NoValue":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class QuerySample:
    """An element of `query`'s result: `.Labels` and `.Value`, like Prometheus's sample type."""

    Labels: dict[str, str]
    Value: float


def _go_exp(exp: int) -> str:
    return f"{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_float(v: float, fmt: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64): what fmt prints for a float64 with %v."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    sign, digits, exponent = Decimal(repr(v)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    dp = len(ds) + int(exponent)  # position of the decimal point
    exp = dp - 1
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:  # shortest %g switches to exponent form at 1e+06 (eprec 6), like Go
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{_go_exp(exp)}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return f"{neg}{ds}{'0' * (dp - len(ds))}"
    return f"{neg}{ds[:dp]}.{ds[dp:]}"


def _go_special(v: float, plus: bool = False) -> str | None:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return None


def go_sprint(value: Any) -> str:
    """fmt.Sprint of a template value."""
    if value is NO_VALUE or value is None:
        return "<no value>" if value is NO_VALUE else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_sprint(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    if isinstance(value, QuerySample):
        return "{" + go_sprint(value.Labels) + " " + go_sprint(value.Value) + "}"
    if isinstance(value, datetime):
        return _go_time(value)
    return str(value)


def _go_time(t: datetime) -> str:
    """time.Time.String() for a UTC time: 2006-01-02 15:04:05.999999999 +0000 UTC."""
    base = t.strftime("%Y-%m-%d %H:%M:%S")
    frac = f"{t.microsecond:06d}".rstrip("0")
    return f"{base}{'.' + frac if frac else ''} +0000 UTC"


_VERB_RE = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])")


def go_printf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs templates use (%s %v %d %f %e %g %q %x %t %%)."""
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB_RE.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if width == "*":
            width = str(args[argi]) if argi < len(args) else ""
            argi += 1
        if prec == "*":
            prec = str(args[argi]) if argi < len(args) else ""
            argi += 1
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_format_one(flags, width, prec, verb, arg))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{_go_type(a)}={go_sprint(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]string"
    return "interface {}"


def _pad(text: str, flags: str, width: str | None) -> str:
    if not width:
        return text
    w = int(width)
    if "-" in flags:
        return text.ljust(w)
    return text.rjust(w)


def _format_one(flags: str, width: str | None, prec: str | None, verb: str, arg: Any) -> str:
    spec_flags = "".join(f for f in flags if f in "-+# 0")
    py_prec = f".{prec}" if prec is not None else ""
    bad = f"%!{verb}({_go_type(arg)}={go_sprint(arg)})"
    if verb in "sv" and not isinstance(arg, (float, int)) or verb == "s" and isinstance(arg, bool):
        text = go_sprint(arg)
        if verb == "s" and prec is not None:
            text = text[: int(prec)]
        return _pad(text, flags, width)
    if verb == "v":
        if isinstance(arg, float) and prec is None:
            text = go_float(arg)
            if "+" in flags and not text.startswith(("-", "+")):
                text = "+" + text
            return _pad(text, flags, width)
        verb = "g" if isinstance(arg, float) else "d"
    if verb == "t":
        return _pad(go_sprint(arg), flags, width) if isinstance(arg, bool) else bad
    if verb == "q":
        if isinstance(arg, str):
            return _pad('"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"', flags, width)
        return bad
    if verb in "dxXob":
        if isinstance(arg, bool) or not isinstance(arg, int):
            if verb in "xX" and isinstance(arg, str):
                text = arg.encode().hex()
                return _pad(text.upper() if verb == "X" else text, flags, width)
            return bad
        return ("%" + spec_flags + (width or "") + py_prec + verb) % arg
    if verb in "feEgG":
        if isinstance(arg, bool) or not isinstance(arg, (float, int)) or isinstance(arg, int) and not isinstance(arg, float):
            if not isinstance(arg, float):
                return bad
        special = _go_special(arg)
        if special is not None:
            if special == "+Inf" and "+" not in flags:
                special = "+Inf"
            return _pad(special, flags.replace("0", ""), width)
        return ("%" + spec_flags + (width or "") + py_prec + verb) % arg
    return f"%!{verb}({_go_type(arg)}={go_sprint(arg)})"


# ---------------------------------------------------------------------------- functions (template.go)


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
    special = _go_special(v)
    return special if special is not None else "%.4g" % v


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
        whole = int(v)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
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


def humanize_timestamp(value: Any) -> str:
    v = _to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return _go_time(datetime.fromtimestamp(v, timezone.utc))


def _to_time(value: Any) -> datetime:
    v = _to_float(value)
    if math.isnan(v) or math.isinf(v):
        raise TemplateError("value is NaN or Inf")
    return datetime.fromtimestamp(v, timezone.utc)


def _title(s: str) -> str:
    """strings.Title: upper-case the first letter of each word."""
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), str(s))


def _go_replacement(repl: str) -> str:
    """Go's Regexp.Expand template ($1, ${1}, $name, $$) to RE2's \\1 form."""
    out: list[str] = []
    i = 0
    while i < len(repl):
        c = repl[i]
        if c == "$" and i + 1 < len(repl):
            if repl[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            m = re.match(r"\{(\w+)\}|(\w+)", repl[i + 1:])
            if m:
                name = m.group(1) or m.group(2)
                out.append(f"\\g<{name}>" if not name.isdigit() else f"\\g<{int(name)}>")
                i += 1 + m.end()
                continue
        out.append("\\\\" if c == "\\" else c)
        i += 1
    return "".join(out)


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    try:
        rx = re2.compile(pattern)
    except Exception as exc:  # noqa: BLE001 - re2.error
        raise TemplateError(f"error parsing regexp: {exc}") from None
    go_repl = _go_replacement(repl)
    names = set(rx.groupindex) | {str(i) for i in range(rx.groups + 1)}

    def sub(m: Any) -> str:
        def group(g: re.Match[str]) -> str:
            key = g.group(1)
            if key not in names:
                return ""
            val = m.group(int(key)) if key.isdigit() else m.group(key)
            return val or ""
        return re.sub(r"\\g<(\w+)>", group, go_repl).replace("\\\\", "\\")

    return rx.sub(sub, text)


def _match(pattern: str, text: str) -> bool:
    try:
        return re2.search(pattern, text) is not None
    except Exception as exc:  # noqa: BLE001
        raise TemplateError(f"error parsing regexp: {exc}") from None


def _strip_port(hostport: str) -> str:
    if hostport.startswith("["):
        end = hostport.find("]")
        return hostport[1:end] if end > 0 else hostport
    host, sep, port = hostport.rpartition(":")
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


def _parse_duration_fn(text: str) -> float:
    from .units import parse_duration

    try:
        return float(parse_duration(text))
    except ValueError as exc:
        raise TemplateError(str(exc)) from None


# Comparison and logic builtins of text/template itself.


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
    ka, kb = _basic_kind(a), _basic_kind(b)
    if "invalid" in (ka, kb):
        raise TemplateError("invalid type for comparison")
    if ka == "other" or kb == "other":
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
    raise TemplateError(f"len of type {_go_type(v)}")


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k, "") if isinstance(k, str) else NO_VALUE
        elif isinstance(v, (list, tuple, str)) and isinstance(k, int) and not isinstance(k, bool):
            if not 0 <= k < len(v):
                raise TemplateError(f"error calling index: index out of range: {k}")
            v = v[k]
        else:
            raise TemplateError(f"error calling index: can't index item of type {_go_type(v)}")
    return v


def truth(v: Any) -> bool:
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, dict, tuple)):
        return bool(v)
    return True


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
    "parseDuration": _parse_duration_fn,
    "graphLink": lambda expr: "/graph?g0.expr=" + urllib.parse.quote_plus(expr) + "&g0.tab=0",
    "tableLink": lambda expr: "/graph?g0.expr=" + urllib.parse.quote_plus(expr) + "&g0.tab=1",
    # text/template builtins
    "printf": go_printf,
    "print": lambda *a: "".join(go_sprint(x) for x in a),
    "println": lambda *a: " ".join(go_sprint(x) for x in a) + "\n",
    "eq": _eq,
    "ne": _ne,
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b),
    "ge": _ordered(lambda a, b: a >= b),
    "len": _len,
    "index": _index,
    "not": lambda v: not truth(v),
    "html": lambda v: str(go_sprint(v)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    .replace('"', "&#34;").replace("'", "&#39;"),
    "urlquery": lambda *a: urllib.parse.quote_plus("".join(go_sprint(x) for x in a)),
    "js": lambda v: go_sprint(v).replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"'),
}
# Filled in per expansion (they need the expansion's context).
_CONTEXT_FUNCTIONS = ("query", "externalURL", "pathPrefix", "now", "and", "or", "call")


# ---------------------------------------------------------------------------- lexer & parser


@dataclass
class _Text:
    text: str


@dataclass
class _Pipeline:
    decl: list[str]  # variables declared (:=) or assigned (=)
    assign: bool
    cmds: list[list[Any]]  # each command: a list of operand nodes


@dataclass
class _Action:
    pipe: _Pipeline


@dataclass
class _If:
    kind: str  # "if", "with", "range"
    pipe: _Pipeline
    body: list[Any]
    else_body: list[Any] = field(default_factory=list)


# operand nodes
@dataclass
class _Field:  # .A.B or $x.A.B or (pipe).A
    base: Any  # "." for dot, "$name" for a variable, or a node
    path: list[str]


@dataclass
class _Lit:
    value: Any


@dataclass
class _Func:
    name: str


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)+')
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9_]+)(?:[eE][+-]?[0-9]+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

_GO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
               "v": "\v"}


def _unquote(s: str) -> str:
    out: list[str] = []
    i = 0
    body = s[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n in _GO_ESCAPES:
                out.append(_GO_ESCAPES[n])
                i += 2
                continue
            if n in "xuU":
                size = {"x": 2, "u": 4, "U": 8}[n]
                out.append(chr(int(body[i + 2:i + 2 + size], 16)))
                i += 2 + size
                continue
            raise TemplateError(f"invalid syntax in string {s}")
        out.append(c)
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, name: str, text: str, functions: set[str]) -> None:
        self.name = name
        self.text = text
        self.functions = functions
        self.line = 1
        self.vars: list[set[str]] = [{"$"}]

    def error(self, msg: str) -> TemplateError:
        return TemplateError(f"template: {self.name}:{self.line}: {msg}")

    # Split into text and action chunks, honouring trim markers and comments.
    def chunks(self) -> list[tuple[str, str, int]]:
        out: list[tuple[str, str, int]] = []
        text, pos, line = self.text, 0, 1
        while True:
            start = text.find("{{", pos)
            if start < 0:
                out.append(("text", text[pos:], line))
                break
            chunk = text[pos:start]
            trim_left = text.startswith("{{- ", start) or text.startswith("{{-\t", start) or text.startswith("{{-\n", start)
            if trim_left:
                chunk = chunk.rstrip(" \t\r\n")
            out.append(("text", chunk, line))
            line += text.count("\n", pos, start)
            inner_start = start + (3 if trim_left else 2)
            if text.startswith("/*", inner_start) or text.startswith(" /*", inner_start - 1) and trim_left:
                end_comment = text.find("*/", inner_start)
                if end_comment < 0:
                    self.line = line
                    raise self.error("unclosed comment")
                end = text.find("}}", end_comment)
            else:
                end = self._find_close(inner_start)
            if end < 0:
                self.line = line
                raise self.error("unclosed action")
            trim_right = text[end - 1] == "-" and text[end - 2] in " \t\r\n"
            inner = text[inner_start:end - 1 if trim_right else end]
            out.append(("action", inner, line))
            line += text.count("\n", start, end)
            pos = end + 2
            if trim_right:
                while pos < len(text) and text[pos] in " \t\r\n":
                    pos += 1
        return out

    def _find_close(self, pos: int) -> int:
        """The `}}` ending an action, skipping over quoted strings."""
        text = self.text
        i = pos
        while i < len(text):
            c = text[i]
            if c in "\"'`":
                j = i + 1
                while j < len(text) and text[j] != c:
                    if text[j] == "\\" and c != "`":
                        j += 1
                    if text[j] == "\n" and c != "`":
                        self.line += 0
                    j += 1
                i = j + 1
                continue
            if text.startswith("}}", i):
                return i
            i += 1
        return -1

    def parse(self) -> list[Any]:
        self._items = self.chunks()
        self._i = 0
        body, end = self._list()
        if end is not None:
            raise self.error(f"unexpected {{{{{end}}}}}")
        return body

    def _list(self) -> tuple[list[Any], str | None]:
        body: list[Any] = []
        while self._i < len(self._items):
            kind, text, line = self._items[self._i]
            self._i += 1
            self.line = line
            if kind == "text":
                if text:
                    body.append(_Text(text))
                continue
            stripped = text.strip()
            if stripped.startswith("/*"):
                continue
            word = stripped.split(None, 1)[0] if stripped else ""
            if word in ("end",):
                if stripped != "end":
                    raise self.error(f"unexpected {stripped[3:].strip()} in end")
                return body, "end"
            if word == "else":
                return body, stripped
            if word in ("if", "with", "range"):
                body.append(self._control(word, stripped[len(word):]))
                continue
            if word in ("define", "template", "block", "break", "continue"):
                raise self.error(f"{word} is not supported by tocsin's template subset")
            if not stripped:
                raise self.error("missing value for command")
            body.append(_Action(self._pipeline(stripped)))
        return body, None

    def _control(self, kind: str, rest: str) -> _If:
        self.vars.append(set())
        pipe = self._pipeline(rest.strip(), context=kind)
        body, end = self._list()
        node = _If(kind, pipe, body)
        self.vars.pop()
        if end is None:
            raise self.error(f"unexpected EOF")
        if end.startswith("else"):
            tail = end[4:].strip()
            if tail.startswith("if") and kind == "if" or tail.startswith("with") and kind == "with":
                word = tail.split(None, 1)[0]
                # `else if X` is `else` + a nested `if` sharing this node's `end`.
                node.else_body = [self._control(word, tail[len(word):])]
            elif tail:
                raise self.error(f"unexpected {tail} in else")
            else:
                self.vars.append(set())
                node.else_body, end2 = self._list()
                self.vars.pop()
                if end2 != "end":
                    raise self.error("expected end; found " + (end2 or "EOF"))
        return node

    # -------- pipelines
    def _tokens(self, text: str) -> list[tuple[str, str]]:
        toks: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                raise self.error(f"unexpected {text[pos]!r} in command")
            pos = m.end()
            kind = m.lastgroup or ""
            if kind != "ws":
                toks.append((kind, m.group()))
        return toks

    def _pipeline(self, text: str, context: str = "command") -> _Pipeline:
        toks = self._tokens(text)
        if not toks:
            raise self.error(f"missing value for {context}")
        decl: list[str] = []
        assign = False
        if len(toks) >= 2 and toks[0][0] == "var":
            # $x := pipeline, $x = pipeline, or range $i, $e := pipeline
            if toks[1][0] in ("decl", "assign"):
                decl = [toks[0][1]]
                assign = toks[1][0] == "assign"
                toks = toks[2:]
            elif toks[1][0] == "comma" and len(toks) >= 4 and toks[2][0] == "var" and toks[3][0] == "decl":
                decl = [toks[0][1], toks[2][1]]
                toks = toks[4:]
        self._toks = toks
        self._pos = 0
        pipe = self._parse_pipe(decl, assign)
        if self._pos != len(self._toks):
            raise self.error(f"unexpected {self._toks[self._pos][1]!r} in {context}")
        for name in decl:
            if assign:
                if not any(name in scope for scope in self.vars):
                    raise self.error(f'undefined variable "{name}"')
            else:
                self.vars[-1].add(name)
        return pipe

    def _parse_pipe(self, decl: list[str], assign: bool) -> _Pipeline:
        cmds: list[list[Any]] = []
        while True:
            cmd: list[Any] = []
            while self._pos < len(self._toks) and self._toks[self._pos][0] not in ("pipe", "rp"):
                cmd.append(self._operand())
            if not cmd:
                raise self.error("missing command")
            if len(cmd) > 1 and not isinstance(cmd[0], (_Func, _Field)):
                raise self.error(f"can't give argument to non-function {self._describe(cmd[0])}")
            cmds.append(cmd)
            if self._pos < len(self._toks) and self._toks[self._pos][0] == "pipe":
                self._pos += 1
                continue
            break
        return _Pipeline(decl, assign, cmds)

    @staticmethod
    def _describe(node: Any) -> str:
        if isinstance(node, _Lit):
            return go_sprint(node.value) if not isinstance(node.value, str) else f'"{node.value}"'
        return "operand"

    def _operand(self) -> Any:
        kind, text = self._toks[self._pos]
        self._pos += 1
        node: Any
        if kind == "lp":
            inner = self._parse_pipe([], False)
            if self._pos >= len(self._toks) or self._toks[self._pos][0] != "rp":
                raise self.error("unclosed left paren")
            self._pos += 1
            node = inner
        elif kind == "str" or kind == "raw":
            node = _Lit(_unquote(text) if kind == "str" else text[1:-1])
        elif kind == "char":
            node = _Lit(ord(_unquote('"' + text[1:-1] + '"')))
        elif kind == "num":
            node = _Lit(self._number(text))
        elif kind == "var":
            if not any(text in scope for scope in self.vars):
                raise self.error(f'undefined variable "{text}"')
            node = _Field(text, [])
        elif kind == "field":
            return _Field(".", text[1:].split("."))
        elif kind == "dot":
            node = _Field(".", [])
        elif kind == "ident":
            if text in ("true", "false"):
                node = _Lit(text == "true")
            elif text == "nil":
                raise self.error("nil is not a command")
            elif text in self.functions:
                return _Func(text)
            else:
                raise self.error(f'function "{text}" not defined')
        else:
            raise self.error(f"unexpected {text!r} in operand")
        # trailing field access: $x.a.b or (pipe).a
        if self._pos < len(self._toks) and self._toks[self._pos][0] == "field":
            path = self._toks[self._pos][1][1:].split(".")
            self._pos += 1
            if isinstance(node, _Field) and node.base != ".":
                node = _Field(node.base, node.path + path)
            else:
                node = _Field(node, path)
        return node

    def _number(self, text: str) -> int | float:
        t = text.replace("_", "")
        try:
            if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", t):
                return int(t, 16)
            if re.fullmatch(r"[+-]?[0-9]+", t):
                return int(t, 8) if len(t.lstrip("+-")) > 1 and t.lstrip("+-").startswith("0") else int(t)
            return float(t)
        except ValueError:
            raise self.error(f"illegal number syntax: {text!r}") from None


# ---------------------------------------------------------------------------- execution


class _Exec:
    def __init__(self, name: str, data: Any, funcs: dict[str, Callable[..., Any]]) -> None:
        self.name = name
        self.funcs = funcs
        self.scopes: list[dict[str, Any]] = [{"$": data}]
        self.out: list[str] = []
        self.steps = 0

    def error(self, msg: str) -> TemplateError:
        return TemplateError(f"template: {self.name}: {msg}")

    def run(self, nodes: list[Any], dot: Any) -> None:
        for node in nodes:
            self.steps += 1
            if self.steps > 100_000:
                raise self.error("template too expensive")
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    self.out.append(go_sprint(value))
            else:
                self.control(node, dot)
            if self.out and len(self.out[-1]) > 1_000_000:
                raise self.error("template output too large")

    def control(self, node: _If, dot: Any) -> None:
        self.scopes.append({})
        try:
            if node.kind == "range":
                value = self.pipe(node.pipe, dot, declare=False)
                items: list[tuple[Any, Any]]
                if isinstance(value, dict):
                    items = sorted(value.items())
                elif isinstance(value, (list, tuple)):
                    items = list(enumerate(value))
                elif isinstance(value, int) and not isinstance(value, bool):
                    items = [(i, i) for i in range(value)]
                elif value is NO_VALUE or value is None:
                    items = []
                else:
                    raise self.error(f"range can't iterate over {go_sprint(value)}")
                if not items:
                    self.run(node.else_body, dot)
                for key, elem in items:
                    if len(node.pipe.decl) == 1:
                        self.scopes[-1][node.pipe.decl[0]] = elem
                    elif len(node.pipe.decl) == 2:
                        self.scopes[-1][node.pipe.decl[0]] = key
                        self.scopes[-1][node.pipe.decl[1]] = elem
                    self.run(node.body, elem)
                return
            value = self.pipe(node.pipe, dot)
            if truth(value):
                self.run(node.body, value if node.kind == "with" else dot)
            else:
                self.run(node.else_body, dot)
        finally:
            self.scopes.pop()

    def lookup(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise self.error(f"undefined variable: {name}")

    def pipe(self, pipe: _Pipeline, dot: Any, declare: bool = True) -> Any:
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value)
        if declare and pipe.decl:
            if pipe.assign:
                for scope in reversed(self.scopes):
                    if pipe.decl[0] in scope:
                        scope[pipe.decl[0]] = value
                        break
            else:
                self.scopes[-1][pipe.decl[0]] = value
        return value

    def command(self, cmd: list[Any], dot: Any, piped: Any) -> Any:
        head = cmd[0]
        if isinstance(head, _Func):
            args = [self.arg(a, dot) for a in cmd[1:]]
            if piped is not _MISSING:
                args.append(piped)
            return self.call(head.name, args, dot, cmd[1:])
        if piped is not _MISSING or len(cmd) > 1:
            if isinstance(head, _Field) and head.path:
                raise self.error(f"{head.path[-1]} is not a method but has arguments")
            raise self.error("can't give argument to non-function")
        return self.arg(head, dot)

    def call(self, name: str, args: list[Any], dot: Any, raw: list[Any]) -> Any:
        if name in ("and", "or"):
            if not args:
                raise self.error(f"wrong number of args for {name}: want at least 1 got 0")
            for a in args:
                if truth(a) != (name == "and"):
                    return a
            return args[-1]
        fn = self.funcs.get(name)  # the context's functions first, then the fixed table
        if fn is None:
            fn = FUNCTIONS[name]
        try:
            return fn(*args)
        except TemplateError as exc:
            raise self.error(f"error calling {name}: {exc}") from None
        except TypeError:
            raise self.error(f"wrong number of args for {name}: got {len(args)}") from None
        except (ValueError, ArithmeticError, AttributeError, IndexError, KeyError) as exc:
            raise self.error(f"error calling {name}: {exc}") from None

    def arg(self, node: Any, dot: Any) -> Any:
        if isinstance(node, _Lit):
            return node.value
        if isinstance(node, _Pipeline):
            return self.pipe(node, dot)
        if isinstance(node, _Func):
            return self.call(node.name, [], dot, [])
        if isinstance(node, _Field):
            if node.base == ".":
                value = dot
            elif isinstance(node.base, str):
                value = self.lookup(node.base)
            else:
                value = self.arg(node.base, dot)
            for name in node.path:
                value = self.field(value, name)
            return value
        raise self.error("bad node")

    def field(self, value: Any, name: str) -> Any:
        if isinstance(value, dict):
            # Prometheus's maps are map[string]string: a missing key reads as "" (checked
            # against promtool 2.42), not text/template's "<no value>".
            return value.get(name, "")
        if isinstance(value, (QuerySample, TemplateData)) and name in type(value).__dataclass_fields__:
            return getattr(value, name)
        if value is NO_VALUE or value is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        raise self.error(f"can't evaluate field {name} in type {_go_type(value)}")


_MISSING = object()


@dataclass(frozen=True)
class TemplateData:
    """What `.` is in an alert template (Prometheus's AlertTemplateData)."""

    Labels: dict[str, str]
    ExternalLabels: dict[str, str]
    ExternalURL: str
    Value: float


# What Prometheus prepends to each alert template, so `$labels` etc. exist.
ALERT_DEFS = ("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
              "{{$externalURL := .ExternalURL}}{{$value := .Value}}")


class Template:
    """A parsed template; `execute(data)` is pure apart from the `query` callback."""

    def __init__(self, text: str, name: str = "template", alert: bool = True) -> None:
        self.text = text
        self.name = name
        self.alert = alert
        source = (ALERT_DEFS + text) if alert else text
        self._nodes = _Parser(name, source, set(FUNCTIONS) | set(_CONTEXT_FUNCTIONS)).parse()

    def execute(self, data: TemplateData | Any, *, query: Callable[[str], list[QuerySample]] | None = None,
                now: float | None = None, external_url: str = "") -> str:
        funcs: dict[str, Callable[..., Any]] = {}

        def _query(q: str) -> list[QuerySample]:
            if query is None:
                raise TemplateError("query is not available here")
            return query(q)

        funcs["query"] = _query
        funcs["externalURL"] = lambda: external_url
        funcs["pathPrefix"] = lambda: urllib.parse.urlsplit(external_url).path
        funcs["now"] = lambda: float(now if now is not None else datetime.now(timezone.utc).timestamp())
        funcs["call"] = lambda *a: (_ for _ in ()).throw(TemplateError("call is not supported"))
        ex = _Exec(self.name, data, funcs)
        ex.run(self._nodes, data)
        return "".join(ex.out)


def parse_template(text: str, name: str = "template", alert: bool = True) -> Template:
    return Template(text, name, alert)


def alert_template_data(labels: dict[str, str], external_labels: dict[str, str], external_url: str,
                        value: float) -> TemplateData:
    return TemplateData(dict(labels), dict(external_labels), external_url, value)


def expand(text: str, labels: dict[str, str], value: float, external_labels: dict[str, str] | None = None,
           external_url: str = "", name: str = "template") -> str:
    """One-shot expansion (parses every call: use Template for repeated work)."""
    return Template(text, name).execute(alert_template_data(labels, external_labels or {}, external_url, value),
                                        external_url=external_url)
