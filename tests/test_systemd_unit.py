"""The unit file on its own: systemd's verdicts on syntax and on the sandbox."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, require_tool

UNIT = REPO / "systemd" / "tocsin.service"


def _template(tmp_path: Path) -> Path:
    """tocsin@.service as `make install` writes it (install.sh derives it from tocsin.service)."""
    text = subprocess.run(["sh", str(REPO / "systemd" / "install.sh"), "template"], capture_output=True, text=True,
                          check=True, timeout=30).stdout
    path = tmp_path / "tocsin@.service"
    path.write_text(text)
    return path


@pytest.mark.parametrize("which", ["tocsin.service", "tocsin@.service"])
def test_unit_exposure_score_is_at_most_1_5(tmp_path, which):
    analyze = require_tool("systemd-analyze")
    unit = UNIT if which == "tocsin.service" else _template(tmp_path)
    out = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(unit)],
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for tocsin@?i?\.service: (\d+\.\d+)", out.stdout + out.stderr)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= 1.5, out.stdout


def test_the_template_runs_one_shard_per_instance_as_one_shared_user(tmp_path):
    analyze = require_tool("systemd-analyze")
    text = _template(tmp_path).read_text()
    assert "\nExecStart=/opt/tocsin/venv/bin/tocsin run --config /etc/tocsin/tocsin.yml --shard %i\n" in text
    assert "\nDynamicUser=yes\nUser=tocsin\n" in text  # instances share StateDirectory= and LogsDirectory=
    instance = tmp_path / "tocsin@1.service"
    instance.write_text(text)
    out = subprocess.run([analyze, "verify", "--man=no", str(instance)], capture_output=True, text=True, timeout=60)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert all("Command /opt/tocsin/venv/bin/tocsin is not executable" in line for line in lines), lines


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
