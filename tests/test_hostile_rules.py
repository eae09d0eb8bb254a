"""Hostile rule files: `tocsin check rules` and a running daemon survive them, and say why.

The corpus (hostile_rules.py) is generated: expressions thousands of levels deep or long,
templates nested thousands deep. `check rules` runs in a subprocess with its address space
capped, so a crash (SIGSEGV), a RecursionError traceback or a memory blow-up fails the test;
the daemon gets each class of file on SIGHUP and must keep its old rules.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from hostile_rules import ACCEPTED_EXPRESSIONS, HOSTILE_EXPRESSIONS, HOSTILE_TEMPLATES, rule_file

from conftest import REPO, require_tool, scaled, wait_for
from tocsin import promql
from tocsin.templates import Template

ADDRESS_SPACE = 1536 << 20  # a check that needs more than this is a memory blow-up


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _check(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tocsin.cli", "check", "rules", *map(str, paths)],
                          capture_output=True, text=True, cwd=REPO, timeout=scaled(60), preexec_fn=_capped)


def _write(tmp_path: Path, cases: list[tuple[str, str]]) -> list[Path]:
    paths = []
    for i, (expr, annotation) in enumerate(cases):
        path = tmp_path / f"case{i:02d}.yml"
        path.write_text(rule_file(expr, annotation))
        paths.append(path)
    return paths


def test_check_rules_refuses_each_hostile_file_naming_file_rule_and_reason(tmp_path: Path) -> None:
    corpus = [(name, expr, "down", why) for name, expr, why in HOSTILE_EXPRESSIONS]
    corpus += [(name, "up == 0", tmpl, why) for name, tmpl, why in HOSTILE_TEMPLATES]
    paths = _write(tmp_path, [(expr, annotation) for _, expr, annotation, _ in corpus])
    started = time.monotonic()
    proc = _check(paths)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert time.monotonic() - started < scaled(30)
    errors = proc.stderr.splitlines()
    for (name, _, _, why), path in zip(corpus, paths, strict=True):
        mine = [line for line in errors if line.startswith(f"{path}: ")]
        assert len(mine) == 1, (name, mine)
        assert 'group "g", rule 1, "Hostile"' in mine[0], (name, mine[0][:300])
        assert why in mine[0], (name, mine[0][:300])
        assert len(mine[0]) < 1000, (name, "the error quotes the whole expression")


def test_check_rules_accepts_large_real_rules_as_promtool_does(tmp_path: Path) -> None:
    paths = _write(tmp_path, [(expr, "down") for _, expr in ACCEPTED_EXPRESSIONS])
    proc = _check(paths)
    assert proc.returncode == 0, proc.stderr[-2000:]
    promtool = require_tool("promtool")
    theirs = subprocess.run([promtool, "check", "rules", *map(str, paths)], capture_output=True, text=True, timeout=60)
    assert theirs.returncode == 0, theirs.stderr[-2000:]


UNBOUNDED_TEMPLATES = [
    ("{{range 1000000000}}{{end}}", "too expensive"),
    ('{{$x := "abcdefgh"}}{{range 40}}{{$x = printf "%s%s" $x $x}}{{end}}{{len $x}}', "result longer than"),
    ('{{range 100000}}{{printf "%900000d" 1}}{{end}}', "output too large"),
    ('{{reReplaceAll "(.*)" "$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1$1" (printf "%200000d" 1)}}', "result longer than"),
]

_EXPAND = """
import json, sys
from tocsin.templates import Template, TemplateError, alert_template_data
template = Template(sys.argv[1], "__alert_Hostile")  # passes the load-time check, as in promtool
try:
    out = template.execute(alert_template_data({}, {}, "", 1.0))
    print(json.dumps({"ok": len(out)}))
except TemplateError as exc:
    print(json.dumps({"error": str(exc)}))
