"""Alertmanager's label matcher syntax: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.

A string may hold several matchers separated by commas, optionally inside braces
(`{a="1", b=~"x|y"}`), as `amtool` and the `matchers:` config key accept. Regular
expressions are RE2 and fully anchored, as in Alertmanager; a missing label matches as the
empty string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import re2

from ..gofmt import quote

_NAME = re.compile(r'\s*([a-zA-Z_:][a-zA-Z0-9_:]*|"(?:[^"\\]|\\.)*")\s*(=~|!~|!=|=)\s*')
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # raised to the caller, not printed by the C++ library
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_re", re2.compile(f"^(?:{self.value})$", options=_OPTIONS))
            except re2.error as exc:
                detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
                raise ValueError(f"invalid regular expression {self.value!r}: {detail}") from None

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = self._re.match(value) is not None  # type: ignore[attr-defined]  # set in __post_init__ (frozen)
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{quote(self.value)}"


def _unquote(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_matchers(text: str) -> list[Matcher]:
    """Parse one config line into matchers; raise ValueError with what is wrong."""
    s = text.strip()
    if s.startswith("{"):
        if not s.endswith("}"):
            raise ValueError(f"missing closing brace in {text!r}")
        s = s[1:-1]
    out: list[Matcher] = []
    pos = 0
    while True:
        while pos < len(s) and s[pos] in " \t":
            pos += 1
        if pos >= len(s):
            break
        m = _NAME.match(s, pos)
        if not m:
            raise ValueError(f"expected a matcher such as name=\"value\" in {text!r}")
        name = m.group(1)
        if name.startswith('"'):
            name = _unquote(name[1:-1])
        op, pos = m.group(2), m.end()
        if pos < len(s) and s[pos] == '"':
            end = pos + 1
            while end < len(s) and s[end] != '"':
                end += 2 if s[end] == "\\" else 1
            if end >= len(s):
                raise ValueError(f"unterminated quoted value in {text!r}")
            value, pos = _unquote(s[pos + 1:end]), end + 1
        else:
            end = s.find(",", pos)
            end = len(s) if end < 0 else end
            value, pos = s[pos:end].strip(), end
        out.append(Matcher(name, op, value))
        while pos < len(s) and s[pos] in " \t":
            pos += 1
        if pos < len(s):
            if s[pos] != ",":
                raise ValueError(f"expected ',' between matchers in {text!r}")
            pos += 1
    if not out:
        raise ValueError(f"no matcher in {text!r}")
    return out


def parse_matcher_list(lines: list[str]) -> list[Matcher]:
    return [m for line in lines for m in parse_matchers(line)]


def matches_all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def check_matchers(lines: Any) -> list[str]:
    """Pydantic after-validator: keep the strings, but fail early on a bad one."""
    for line in lines:
        parse_matchers(line)
    return lines
