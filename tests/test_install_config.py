"""What `make install` puts in /etc/tocsin gives a service that alerts from the first start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tocsin.cli import main
from tocsin.config import load_config

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "systemd" / "install.sh"


def _install_config(config_dir: Path) -> str:
    proc = subprocess.run(["sh", str(INSTALL), "config"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CONFIG_DIR": str(config_dir)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_installed_configuration_loads_the_shipped_rules_and_routes_alerts_to_the_journal(tmp_path, capsys):
    config_dir = tmp_path / "etc-tocsin"
    _install_config(config_dir)
    shipped = sorted(p.name for p in (ROOT / "etc" / "rules").glob("*.yml"))
    assert shipped and sorted(p.name for p in (config_dir / "rules").glob("*.yml")) == shipped
    assert (config_dir / "rules" / "tests" / "tocsin_test.yml").is_file()

    assert main(["check", "config", str(config_dir / "tocsin.yml")]) == 0
    report = capsys.readouterr().out
    assert " 0 rules" not in report and "rules in 1 rule files" in report, report

    alerting = load_config(config_dir / "tocsin.yml").config.alerting
    assert alerting is not None
    default = alerting.receiver(alerting.route.receiver)
    assert default is not None and default.kind == "log"
    # The installed rule tests run where they are installed.
    assert main(["test", "rules", str(config_dir / "rules" / "tests" / "tocsin_test.yml")]) == 0


def test_a_second_install_keeps_the_operators_edits(tmp_path):
    config_dir = tmp_path / "etc-tocsin"
    _install_config(config_dir)
    (config_dir / "tocsin.yml").write_text("targets: []\n")
    (config_dir / "rules" / "tocsin.yml").write_text("groups: []\n")
    out = _install_config(config_dir)
    assert "keeping the existing" in out
    assert (config_dir / "tocsin.yml").read_text() == "targets: []\n"
    assert (config_dir / "rules" / "tocsin.yml").read_text() == "groups: []\n"


def test_the_shipped_configuration_says_how_prometheus_reaches_a_loopback_listener():
    text = (ROOT / "etc" / "tocsin.systemd.yml").read_text()
    assert "listen_address: 127.0.0.1:9469" in text
    assert "<host>:9469" not in text  # it listens on loopback: only a local Prometheus reaches it
