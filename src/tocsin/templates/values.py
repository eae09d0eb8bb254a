"""The values a template handles, and how Go's fmt prints them.

A template sees plain data: strings, numbers, booleans, maps (`$labels`), lists
(`query` results), the alert's TemplateData and QuerySample records, and Go's "no value"
for what does not exist. What an action outputs is fmt.Sprint of its value, and
`printf` is fmt.Sprintf, so both are reproduced here for these types, with Go's
`%!verb(type=value)` complaints instead of exceptions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..gofmt import format_float, quote, time_string

# Bounds of one expansion: steps taken, and characters of output or of any one string a
# function returns (`printf "%s%s" $x $x` in a loop doubles a string each step, and no
# output shows it), so a template fails with a reason instead of taking the memory.
MAX_STEPS = 100_000
MAX_OUTPUT_CHARS = 1_000_000


class TemplateError(Exception):
    """A template cannot be parsed or executed; the message mimics Go's."""


class _NoValue:
    """Go's invalid reflect.Value: what a missing map key yields; prints as <no value>."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
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


@dataclass(frozen=True)
class TemplateData:
    """What `.` is in an alert template (Prometheus's AlertTemplateData)."""

    Labels: dict[str, str]
    ExternalLabels: dict[str, str]
    ExternalURL: str
    Value: float


def truth(v: Any) -> bool:
    """text/template's notion of true: non-zero, non-empty, and not "no value"."""
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, dict, tuple)):
        return bool(v)
    return True


def go_sprint(value: Any) -> str:
    """fmt.Sprint of a template value."""
    if value is NO_VALUE or value is None:
        return "<no value>" if value is NO_VALUE else "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
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
        return time_string(value)
    return str(value)


def go_type_name(value: Any) -> str:
    """The Go type a value stands for, as error messages and `%!verb(...)` name it."""
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
        if _too_large(width) or _too_large(prec):
            out.append("%!(NOVERB)")  # Go gives up on the rest of the format
            pos = len(fmt)
            break
        if width == "*":
            width = str(args[argi]) if argi < len(args) else ""
            argi += 1
            if _too_large(width.lstrip("-")):
                out.append("%!(BADWIDTH)")
                width = None
        if prec == "*":
            prec = str(args[argi]) if argi < len(args) else ""
            argi += 1
            if _too_large(prec.lstrip("-")):
                out.append("%!(BADPREC)")
                prec = None
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_format_one(flags, width, prec, verb, arg))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{go_type_name(a)}={go_sprint(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# Go's fmt refuses widths and precisions over a million (tooLarge), so `%999999999d`
# cannot make a gigabyte string: neither can we.
_MAX_WIDTH = 1_000_000


def _too_large(number: str | None) -> bool:
    return number is not None and number.isdigit() and int(number) > _MAX_WIDTH


def _pad(text: str, flags: str, width: str | None) -> str:
    if not width:
        return text
    w = int(width)
    if "-" in flags:
        return text.ljust(w)
    return text.rjust(w)


def _format_one(flags: str, width: str | None, prec: str | None, verb: str, arg: Any) -> str:
    """One verb of go_printf; `flags` holds only Go's flag characters (the pattern says so)."""
    py_prec = f".{prec}" if prec is not None else ""
    bad = f"%!{verb}({go_type_name(arg)}={go_sprint(arg)})"
    if verb in "sv" and not isinstance(arg, (float, int)) or verb == "s" and isinstance(arg, bool):
        text = go_sprint(arg)
        if verb == "s" and prec is not None:
            text = text[: int(prec)]
        return _pad(text, flags, width)
    if verb == "v":
        if isinstance(arg, float) and prec is None:
            text = format_float(arg)
            if "+" in flags and not text.startswith(("-", "+")):
                text = "+" + text
            return _pad(text, flags, width)
        verb = "g" if isinstance(arg, float) else "d"
    if verb == "t":
        return _pad(go_sprint(arg), flags, width) if isinstance(arg, bool) else bad
    if verb == "q":
        return _pad(quote(arg), flags, width) if isinstance(arg, str) else bad
    if verb in "dxXob":
        if isinstance(arg, bool) or not isinstance(arg, int):
            if verb in "xX" and isinstance(arg, str):
                text = arg.encode().hex()
                return _pad(text.upper() if verb == "X" else text, flags, width)
            return bad
        return ("%" + flags + (width or "") + py_prec + verb) % arg
    if verb in "feEgG":
        if not isinstance(arg, float):
            return bad
        if not math.isfinite(arg):  # NaN, +Inf, -Inf: never zero-padded
            return _pad(format_float(arg), flags.replace("0", ""), width)
        if verb in "gG" and prec is None:  # Go: the shortest form that reads back, not C's 6 digits
            text = format_float(arg)
            text = text.upper() if verb == "G" else text
            if "+" in flags and not text.startswith("-"):
                text = "+" + text
            if "0" in flags and "-" not in flags and width and len(text) < int(width):
                sign = text[0] if text[0] in "+-" else ""
                return sign + text[len(sign):].rjust(int(width) - len(sign), "0")
            return _pad(text, flags, width)
        return ("%" + flags + (width or "") + py_prec + verb) % arg
    return bad
