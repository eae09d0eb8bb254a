"""Alertmanager 0.25's label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.

Operators paste matchers from Alertmanager configs and amtool command lines, so a string
must mean here exactly what it means there, quirks included (pkg/labels/parse.go):

- one leading `{` and one trailing `}` are dropped, each on its own; the rest is split at
  commas outside double quotes; an empty string (or `{}`) is no matcher at all, which
  matches everything; a trailing comma is allowed, an empty matcher between commas is not;
- each matcher is `name op value` with ASCII space around; the name is
  `[a-zA-Z_:][a-zA-Z0-9_:]*` (never quoted); the value may be quoted, and escapes are
  undone in quoted and unquoted values alike: `\\n` is a newline, `\\"` and `\\\\` themselves,
  any other backslash stays (`\\t` is backslash-t, not a tab);
- a double quote inside a value that is not escaped (`a=x"y`, `a=="b"`) is an error;
- regular expressions are Go's RE2 dialect, fully anchored; a missing label matches as the
  empty string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import re2

_SPACE = "\t\n\f\r "  # Go regexp's \s: ASCII only
_MATCHER = re.compile(rf"[{_SPACE}]*([a-zA-Z_:][a-zA-Z0-9_:]*)[{_SPACE}]*(=~|=|!=|!~)[{_SPACE}]*(.*?)[{_SPACE}]*",
                      re.DOTALL)
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # raised to the caller, not printed by the C++ library
_OP_ORDER = {"=": 0, "!=": 1, "=~": 2, "!~": 3}  # Alertmanager's MatchType values, for sorting
# What Go's regexp/syntax refuses but the C++ RE2 library accepts: `\C` (any byte), anywhere,
# and the `(?<name>...)` group syntax (Go accepts it only from 1.22) outside a class. A
# backslash preceded by an even run of backslashes is the one that escapes.
_ANY_BYTE = re.compile(r"(?<!\\)(?:\\\\)*\\C")
_ANGLE_GROUP = re.compile(r"(?<!\\)(?:\\\\)*\(\?<")
# Go's strings.TrimSpace: Unicode white space, as unicode.IsSpace knows it
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"


def compile_go_regexp(pattern: str) -> Any:
    """Compile an anchored RE2 regexp, refusing what Go's regexp package would refuse."""
    if _ANY_BYTE.search(pattern) or _ANGLE_GROUP.search(_outside_classes(pattern)):
        raise ValueError(f"invalid regular expression {pattern!r}: not in Go's RE2 syntax (\\C or (?<name>)")
    try:
        return re2.compile(f"^(?:{pattern})$", options=_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"invalid regular expression {pattern!r}: {detail}") from None


def _outside_classes(pattern: str) -> str:
    """The pattern with the insides of `[...]` blanked, where `\\C` and `(?<` mean nothing special
    (an escape inside a class is still checked by RE2 itself)."""
    out, i, depth = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append("  " if depth else pattern[i:i + 2])
            i += 2
            continue
        if not depth and ch == "[":
            depth = True
            out.append(" ")
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":  # a leading ] is a literal
                i += 1
            continue
        if depth and ch == "[" and pattern[i:i + 2] == "[:":
            end = pattern.find(":]", i + 2)
            if end > 0:
                i = end + 2
                continue
        if depth and ch == "]":
            depth = False
        out.append(" " if depth else ch)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_re", compile_go_regexp(self.value))

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = self._re.match(value) is not None  # type: ignore[attr-defined]  # set in __post_init__ (frozen)
        return hit if self.op == "=~" else not hit

    def sort_key(self) -> tuple[str, str, int]:
        """Alertmanager's order of matchers (labels.Matchers.Less): name, value, then type."""
        return self.name, self.value, _OP_ORDER[self.op]

    def __str__(self) -> str:
        """Alertmanager's Matcher.String(): only backslash, newline and quote are escaped."""
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def format_matchers(matchers: list[Matcher]) -> str:
    """`{a="1",b=~"x"}` as Alertmanager prints a list of matchers (in the order given)."""
    return "{" + ",".join(str(m) for m in matchers) + "}"


def sorted_matchers(matchers: list[Matcher]) -> list[Matcher]:
    return sorted(matchers, key=Matcher.sort_key)


def parse_matcher(text: str) -> Matcher:
    """One matcher, as Alertmanager's labels.ParseMatcher reads it; ValueError says what is wrong."""
    found = _MATCHER.fullmatch(text)
    if not found:
        raise ValueError(f"bad matcher format: {text!r}")
    name, op, raw = found.groups()
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    last = len(raw) - 1
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            out.append("\n" if ch == "n" else ch if ch in '"\\' else "\\" + ch)
        elif ch == "\\":
            if i < last:
                escaped = True
            else:
                out.append("\\")  # a backslash at the very end is literal
        elif ch == '"':
            if not quoted or i < last:
                raise ValueError(f"matcher value contains unescaped double quote: {found.group(3)!r}")
            quoted = False
        else:
            out.append(ch)
    if quoted:
        raise ValueError(f"matcher value contains unescaped double quote: {found.group(3)!r}")
    return Matcher(name, op, "".join(out))


def parse_matchers(text: str) -> list[Matcher]:
    """Parse one config line (or amtool argument) into matchers; raise ValueError with what is wrong.

    An empty line gives no matchers (matching every alert), as in Alertmanager."""
    s = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    inside_quotes = escaped = False
    for ch in s:
        if ch == "," and not inside_quotes:
            tokens.append("".join(token))
            token = []
            continue
        if ch == '"':
            if escaped:
                escaped = False
            else:
                inside_quotes = not inside_quotes
        elif ch == "\\":
            escaped = not escaped
        elif ch != ",":
            escaped = False
        token.append(ch)
    rest = "".join(token).strip(_GO_SPACE)
    if rest:
        tokens.append(rest)
    return [parse_matcher(t) for t in tokens]


def parse_matcher_list(lines: list[str]) -> list[Matcher]:
    return [m for line in lines for m in parse_matchers(line)]


def matches_all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def check_matchers(lines: Any) -> list[str]:
    """Pydantic after-validator: keep the strings, but fail early on a bad one."""
    for line in lines:
        parse_matchers(line)
    return lines
