"""Deep and long PromQL: parsed piece by piece, evaluated without recursion.

The piecewise parser (promql/chains.py) is checked three ways: against the parser library
on random expressions shallow enough for both (same trees, same refusals), against
promtool 2.42 on long chains and on calls, aggregations and subqueries nested thousands
deep (same values), and on the deep shapes promtool accepts or refuses (the same verdicts).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from conftest import REPO, require_tool, scaled
from tocsin.promql import (
    MemoryStorage,
    PromQLError,
    PromQLParseError,
    Scalar,
    chains,
    from_dict,
    instant_query,
    limits,
    parse,
)
from tocsin.promql import nodes as N
from tocsin.promql.functions import FUNCTIONS
from tocsin.promql.parse import _binding_parse, _convert, _convert_piece

# ---------------------------------------------------------------------------- same trees


def _shape(tree: N.Expr) -> list[tuple]:
    """The tree in pre-order, each node as its class and its fields other than subtrees."""
    out: list[tuple] = []
    stack: list[object] = [tree]
    while stack:
        node = stack.pop()
        values: list[object] = [type(node).__name__]
        for f in fields(node):  # type: ignore[arg-type]
            v = getattr(node, f.name)
            if isinstance(v, float):
                v = repr(v)  # NaN, and -0.0 apart from 0.0
            elif f.name == "impl":
                v = v.name
            elif isinstance(v, list | tuple) and v and hasattr(v[0], "name") and hasattr(v[0], "op"):
                v = tuple((m.name, m.op, m.value) for m in v)
            elif isinstance(v, list):
                stack.extend(reversed(v))
                v = len(v)
            elif type(v).__module__ == N.__name__ and not isinstance(v, N.At):
                stack.append(v)
                v = "node"
            values.append(v)
        out.append(tuple(values))
    return out


ATOMS = ["1", "2.5", "0x1f", "1e-3", "Inf", "NaN", "a", 'b{job="x"}', "a offset 5m", "a @ 100",
         "a offset -1m", '"s"', "a[5m]", "x @ start()", "time()", "pi()"]
OPS = ["+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless", "AND", "Or"]
MODIFIERS = ["", "", "", "bool", "on(job)", "ignoring(inst)", "on(job) group_left(x)", "ignoring() group_right",
             "bool on(job)", "group_left"]


def _random_expression(rng: random.Random, depth: int = 0) -> str:
    r = rng.random()
    if depth > 4 or r < 0.25:
        return rng.choice(ATOMS)
    sub = lambda: _random_expression(rng, depth + 1)  # noqa: E731
    if r < 0.55:
        terms = [sub() for _ in range(rng.randint(2, 5))]
        out = terms[0]
        for t in terms[1:]:
            out += f" {rng.choice(OPS)} {rng.choice(MODIFIERS)} {t}"
        return out
    if r < 0.65:
        return rng.choice(["-", "+", "- -", "-+"]) + sub()
    if r < 0.75:
        return f"({sub()})"
    if r < 0.82:
        return rng.choice(["abs", "vector", "scalar", "rate", "exp"]) + f"({sub()})"
    if r < 0.88:
        head = rng.choice(["sum by (job) ", "max", "count without (inst)", "topk(2, ", "quantile(0.5, "])
        return f"{head}{sub()})" if head.endswith(", ") else f"{head}({sub()})"
    if r < 0.93:
        return f"max_over_time(({sub()})[5m:1m])"
    return f"clamp({sub()}, {sub()}, {sub()})"


def _both(expr: str) -> tuple[object, object]:
    def attempt(fn):
        try:
            return _shape(fn())
        except PromQLParseError:
            return "refused"
    return (attempt(lambda: _convert(_binding_parse(expr))), attempt(lambda: chains.parse(expr, _convert_piece)))


def test_piecewise_parse_builds_the_librarys_tree_or_refuses_what_it_refuses() -> None:
    rng = random.Random(20261202)
    exprs = [_random_expression(rng) for _ in range(1500)]
    exprs += ["-2^2", "2^3^2", "2^-1^2", "a * - b * c", "a ^ - b * c", "1 - 2 - 3", "8 / 2 / 2", "-(1)",
              "(x)[5m:1m]", "(x)[5m]", "x @ start() offset -5m", "topk(5, x)", 'count_values("a", x)',
              "rate((x[5m]))", "sum(x) by (job)", "SUM BY (job) (x)", "a > bool b", "1 > 2", "1 > bool 2",
              "a and 1", "1 + ", "(1", "1)", "a , b", "abs(a, )", "a == on(job) group_left b", "x{a=~\"(\"}"]
    accepted = 0
    for expr in exprs:
        theirs, mine = _both(expr)
        assert mine == theirs, expr
        accepted += theirs != "refused"
    assert accepted > len(exprs) // 4, "the random expressions hardly test anything"


# ---------------------------------------------------------------------------- deep shapes


def _chain(n: int, ops: str = "+") -> str:
    return "".join(f"{ops[i % len(ops)]}{1 + i % 3}" for i in range(n))[1:]


def test_deep_shapes_that_promtool_accepts_parse_and_evaluate() -> None:
    st = MemoryStorage()
    st.add(from_dict({"__name__": "up", "job": "x"}), 0, 1.0)
    cases = {
        "+".join(["1"] * 5000): 5000.0,
        " + ".join(["up"] * 5000): 5000.0,
        "(" * 10000 + "up" + ")" * 10000: 1.0,
        "-" * 20001 + "up": -1.0,
        "-" * 20000 + "1": 1.0,
        "^".join(["1"] * 5000): 1.0,
        "1+(" * 5000 + "1" + ")" * 5000: 5001.0,
        " or ".join(["up"] * 5000): 1.0,
        " > bool ".join(["2"] * 4000): 0.0,
        "2" + "^1" * 3000 + " * 3 - 1": 5.0,
    }
    for expr, want in cases.items():
        res = instant_query(expr, st, 1000)
        got = res.value if isinstance(res, Scalar) else [s.value for s in res]  # type: ignore[union-attr]
        assert got in (want, [want]), (expr[:40], got)


def _nest(n: int, pairs: list[tuple[str, str]], inner: str) -> str:
    """`inner` inside n levels, the i-th level from the outside being pairs[i % len(pairs)]."""
    opens, closes = [], []
    for i in range(n):
        opens.append(pairs[i % len(pairs)][0])
        closes.append(pairs[i % len(pairs)][1])
    return "".join(opens) + inner + "".join(reversed(closes))


def test_calls_aggregations_and_subqueries_nested_thousands_deep_evaluate_without_recursion() -> None:
    st = MemoryStorage()
    for i in range(31):
        st.add(from_dict({"__name__": "up", "job": "x"}), i * 60_000, 1.0 + i)
    cases = {
        "abs(" * 10000 + "up" + ")" * 10000: [31.0],
        "sum(" * 3000 + "up" + ")" * 3000: [31.0],
        "max_over_time(" * 2000 + "up" + "[30s:1m])" * 2000: [31.0],
        "abs(1 + " * 3000 + "up" + ")" * 3000: [3031.0],
        "vector(scalar(" * 3000 + "up" + "))" * 3000: [31.0],
        _nest(3000, [("ceil(0.5 + ", ")"), ("sum by (job) (", ")"), ("min_over_time(", "[30s:1m])")], "up"):
            [31.0 + 1000],
    }
    trees = {expr: parse(expr) for expr in cases}
    # Parsed; now evaluated with the recursion limit 100 frames above this one: the
    # evaluation's depth is that of its driver, whatever the expression's.
    depth = len(__import__("inspect").stack(0))
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 100)
    try:
        got = {expr: [s.value for s in instant_query(tree, st, 30 * 60_000)]  # type: ignore[union-attr]
               for expr, tree in trees.items()}
    finally:
        sys.setrecursionlimit(old)
    for expr, want in cases.items():
        assert got[expr] == want, (expr[:60], got[expr])


def test_nesting_is_bounded_with_a_reason() -> None:
    tree: N.Expr = N.VectorSelector("up", ())
    for _ in range(limits.MAX_NESTING):
        tree = N.Call("abs", [tree], FUNCTIONS["abs"])
    limits.check_tree(tree)
    with pytest.raises(PromQLParseError, match=f"nest more than {limits.MAX_NESTING} levels deep"):
        limits.check_tree(N.Aggregate("sum", tree, None, (), False))
    # Text that deep is longer than any expression parsed at all.
    with pytest.raises(PromQLParseError, match="characters long"):
        parse("ln(" * 70_000 + "up" + ")" * 70_000)


def test_nested_subqueries_cost_at_most_the_query_timeout() -> None:
    # 2 000 subqueries of 5 minutes each reach back a week: 10 million steps, which
    # promtool evaluates in 3 s and tocsin in minutes; the query's timeout bounds them.
    st = MemoryStorage()
    st.add(from_dict({"__name__": "up"}), 0, 1.0)
    tree = parse("max_over_time(" * 2000 + "up" + "[5m:])" * 2000)
    started = time.monotonic()
    with pytest.raises(PromQLError, match="query timed out"):
        instant_query(tree, st, 1000, timeout_s=0.5)
    assert time.monotonic() - started < scaled(3)


def test_a_hundred_nested_calls_with_chains_between_evaluate_within_pythons_stack() -> None:
    st = MemoryStorage()
    st.add(from_dict({"__name__": "up"}), 0, 1.0)
    expr = "abs(1 + " * 99 + " + ".join(["up"] * 50) + ")" * 99
    res = instant_query(expr, st, 1000)
    assert [s.value for s in res] == [149.0]  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- promtool


def _promtool_values(tmp: Path, exprs: list[str], series: tuple[str, str] = ("3x5", "0.5x5"),
                     at: str = "1m") -> dict[str, str]:
    """What promtool's test of each expression (a{job="x"} and a{job="y"} given by `series`,
    evaluated at `at`) prints it got, as text."""
    doc = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": 'a{job="x"}', "values": series[0]},
                             {"series": 'a{job="y"}', "values": series[1]}],
            "promql_expr_test": [{"expr": e, "eval_time": at} for e in exprs],
        }],
    }
    (tmp / "rules.yml").write_text("groups: []\n")
    (tmp / "t.yml").write_text(yaml.safe_dump(doc, width=1 << 30))
    proc = subprocess.run(["promtool", "test", "rules", "t.yml"], cwd=tmp, capture_output=True, text=True,
                          timeout=scaled(120))
    out = proc.stdout + proc.stderr
    return {json.loads('"' + m[1] + '"'): m[2]
            for m in re.finditer(r'expr: "((?:[^"\\]|\\.)*)", time: \S+,\n\s+exp: nil\n\s+got: (.*)\n', out)}


def test_long_chains_give_promtools_values(tmp_path: Path) -> None:
    require_tool("promtool")
    rng = random.Random(7)
    exprs = [
        _chain(3000, "+-*/"),
        _chain(3000, "*+^-/%"),
        _chain(2000, "-^"),
        " - ".join(f"{rng.randint(1, 9)} * {rng.randint(1, 9)} ^ 0.5" for _ in range(1500)),
        " + ".join(["a"] * 2000),
        " / on(job) ".join(["a"] * 1500),
        " > bool ".join(["a", "1"] * 1000),
        "(" * 5000 + " - ".join(["a"] * 100) + ")" * 5000,
        "-" * 3001 + "a * 2",
        " or ".join(f'a{{job="{j}"}} * {i}' for i, j in zip(range(2000), "xy" * 1000, strict=True)),
        " and ".join(["a"] * 2000) + " unless a{job=\"y\"}",
    ]
    theirs = _promtool_values(tmp_path, exprs)
    st = MemoryStorage()
    for job, v in (("x", 3.0), ("y", 0.5)):
        for i in range(6):
            st.add(from_dict({"__name__": "a", "job": job}), i * 60_000, v)
    _same_values(exprs, theirs, st, 60_000)


def _same_values(exprs: list[str], theirs: dict[str, str], st: MemoryStorage, t_ms: int) -> None:
    assert len(theirs) == len(exprs), "promtool output not understood"
    for expr in exprs:
        res = instant_query(expr, st, t_ms)
        if isinstance(res, Scalar):
            mine = {"{}": res.value}
        else:
            mine = {"{" + ", ".join(f'{k}="{v}"' for k, v in s.labels) + "}": s.value for s in res}  # type: ignore[union-attr]
        got = {m[1]: float(m[2]) for m in re.finditer(r"(\{.*?\}) (\S+?)(?:, |$)", theirs[expr])}
        assert got.keys() == mine.keys(), (expr[:60], got, mine)
        for k, v in mine.items():
            assert v == pytest.approx(got[k], rel=1e-9, nan_ok=True), (expr[:60], k, v, got[k])


def test_deep_calls_aggregations_and_subqueries_give_promtools_values(tmp_path: Path) -> None:
    require_tool("promtool")
    exprs = [
        "abs(" * 10000 + "a" + ")" * 10000,
        _nest(3000, [("ceil(0.5 + ", ")"), ("abs(-", ")"), ("floor(", ")"), ("sqrt(", ")"), ("round(3 * ", ")")], "a"),
        "sum by (job) (" * 3000 + "a" + ")" * 3000,
        _nest(3000, [("sum by (job) (", ")"), ("max without (l) (", ")"), ("-avg by (job) (", ")"),
                     ("topk(5, ", ")"), ("quantile by (job) (0.25, 2 * ", ")"), ("count by (job) (", ") + 7")], "a"),
        "vector(scalar(" * 3000 + "sum(a)" + "))" * 3000,
        "label_replace(" * 2000 + "a" + ', "l", "$1-", "l", "(.*)")' * 2000,
        "max_over_time(" * 2000 + "a" + "[30s:1m])" * 2000,
        "avg_over_time(" * 150 + "a" + "[3m:1m])" * 150,
        "sum_over_time(" * 40 + "a" + "[2m:1m])" * 40,
        "deriv(" * 60 + "a" + "[5m:1m])" * 60,
        "absent(" * 2001 + "nothing" + ")" * 2001,
        "timestamp(" * 1000 + "a" + ")" * 1000,
        _nest(3500, [("abs(", ")"), ("sum by (job) (", ")"), ("max_over_time((", ")[30s:1m])"), ("1 + ", ""),
                     ("-(", ")"), ("clamp_max(", ", 1e6)"), ("label_replace(", ', "k", "v", "", "")'),
                     ("sort_desc(", ")"), ("last_over_time(", "[1m:1m] @ 6000)")], "a"),
    ]
    theirs = _promtool_values(tmp_path, exprs, ("1+1x100", "100-1x100"), "100m")
    st = MemoryStorage()
    for i in range(101):
        st.add(from_dict({"__name__": "a", "job": "x"}), i * 60_000, 1.0 + i)
        st.add(from_dict({"__name__": "a", "job": "y"}), i * 60_000, 100.0 - i)
    _same_values(exprs, theirs, st, 100 * 60_000)


def test_check_rules_accepts_deep_rules_as_promtool_does_and_quickly(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    path = tmp_path / "deep.yml"
    rules = [{"record": f"deep_{i}", "expr": e} for i, e in enumerate([
        "+".join(["1"] * 5000), "(" * 10000 + "up" + ")" * 10000, "-" * 20000 + "up", _chain(5000, "+-*/%^"),
        "abs(" * 10000 + "up" + ")" * 10000, "sum(" * 3000 + "up" + ")" * 3000,
        "max_over_time(" * 2000 + "up" + "[5m:])" * 2000,
    ])]
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": rules}]}, width=1 << 30))
    theirs = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert theirs.returncode == 0, theirs.stderr
    mine = subprocess.run([sys.executable, "-m", "tocsin.cli", "check", "rules", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=scaled(60))
    assert mine.returncode == 0, mine.stderr[-2000:]
    assert "SUCCESS: 7 rules found" in mine.stdout, mine.stdout


def test_what_cannot_be_split_is_refused_not_crashed() -> None:
    for expr in ["1 +", "(" * 10000 + "1", "1" + ")" * 10000, "a " + " b" * 5000, "abs(" * 5000 + ")" * 5000,
                 "+".join(["1"] * 3000) + ' + "s"', "+".join(["a"] * 3000) + " > 1 > 2 and 1"]:
        with pytest.raises(PromQLError):
            parse(expr)


def test_deep_expressions_both_refuse_or_both_accept(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    cases = {
        "type error at the end": "+".join(["1"] * 3000) + ' + "s"',
        "scalar comparison without bool": "+".join(["1"] * 3000) + " > 1",
        "set operator on scalars": " and ".join(["1"] * 3000),
        "unclosed": "(" * 5000 + "1" + ")" * 4999,
        "one too many": "(" * 5000 + "1" + ")" * 5001,
        "dangling operator": " + ".join(["up"] * 3000) + " +",
        "group_left without matching": " * on(job) group_left ".join(["up"] * 3000),
        "bool on vectors": " > bool ".join(["up"] * 3000),
        "unary on a string": "-" * 5000 + '"s"',
        "unary on a range": "-" * 5000 + "up[5m]",
        "deep paren range": "(" * 5000 + "up[5m]" + ")" * 5000,
        "subquery of a deep chain": "max_over_time((" + " + ".join(["up"] * 3000) + ")[5m:1m])",
        "offset on parens": "(" + " + ".join(["up"] * 3000) + ") offset 5m",
        "deep calls": "abs(" * 3000 + "up" + ")" * 3000,
        "deep aggregations": "sum(" * 3000 + "up" + ")" * 3000,
        "deep subqueries": "max_over_time(" * 2000 + "up" + "[5m:])" * 2000,
        "deep topk": "topk(1, " * 2000 + "up" + ")" * 2000,
        "string deep in calls": "abs(" * 3000 + '"s"' + ")" * 3000,
        "range deep in aggregations": "sum(" * 3000 + "up[5m]" + ")" * 3000,
        "range selector on a call": "max_over_time(" * 2000 + "up" + "[5m])" * 2000,
        "unclosed call": "abs(" * 3000 + "up" + ")" * 2999,
        "wrong arity deep": "clamp_max(" * 2000 + "up" + ")" * 2000,
        "bad regexp deep": "label_replace(" * 2000 + "up" + ', "l", "$1", "l", "(")' * 2000,
        "scalar deep in aggregations": "sum(" * 3000 + "1" + ")" * 3000,
    }
    disagree = []
    for name, expr in cases.items():
        path = tmp_path / "r.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r", "expr": expr}]}]},
                                       width=1 << 30))
        theirs = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                                timeout=60).returncode == 0
        try:
            parse(expr)
            mine = True
        except PromQLParseError:
            mine = False
        if mine != theirs:
            disagree.append(f"{name}: promtool {'accepts' if theirs else 'refuses'}, tocsin does not")
    assert not disagree, disagree


def test_a_long_chain_is_bound_by_the_query_timeout() -> None:
    st = MemoryStorage()
    st.add(from_dict({"__name__": "up"}), 0, 1.0)
    with pytest.raises(PromQLError, match="query timed out"):
        instant_query(" + ".join(["up"] * 20_000), st, 1000, timeout_s=0.0)
