"""Differential: the same rule unit-test files through `promtool test rules` and `tocsin test rules`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, require_tool

DATA = Path(__file__).parent / "ruletest_data"
FILES = sorted(DATA.glob("*_test.yml")) + sorted((REPO / "etc/rules/tests").glob("*.yml"))


def _tocsin(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tocsin.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.external
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_same_verdict_as_promtool(path: Path) -> None:
    promtool = require_tool("promtool")
    ours = _tocsin("test", "rules", path.name, cwd=path.parent)
    theirs = subprocess.run([promtool, "test", "rules", path.name], cwd=path.parent, capture_output=True,
                            text=True, timeout=60)
    assert ours.returncode == theirs.returncode, (
        f"promtool exit {theirs.returncode}:\n{theirs.stdout}{theirs.stderr}\n"
        f"tocsin exit {ours.returncode}:\n{ours.stdout}{ours.stderr}")
    if theirs.returncode != 0:  # the same failures, in the same words where it matters
        for line in theirs.stderr.splitlines():
            if line.strip().startswith(("alertname:", "rule:", "expr:")):
                assert line.strip() in ours.stderr, f"promtool said {line!r}; tocsin said:\n{ours.stderr}"


def test_expected_verdicts_without_promtool() -> None:
    """What promtool 2.42 says about each file, recorded, so the suite means something without it."""
    passing = {"between_ticks_test.yml", "tricky_test.yml", "tocsin_test.yml"}
    for path in FILES:
        result = _tocsin("test", "rules", path.name, cwd=path.parent)
        assert result.returncode == (0 if path.name in passing else 1), (path.name, result.stdout, result.stderr)


@pytest.mark.external
def test_check_rules_agrees_with_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    cases = {
        "good.yml": (REPO / "etc/rules/tocsin.yml").read_text(),
        "parse.yml": "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(rate(x[5m])\n",
        "dupgroup.yml": "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n",
        "unknown.yml": "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        fro: 5m\n",
        "both.yml": "groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: up\n",
        "recfor.yml": "groups:\n  - name: g\n    rules:\n      - record: b\n        expr: up\n        for: 1m\n",
        "template.yml": "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n"
                        "        annotations: {s: '{{ nosuchfunc $value }}'}\n",
        "duration.yml": "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5 minutes\n",
        "badlabel.yml": "groups:\n  - name: g\n    rules:\n      - record: 'a b'\n        expr: up\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        ours = _tocsin("check", "rules", name, cwd=tmp_path)
        theirs = subprocess.run([promtool, "check", "rules", name], cwd=tmp_path, capture_output=True, text=True)
        assert ours.returncode == theirs.returncode, (name, theirs.stderr, ours.stderr)
        if name == "good.yml":
            assert f"SUCCESS: {text.count('- alert:')} rules found" in ours.stdout
        else:
            assert "FAILED" in ours.stderr and name in ours.stderr
    ours = _tocsin("check", "rules", "parse.yml", cwd=tmp_path)
    assert 'parse.yml: 5:15: group "g", rule 1, "A": could not parse expression' in ours.stderr
