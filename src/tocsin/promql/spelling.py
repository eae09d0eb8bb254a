"""Two more 2.42 spellings the parser library cannot take, rewritten before it sees the text.

The library follows Prometheus 3, so:

- `holt_winters` is unknown to it (3.0 renamed it `double_exponential_smoothing`): the
  2.42 name, called as a function, is passed on under the new name, and the new name,
  which 2.42 does not know, is refused;
- an `@` timestamp before 1970 makes it panic when the time is read back. A negative
  `@ -T` is passed on as a stand-in time far in the future (`_NEGATIVE_BASE + T`, exact
  in decimal), which `at_ms` turns back into -T. Genuine `@` times that late (year 5985
  and after) are refused rather than misread.

Runs after source.normalize, so backtick strings are already double-quoted.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .errors import PromQLParseError

_NEGATIVE_BASE = 126_701_150_400  # seconds: half of what the library's datetimes can hold
_NEGATIVE_BASE_MS = _NEGATIVE_BASE * 1000
_NUMBER = re.compile(r"\s*([+-]?)\s*((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_CALL = re.compile(r"\s*\(")


def rewrite(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        piece: str | None = None  # a replacement for text[i:j]
        if c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
        elif c == "@" and (m := _NUMBER.match(text, i + 1)) is not None:
            piece, j = "@ " + _at_number(m[1], m[2]), m.end()
        elif (m := _IDENT.match(text, i)) is not None:
            j = m.end()
            if _CALL.match(text, j):
                if m[0] == "double_exponential_smoothing":
                    raise PromQLParseError(f'1:{i + 1}: unknown function with name "{m[0]}" (not in PromQL 2.42)')
                if m[0] == "holt_winters":
                    piece = "double_exponential_smoothing"
        else:
            j = i + 1
        out.append(text[i:j] if piece is None else piece)
        i = j
    return "".join(out)


def _at_number(sign: str, digits: str) -> str:
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return sign + digits
    if sign == "-" and value != 0:
        return str(_NEGATIVE_BASE + value)
    if value >= _NEGATIVE_BASE:
        raise PromQLParseError(f"@ timestamp {digits} is later than tocsin supports (year 5985)")
    return sign + digits


def at_ms(ms: int) -> int:
    """The @ time in milliseconds the expression meant (see the module docstring)."""
    return _NEGATIVE_BASE_MS - ms if ms >= _NEGATIVE_BASE_MS else ms
