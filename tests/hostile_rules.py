"""Generated hostile rule files: expressions and templates that once crashed or exhausted tocsin.

Each case is (name, alert rule fields, the words its error must contain). The expressions
are all valid PromQL that promtool 2.42 accepts; the hostile ones are longer than tocsin
parses, so tocsin refuses them with a reason. Long chains, deep parentheses and calls,
aggregations and subqueries nested thousands deep, which once crashed the parser library
or the evaluation under tocsin, are accepted now, as promtool accepts them. The templates
nest deeper than any real one; they used to raise RecursionError.
"""

from __future__ import annotations

import json

HOSTILE_EXPRESSIONS: list[tuple[str, str, str]] = [
    ("70 000 nested calls", "ln(" * 70_000 + "up" + ")" * 70_000, "characters long"),
    ("a 300 KiB expression", 'up{job=~"' + "|".join(f"j{i:06d}" for i in range(40000)) + '"}', "characters long"),
]

HOSTILE_TEMPLATES: list[tuple[str, str, str]] = [
    ("3000 nested if", "{{if 1}}" * 3000 + "x" + "{{end}}" * 3000, "nested more than 100 levels"),
    ("3000 else if", "{{if 0}}" + "{{else if 0}}" * 3000 + "{{end}}", "nested more than 100 levels"),
    ("3000 parentheses", "{{" + "(" * 3000 + "1" + ")" * 3000 + "}}", "nested more than 100 levels"),
]

# Accepted by promtool and by tocsin: the limits leave room for real rules.
ACCEPTED_EXPRESSIONS: list[tuple[str, str]] = [
    ("chain of 90 terms", " + ".join(f"sum(rate(x{i}[5m]))" for i in range(90))),
    ("40 nested calls", "abs(" * 40 + "up" + ")" * 40),
    ("a 100 KiB regular expression", 'up{job=~"' + "|".join(f"j{i:06d}" for i in range(14000)) + '"}'),
    # Deeper than the parser library can take whole: parsed piece by piece.
    ("chain of 5000 terms", "+".join(["1"] * 5000)),
    ("chain of 5000 selectors", " + ".join(["up"] * 5000)),
    ("5000 or", " or ".join(["up"] * 5000)),
    ("10000 parentheses", "(" * 10000 + "up" + ")" * 10000),
    ("20000 unary minus", "-" * 20000 + "1"),
    ("10000 nested calls", "abs(" * 10000 + "up" + ")" * 10000),
    ("3000 nested aggregations", "sum(" * 3000 + "up" + ")" * 3000),
    ("2000 nested subqueries", "max_over_time(" * 2000 + "up" + "[5m:])" * 2000),
    ("size times depth", " + ".join(["a{" + ",".join(f'l{i}="v"' for i in range(200)) + "}"] * 95)),
]


def rule_file(expr: str = "up == 0", annotation: str = "down") -> str:
    """One group with one alert; YAML double-quoted scalars are JSON strings."""
    return ("groups:\n  - name: g\n    rules:\n      - alert: Hostile\n"
            f"        expr: {json.dumps(expr)}\n"
            f"        annotations: {{summary: {json.dumps(annotation)}}}\n")
