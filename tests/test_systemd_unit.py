"""The unit file on its own: systemd's verdicts on syntax and on the sandbox."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO, require_tool

UNIT = REPO / "systemd" / "tocsin.service"


def test_unit_exposure_score_is_at_most_1_5():
    analyze = require_tool("systemd-analyze")
    out = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(UNIT)],
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for tocsin\.service: (\d+\.\d+)", out.stdout + out.stderr)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= 1.5, out.stdout


def test_unit_verifies_clean_apart_from_the_program_not_installed_here():
    """The e2e test verifies the installed unit with no exception at all."""
    analyze = require_tool("systemd-analyze")
    out = subprocess.run([analyze, "verify", "--man=no", str(UNIT)], capture_output=True, text=True, timeout=60)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    missing = "Command /opt/tocsin/venv/bin/tocsin is not executable"
    assert all(missing in line for line in lines), lines


def test_unit_has_the_lifecycle_settings():
    text = UNIT.read_text()
    for setting in ("Type=notify", "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
                    "RestartPreventExitStatus=78", "StateDirectory=tocsin", "LogsDirectory=tocsin",
                    "ConfigurationDirectory=tocsin", "DynamicUser=yes",
                    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):
        assert f"\n{setting}\n" in text, setting
    assert re.search(r"\nWatchdogSec=\d+s\n", text) and re.search(r"\nTimeoutStopSec=\d+s\n", text)
