"""The expression text before the parser library sees it: PromQL 2.42's lexical rules.

The parser library follows a newer PromQL than Prometheus 2.42 in two ways that matter to a
rule file moved between tocsin and Prometheus:

- it validates escape sequences inside backtick strings, which are raw in PromQL, so the
  idiomatic `x{a=~`10\\.0\\.0\\.1`}` fails to load; backtick strings are rewritten here as
  the equivalent double-quoted string;
- it accepts Prometheus 3 syntax that 2.42 refuses: quoted label names (`sum by ("job")`,
  `x{"job"=~".+"}`, `on("job")`) and durations used as numbers (`vector(90s)`,
  `x offset 5m + 30s`). Its tree no longer shows the difference, so the text is checked here.

One linear pass over the text, strings and comments skipped as the PromQL lexer skips them.
"""

from __future__ import annotations

from .errors import PromQLParseError

_GROUPING_WORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_DURATION_UNITS = ("ms", "y", "w", "d", "h", "m", "s")
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:")


def _error(at: int, what: str) -> PromQLParseError:
    return PromQLParseError(f"1:{at + 1}: {what}: not PromQL 2.42 syntax")


def _duration_end(text: str, i: int) -> int:
    """The end of a duration literal starting at `i` (digits and units, e.g. 1h30m), or `i`."""
    n, j, seen_unit = len(text), i, False
    while j < n and text[j].isdigit():
        k = j
        while k < n and text[k].isdigit():
            k += 1
        unit = next((u for u in _DURATION_UNITS if text.startswith(u, k)), None)
        if unit is None:
            break
        j, seen_unit = k + len(unit), True
    if not seen_unit or (j < n and text[j] in _IDENT_CHARS):
        return i
    return j


def normalize(text: str) -> str:
    """`text` with backtick strings as double-quoted ones; raises PromQLParseError for the
    Prometheus 3 syntax that 2.42 refuses."""
    out: list[str] = []
    n = len(text)
    i = 0
    brackets = 0  # inside [...]: durations belong there
    parens: list[bool] = []  # per open paren: is it a grouping list (by, on, ...)?
    braces: list[str] = []  # per open brace: the last significant character seen in it
    word = ""  # the last identifier or keyword, for `offset` and grouping lists
    while i < n:
        c = text[i]
        if c == "#":  # a comment runs to the end of the line
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
            continue
        if c in "\"'`":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if (text[j] == "\\" and c != "`") else 1
            if j >= n:  # unterminated: left to the parser to report
                out.append(text[i:])
                break
            if parens and parens[-1]:
                raise _error(i, "a quoted label name in a grouping list")
            if braces and braces[-1] in "{,":
                rest = text[j + 1:].lstrip()
                if rest[:1] in ("=", "!", ",", "}") or rest[:1] == "":
                    raise _error(i, "a quoted label or metric name in braces")
            if c == "`":
                raw = text[i + 1:j]
                out.append('"' + raw.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"')
            else:
                out.append(text[i:j + 1])
            if braces:
                braces[-1] = "s"
            i = j + 1
            word = ""
            continue
        if c.isdigit() and (i == 0 or text[i - 1] not in _IDENT_CHARS and text[i - 1] != "."):
            end = _duration_end(text, i)
            if end > i:
                if brackets == 0 and word.lower() != "offset":
                    raise _error(i, f"a duration ({text[i:end]}) where a number is expected")
                out.append(text[i:end])
                i, word = end, ""
                continue
        if c.isalpha() or c == "_":
            j = i
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            word = text[i:j]
            out.append(word)
            i = j
            if braces:
                braces[-1] = "w"
            continue
        if c == "(":
            parens.append(word.lower() in _GROUPING_WORDS)
        elif c == ")":
            if parens:
                parens.pop()
        elif c == "[":
            brackets += 1
        elif c == "]":
            brackets = max(0, brackets - 1)
        elif c == "{":
            braces.append("{")
        elif c == "}":
            if braces:
                braces.pop()
        elif c == "," and braces:
            braces[-1] = ","
        elif not c.isspace() and braces:
            braces[-1] = c
        if not c.isspace() and c != "-":
            word = ""
        out.append(c)
        i += 1
    return "".join(out)
