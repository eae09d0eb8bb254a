"""Seeded generators of routing trees, alerts and matcher strings in Alertmanager's dialect.

Values include what the dialect is particular about: tabs, quotes, backslashes, `\\t` as two
characters, newlines, commas, braces, non-ASCII space, emoji, `$$`.
"""

from __future__ import annotations

import random
from typing import Any

NAMES = ["alertname", "team", "severity", "env", "svc"]
VALUES = ["api", "db", "web", "critical", "a\tb", 'q"t', "back\\slash", "x\\ty", "é", "nb\u00a0sp",
          "multi\nline", "\U0001f600", "a,b", "{x}", "cost$$", " pad "]
REGEXES = ["api|db", ".*b.*", "(?i)API", "[a-d].*", "é|\U0001f600", "", ".+", "a\\tb", "x\\\\ty", "cost\\$\\$",
           "(web|db)", "[^a]*", "\\Qa,b\\E", "\\{x\\}", "q\"t"]
RECEIVERS = ["r0", "r1", "r2", "r3"]


def value(rng: random.Random) -> str:
    """Mostly a few common values, so that matchers match often enough to reach deep routes."""
    return rng.choice(VALUES[:6]) if rng.random() < 0.6 else rng.choice(VALUES)


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def bare_ok(value: str) -> bool:
    """Whether Alertmanager reads the value the same without quotes."""
    return (value != "" and not any(c in value for c in '"\\,{}\n') and value == value.strip(" \t\n\f\r")
            and "\u00a0" not in value[-1:])


def matcher_text(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    op = rng.choice(["=", "!=", "=~", "!~"])
    text = rng.choice(REGEXES) if "~" in op else value(rng)
    shown = text if bare_ok(text) and rng.random() < 0.4 else quoted(text)
    pad = rng.choice(["", " ", "  "])
    return f"{name}{pad}{op}{pad}{shown}"


def matcher_line(rng: random.Random) -> str:
    parts = [matcher_text(rng) for _ in range(rng.choice([1, 1, 1, 2]))]
    line = rng.choice([",", ", "]).join(parts)
    return "{" + line + "}" if rng.random() < 0.3 else line


def route(rng: random.Random, depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    if rng.random() < 0.8:
        node["matchers"] = [matcher_line(rng) for _ in range(rng.choice([1, 1, 1, 2]))]
    if rng.random() < 0.2:
        node["match"] = {rng.choice(NAMES): value(rng)}
    if rng.random() < 0.15:
        node["match_re"] = {rng.choice(NAMES): rng.choice(REGEXES)}
    receiver = rng.random()
    if receiver < 0.5:
        node["receiver"] = rng.choice(RECEIVERS)
    elif receiver < 0.6:
        node["receiver"] = ""
    grouping = rng.random()
    if grouping < 0.15:
        node["group_by"] = []
    elif grouping < 0.3:
        node["group_by"] = ["..."]
    elif grouping < 0.55:
        node["group_by"] = rng.sample(NAMES, rng.randint(1, 3))
    if rng.random() < 0.3:
        node["continue"] = True
    children = rng.randint(0, 3 - depth) if depth < 3 else 0
    if children:
        node["routes"] = [route(rng, depth + 1) for _ in range(children)]
    return node


def tree(rng: random.Random, index: int) -> dict[str, Any]:
    """One generated tree, below a `tree="N"` route so that many trees share one config."""
    top = route(rng, 1)
    top["matchers"] = [f'tree="{index}"']
    top.pop("match", None)
    top.pop("match_re", None)
    top["continue"] = False
    top.setdefault("routes", []).extend(route(rng, 2) for _ in range(rng.randint(1, 2)))
    return top


def alert(rng: random.Random, index: int) -> dict[str, str]:
    labels = {"tree": str(index), "alertname": rng.choice(["Down", "Slow", "a\tb", 'q"t'])}
    for name in rng.sample(NAMES[1:], rng.randint(1, 4)):
        labels[name] = value(rng)
    return labels


FUZZ_ALPHABET = ['a', 'b', '=', '!', '~', '"', '\\', ',', '{', '}', ' ', '\t', '\u00a0', 'é', 't', 'n', '(', '?',
                 '<', '>', 'C', '|', '*', ':', '_', '1', '$', '\n', '[', ']', 'P']
CURATED = [
    "", "{}", "{", "}", "a=b", "{a=b", "a=b}", "{{a=b}}", "a=b,", "a=b,,c=d", ",a=b", "a=b, c=d", 'a="b,c"',
    'a=x"y', 'a=="b"', '"a"="b"', "a\u00a0=b", "a=b\u00a0", "a=b\u00a0,c=d", 'a="\\t"', "a=\\t", 'a="b\\"',
    'a="b\\\\"', "a=b\\", 'a="\\n"', "a=\\n", 'a="x\\qy"', "a=~\\C", 'a=~"(?<n>x)"', 'a=~"(?P<n>x)"',
    'a=~"[\\C]"', 'a=~"\\\\C"', 'a=~"(?i)x"', 'a=~"\\pL"', 'a=~"x{1001}"', 'a=~"x{1000}"', 'a=~"\\z"',
    'a=~"\\Z"', 'a=~"(?U)x"', 'a=~"\\_"', 'a=~"\\Q(\\E"', 'a=~"[[:alpha:]]"', 'a=~"\\8"', "a:b=c", "_=x",
    "1a=b", "a =~ b", "a!==b", "a=~=b", "a!~", "a=", "=b", "a", "a b=c", 'a=" b "', "a= b ", 'a="x"y"',
    "a=\"x\\\"y\"", "a=\t", "a=é", "a=\U0001f600", "a=b}c", "{a=b}c}", 'a="}"', '{a="}"}', "a=\"", "a=\"\"\"",
    "a=b\n", "\na=b", "a=b\f", "a=cost$$", "a=${HOME}", 'a=~"(?s:.)"', 'a=~"\\x{10FFFF}"', 'a=~"\\e"',
    'a=~"[a-\\d]"', 'a=~"(?<=x)"', 'a=~"x**"', 'a=~"\\b"', 'a=~"(?m)^x$"', 'a=~"[\\Q]\\E]"',
]


def fuzz_matcher(rng: random.Random) -> str:
    """A short string near the matcher grammar: a name, an operator, then noise."""
    head = rng.choice(["a", "a_b", "{a", " a", "a:b", "é", ""]) + rng.choice(["=", "!=", "=~", "!~", "==", ""])
    return head + "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(0, 8)))


REGEX_ALPHABET = list("()[]{}*+?|^$.\\:<>=!PpLCdwsbzAQEx019,-a_&#'`") + [
    "\\p{Greek}", "[:alpha:]", "(?i)", "(?P<n>", "(?<", "{2,3}", "\\x{41}", "\\Q", "\\E", "(?:", "(?s)", "\\pN",
    "\\C", "\\8", "\\z", "\\Z", "\\v", "\\e", "\\a", "\\f", "\\_", "\\-", "\\é", "é"]


def fuzz_regex(rng: random.Random) -> str:
    """A short string of regexp syntax, valid or not. (`~` and `null` alone are left out: yaml.v2
    fails to read those quoted strings into Alertmanager's Regexp type, a YAML quirk.)"""
    while True:
        text = "".join(rng.choice(REGEX_ALPHABET) for _ in range(rng.randint(1, 7)))
        if text not in ("~", "null"):
            return text
