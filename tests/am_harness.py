"""A real Alertmanager and amtool for differential tests: start, post alerts, check configs.

The references are Debian's prometheus-alertmanager 0.25 binaries; a test that uses them
calls `require_tool` first (fails in CI when they are missing).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

from conftest import free_port, require_tool, wait_for


@contextmanager
def alertmanager(workdir: Path, config: dict[str, Any], env: dict[str, str] | None = None) -> Iterator[str]:
    """Run Alertmanager with this config (written as JSON, which YAML reads); yield its URL."""
    binary = require_tool("prometheus-alertmanager")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "am.yml"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    with (workdir / "am.log").open("wb") as log:
        proc = subprocess.Popen([binary, f"--config.file={path}", f"--storage.path={workdir / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                                stdout=subprocess.DEVNULL, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, "alertmanager exited: " + (workdir / "am.log").read_text()[-2000:]
            return requests.get(url + "/-/ready", timeout=1).status_code == 200
        wait_for(ready, timeout=20, what="alertmanager ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def post_alerts(url: str, label_sets: list[dict[str, str]]) -> None:
    now = datetime.now(timezone.utc)
    body = [{"labels": labels, "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
            for labels in label_sets]
    response = requests.post(url + "/api/v2/alerts", json=body, timeout=10)
    assert response.status_code == 200, response.text


def check_configs(workdir: Path, configs: list[dict[str, Any]]) -> list[str | None]:
    """`amtool check-config` over many configs in one run: None where accepted, else the error."""
    amtool = require_tool("amtool")
    workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, config in enumerate(configs):
        path = workdir / f"c{index}.yml"
        path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    out = subprocess.run([amtool, "check-config", *map(str, paths)], capture_output=True, text=True, timeout=60)
    verdicts: dict[str, str | None] = {}
    for found in re.finditer(r"^Checking '([^']*)'\s+(SUCCESS|FAILED: (.*))$", out.stdout, re.MULTILINE):
        verdicts[found.group(1)] = None if found.group(2) == "SUCCESS" else found.group(3)
    assert len(verdicts) == len(paths), out.stdout[-2000:] + out.stderr[-2000:]
    return [verdicts[str(p)] for p in paths]


def routes_show(workdir: Path, config: dict[str, Any]) -> list[str]:
    """The matchers column of `amtool config routes show`, one entry per route below the root."""
    amtool = require_tool("amtool")
    path = workdir / "show.yml"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run([amtool, "config", "routes", "show", f"--config.file={path}"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if "  receiver:" in line][1:]  # the root first
    shown = [re.sub(r"^[ │├└─]*", "", line).rsplit("  receiver:", 1)[0] for line in lines]
    return ["{}" if s == "default-route" else s for s in shown]  # what it calls a route without matchers


def matcher_arg(name: str, value: str) -> str:
    """A label as amtool's command line takes it (a quoted equality matcher)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{escaped}"'


def routes_test(config_path: Path, labels: dict[str, str]) -> list[str]:
    """The receivers `amtool config routes test` resolves for these labels."""
    amtool = require_tool("amtool")
    out = subprocess.run([amtool, "config", "routes", "test", f"--config.file={config_path}",
                          *(matcher_arg(n, v) for n, v in labels.items())],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(",")
