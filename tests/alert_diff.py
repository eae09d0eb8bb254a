"""Random alerting rules with templates: `tocsin test rules` against `promtool test rules` 2.42.

A seed gives a rule file (alerting rules over the random series of promql_gen, with a
random `for`, and labels and annotations from Go templates using $labels, $value and the
template functions Prometheus has) and a unit-test file asking, at random times, for
each alert with an empty expectation. Both tools then print every alert they hold, with
its expanded labels and annotations, in the same format; the two outputs must be the
same text. Their `check rules` verdicts on the rule file must be the same too.

Two classes of difference in wording only are set aside and counted (`_KNOWN`): parse
error messages (promtool's come from its goyacc parser, tocsin's from its own) and the
context Go's text/template puts in an execution error ("template: NAME:1:115: executing
"NAME" at <humanizeTimestamp $value>: "), which tocsin's template engine does not track.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import random
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from promql_gen import INTERVAL_S, POINTS, ExprGen, random_series

from tocsin.rules.files import check_rules_cli
from tocsin.rules.unit_tests import run_file

_TEMPLATES = [
    "{{ $value }}",
    "{{ $value | humanize }}",
    '{{ printf "%.2f" $value }}',
    '{{ printf "%g" $value }}',
    '{{ printf "%d" 3 }}',
    "{{ humanize1024 $value }}",
    "{{ humanizePercentage $value }}",
    "{{ humanizeDuration $value }}",
    "{{ humanizeTimestamp $value }}",
    "{{ $labels.job }}",
    "{{ $labels.__name__ }}",
    "{{ len $labels }}",
    "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
    "{{ if gt $value 10.0 }}big{{ else }}small{{ end }}",
    "{{ $labels.inst | printf \"%q\" }}",
    "{{ title \"hello world\" }} {{ toUpper $labels.job }}",
    "{{ reReplaceAll \"(.)\" \"<$1>\" $labels.job }}",
    '{{ with query "sum(c)" }}{{ . | first | value | humanize }}{{ end }}',
    '{{ with query "g" }}{{ len . }}{{ end }}',
    "{{ $externalLabels.env }}",
    "{{ .Value }} {{ .Labels.job }}",
    "{{ $value | printf \"%e\" }}",
    "{{ $value | printf \"%5.1f|%-8v|%x\" 1.0 }}",
    "{{ stripPort \"host:9100\" }} {{ match \"^a\" $labels.job }}",
]
_THRESHOLDS = ["0", "1", "10", "100", "0.5", "-1"]
_FORS = [None, "0s", "15s", "30s", "1m", "2m"]


@dataclass
class AlertCase:
    seed: int
    rules: dict[str, object]
    test: dict[str, object]
    n_tests: int


def make_alert_case(seed: int, n_rules: int = 8, times_per_rule: int = 4) -> AlertCase:
    rnd = random.Random(seed)
    series = random_series(rnd)
    gen = ExprGen(rnd)
    rules: list[dict[str, object]] = []
    tests: list[dict[str, object]] = []
    for i in range(n_rules):
        name = f"A{i}"
        expr = gen.vector(rnd.randint(0, 2)) if rnd.random() > 0.03 else gen.odd_syntax()
        if rnd.random() < 0.7:
            expr = f"({expr}) {rnd.choice(['>', '<', '>=', '!='])} {rnd.choice(_THRESHOLDS)}"
        rule: dict[str, object] = {"alert": name, "expr": expr}
        f = rnd.choice(_FORS)
        if f is not None:
            rule["for"] = f
        if rnd.random() < 0.7:
            rule["labels"] = {"severity": rnd.choice(["page", "ticket"]),
                              **({"v": rnd.choice(_TEMPLATES)} if rnd.random() < 0.5 else {})}
        rule["annotations"] = {f"a{k}": rnd.choice(_TEMPLATES) for k in range(rnd.randint(1, 3))}
        rules.append(rule)
        for t in sorted(rnd.sample(range(0, (POINTS - 1) * INTERVAL_S + 1, INTERVAL_S), times_per_rule)):
            tests.append({"alertname": name, "eval_time": f"{t}s"})
    rule_doc = {"groups": [{"name": "random", "rules": rules}]}
    test_doc = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": f"{INTERVAL_S}s",
        "tests": [{
            "interval": f"{INTERVAL_S}s",
            "external_labels": {"env": "prod"},
            "input_series": [
                {"series": s, "values": " ".join("_" if v is None else v for v in vals)} for s, vals in series
            ],
            "alert_rule_test": tests,
        }],
    }
    return AlertCase(seed, rule_doc, test_doc, len(tests))


_HEADER = re.compile(r"^Unit Testing: .*$", re.M)
_DUPLICATES = re.compile(r"(found duplicate series for the match group ).*?( on the \w+ hand-side of the operation: )"
                         r"\[.*?\];")
# Known differences in wording, not in behaviour: promtool's parse errors are goyacc's, and
# Go's template errors name the line:column and the command (see the module docstring).
_KNOWN = [
    ("parse error wording", re.compile(r"(could not parse expression: ).*")),
    ("template error wording", re.compile(r"(<error expanding template: ).*?(error calling \w+: )")),
]


def _normalize(text: str) -> str:
    """Without the header, nor the series a duplicate-series error names: promtool finds
    the first duplicate in the order it loaded the series, which varies by run."""
    text = _DUPLICATES.sub(lambda m: m[1] + "..." + m[2] + "[...];", text)
    return _HEADER.sub("", text).strip()


def _lenient(text: str) -> tuple[str, list[str]]:
    classes = []
    for name, rx in _KNOWN:
        text, n = rx.subn(lambda m: "".join(g or "" for g in m.groups()), text)
        if n:
            classes.append(name)
    return text, classes


def compare_alert_case(case: AlertCase, reruns: int = 4) -> tuple[list[str], list[str]]:
    """Differences between the two tools on the case, and the known wording classes that
    had to be set aside for the outputs to match (both empty when they print the same).
    promtool is run again when its output differs: values summed over several series
    (which reach annotations) follow its random load order, so one of its runs must match."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "rules.yml").write_text(yaml.safe_dump(case.rules, sort_keys=False))
        Path(tmp, "t.yml").write_text(yaml.safe_dump(case.test, sort_keys=False))
        their_check = subprocess.run(["promtool", "check", "rules", "rules.yml"], cwd=tmp, capture_output=True,
                                     text=True, timeout=60)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.chdir(tmp):
            ok = run_file("t.yml", out, err)
            my_check = check_rules_cli(["rules.yml"], io.StringIO(), io.StringIO())
        b = _normalize(out.getvalue() + err.getvalue())
        for _ in range(1 + reruns):
            theirs = subprocess.run(["promtool", "test", "rules", "t.yml"], cwd=tmp, capture_output=True, text=True,
                                    timeout=300)
            a = _normalize(theirs.stdout + theirs.stderr)
            if a == b or _lenient(a)[0] == _lenient(b)[0]:
                break
    if my_check != their_check.returncode:
        problems.append(f"seed {case.seed}: check rules: promtool exit {their_check.returncode}, tocsin {my_check}\n"
                        f"{their_check.stdout}{their_check.stderr}")
    if ok != (theirs.returncode == 0):
        problems.append(f"seed {case.seed}: test rules: promtool exit {theirs.returncode}, tocsin ok={ok}")
    known: list[str] = []
    if a != b:
        (la, ca), (lb, _) = _lenient(a), _lenient(b)
        if la == lb:
            known = ca
        else:
            diff = difflib.unified_diff(a.splitlines(), b.splitlines(), "promtool", "tocsin", lineterm="", n=4)
            problems.append(f"seed {case.seed}:\n" + "\n".join(diff))
    return problems, known