"""


@pytest.mark.parametrize("text, why", UNBOUNDED_TEMPLATES)
def test_templates_that_would_allocate_without_bound_fail_with_a_reason(text: str, why: str) -> None:
    # In a capped subprocess: unbounded, these took all the memory of the machine.
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _EXPAND, text], capture_output=True, text=True, cwd=REPO,
                          timeout=scaled(30), preexec_fn=_capped)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert why in json.loads(proc.stdout)["error"]
    assert time.monotonic() - started < scaled(10)


def test_printf_refuses_widths_over_a_million_as_go_does() -> None:
    run = lambda text: Template(text, "t", alert=False).execute(None)  # noqa: E731
    assert run('{{printf "%999999999d|" 1}}') == "%!(NOVERB)%!(EXTRA int=1)"
    assert run('{{printf "%*d" 99999999 5}}') == "%!(BADWIDTH)5"
    assert run('{{printf "%.*f" 99999999 1.5}}').startswith("%!(BADPREC)")
    assert len(run('{{printf "%1000000d" 1}}')) == 1_000_000


def test_a_subquery_too_expensive_fails_the_query_with_prometheus_reasons() -> None:
    storage = promql.MemoryStorage()
    for t in range(0, 600_000, 15_000):
        storage.add(promql.from_dict({"__name__": "up", "job": "a"}), t, 1.0)
    started = time.monotonic()
    with pytest.raises(promql.PromQLEvalError, match="query timed out in expression evaluation"):
        promql.instant_query("max_over_time(up[1w:1ms])", storage, 600_000, timeout_s=0.5)
    assert time.monotonic() - started < scaled(3)
    with pytest.raises(promql.PromQLEvalError, match="too many samples"):
        promql.instant_query("max_over_time(up[1h:1ms])", storage, 600_000, max_samples=100_000)
    with pytest.raises(promql.PromQLEvalError, match="too many samples"):
        promql.instant_query("count_over_time(up[10m])", storage, 600_000, max_samples=10)
    with pytest.raises(promql.PromQLEvalError, match="too many samples"):
        promql.range_query("up", storage, 0, 600_000, 1, max_samples=10_000)
    assert promql.instant_query("count_over_time(up[10m])", storage, 600_000, max_samples=40)[0].value == 40


RULES = """
groups:
  - name: guard
    interval: 300ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
"""


def test_a_daemon_keeps_its_rules_through_a_sighup_with_each_class_of_hostile_file(daemon_factory, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "guard.yml").write_text(RULES)
    daemon = daemon_factory("""
global: {listen_address: "127.0.0.1:{port}", interval: 300ms, timeout: 250ms, state_dir: "{dir}/state"}
targets:
  - {name: db, tcp: {address: "127.0.0.1:9"}}
rule_files: [rules/*.yml]
""")
    wait_for(lambda: daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1,
             timeout=scaled(20), what="the alert firing")
    classes = HOSTILE_EXPRESSIONS
    for name, expr, why in [*classes, (HOSTILE_TEMPLATES[0][0], "up == 0", HOSTILE_TEMPLATES[0][2])]:
        hostile = rules / "hostile.yml"
        hostile.write_text(rule_file(expr, "down") if expr != "up == 0" else rule_file(annotation=HOSTILE_TEMPLATES[0][1]))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.sample("tocsin_config_last_reload_successful") == 0, timeout=scaled(20),
                 what=f"the reload with {name} refused")
        assert daemon.proc.poll() is None, name
        assert why in daemon.output(), name
        hostile.unlink()
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.sample("tocsin_config_last_reload_successful") == 1, timeout=scaled(20),
                 what=f"the reload after {name} accepted")
        assert daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1, name
    # What promtool accepts is loaded and evaluated, however deep, and shown by /api/v1/rules.
    deep = {"DeepChain": "vector(0) + " + " + ".join(["1"] * 5000) + " == 5000",
            "DeepParens": "(" * 10000 + "vector(1)" + ")" * 10000,
            "DeepUnary": "-" * 20000 + "vector(1) > 0",
            "DeepCalls": "abs(" * 10000 + "vector(1)" + ")" * 10000 + " > 0",
            "DeepSums": "sum(" * 3000 + "vector(1)" + ")" * 3000 + " > 0",
            # A window of 59 s holds one step of a minute: one evaluation a level, wherever `now` falls.
            "DeepSubqueries": "max_over_time(" * 2000 + "vector(1)" + "[59s:1m])" * 2000 + " > 0"}
    (rules / "deep.yml").write_text("groups:\n  - name: deep\n    interval: 300ms\n    rules:\n" + "".join(
        f"      - alert: {name}\n        expr: {json.dumps(expr)}\n" for name, expr in deep.items()))
    daemon.proc.send_signal(signal.SIGHUP)
    for name in deep:
        wait_for(lambda: daemon.sample("ALERTS", alertname=name, alertstate="firing") == 1,  # noqa: B023
                 timeout=scaled(20), what=f"{name} firing")
    assert daemon.sample("tocsin_config_last_reload_successful") == 1
    shown = requests.get(daemon.url + "/api/v1/rules", timeout=scaled(10)).json()["data"]["groups"]
    assert {r["name"]: r["query"] for g in shown for r in g["rules"] if g["name"] == "deep"} == deep
    assert daemon.stop() == 0
