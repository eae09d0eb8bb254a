"""Expressions printed as Prometheus 2.42 prints them in /api/v1/rules (pairs read from a real one)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import scaled
from tocsin.promql.printing import expression_text

PAIRS = [
    ("sum(rate(up[5m])) by (job) > 0.5", "sum by (job) (rate(up[5m])) > 0.5"),
    ('up{job="a",instance=~"x.*"} offset 1m', 'up{instance=~"x.*",job="a"} offset 1m'),
    ("avg without (instance) (up)", "avg without (instance) (up)"),
    ("(up + 1) * 2", "(up + 1) * 2"),
    ("up * on(job) group_left(instance) up", "up * on (job) group_left (instance) up"),
    ("probe_success == bool 0", "probe_success == bool 0"),
    ("1.5e3", "1500"),
    ('{__name__="up"}', '{__name__="up"}'),
    ("histogram_quantile(0.99, sum by (le, job, instance, handler) (rate(http_request_duration_seconds_bucket"
     '{job="api-server-long-name"}[5m])))',
     "histogram_quantile(0.99, sum by (le, job, instance, handler) (rate(http_request_duration_seconds_bucket"
     '{job="api-server-long-name"}[5m])))'),
    ('(sum(rate(errors_total{job="some-long-job-name"}[5m])) or vector(0)) / '
     '(sum(rate(requests_total{job="some-long-job-name"}[5m])) > 0)',
     '(sum(rate(errors_total{job="some-long-job-name"}[5m])) or vector(0)) / '
     '(sum(rate(requests_total{job="some-long-job-name"}[5m])) > 0)'),
    ('-sum(rate(errors_total{job="some-long-job-name-that-is-really-long"}[5m])) * on(job) group_left(team, owner) '
     'team_info{job="x"}',
     '-sum(rate(errors_total{job="some-long-job-name-that-is-really-long"}[5m])) * on (job) group_left (team, owner) '
     'team_info{job="x"}'),
]


@pytest.mark.parametrize("written,printed", PAIRS)
def test_expression_text_is_prometheus_string(written, printed):
    assert expression_text(written) == printed


def test_text_that_does_not_parse_is_kept():
    assert expression_text("  sum(  ") == "sum("


def test_expressions_too_deep_for_the_parser_library_are_shown_as_written():
    # The library recurses on the C stack: 10 000 parentheses or a 5 000-term chain killed
    # the process (SIGSEGV) that served /api/v1/rules. In a subprocess, so a crash fails here.
    script = """
import sys
from tocsin.promql.printing import expression_text
for expr in ["(" * 10000 + "up" + ")" * 10000, "+".join(["1"] * 5000), "abs(" * 3000 + "up" + ")" * 3000]:
    assert expression_text(" " + expr + " ") == expr, expr[:20]
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=scaled(60))
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), (proc.returncode, proc.stderr[-1000:])
