"""The files the guides show work as shown: each YAML block marked `<!-- file: PATH -->` is
written to PATH (per document), then rule files pass `check rules`, rule tests pass `test
rules`, and configurations pass `check config` — with promtool agreeing where it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI
from tocsin.cli import main

DOCS = Path(__file__).resolve().parent.parent / "docs"
MARKED_BLOCK = re.compile(r"^<!-- file: (\S+) -->\n```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _documents() -> list[str]:
    return sorted(p.name for p in DOCS.glob("*.md") if MARKED_BLOCK.search(p.read_text(encoding="utf-8")))


def test_the_guides_have_checked_examples():
    assert {"rules.md", "receivers.md"} <= set(_documents())


@pytest.mark.parametrize("document", _documents())
def test_every_marked_file_in_a_guide_passes_its_check(document, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.invalid/services/T0/B0/x")
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("SMTP_PASSWORD", "not-a-real-password")
    files = MARKED_BLOCK.findall((DOCS / document).read_text(encoding="utf-8"))
    for name, text in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for name, _ in files:
        path = str(tmp_path / name)
        if name.endswith("_test.yml"):
            command = ["test", "rules", path]
        elif name.startswith("rules/"):
            command = ["check", "rules", path]
        else:
            command = ["check", "config", path]
        assert main(command) == 0, f"{document}: {name}: {capsys.readouterr()}"
        if command[0] == "test":
            promtool = shutil.which("promtool")
            if promtool is None and IN_CI:
                pytest.fail("promtool is missing (CI must install it: see .ci/run)")
            if promtool:
                proc = subprocess.run([promtool, "test", "rules", path], capture_output=True, text=True, timeout=60)
                assert proc.returncode == 0, proc.stdout + proc.stderr
