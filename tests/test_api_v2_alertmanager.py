"""tocsin's API v2 next to a real Alertmanager 0.25 holding the same alert and the same silence.

tocsin forwards its alert to Debian's Alertmanager (an `alertmanager` receiver, so both
know the very same labels and annotations), the same `amtool silence add` goes to both,
and their answers are compared key by key: silences, alerts (with and without the
silenced ones), alert groups and status. Ids, fingerprints and times differ by nature;
their presence and format are compared instead.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import requests

from conftest import free_port, require_tool, scaled, wait_for

RULES = """
groups:
  - name: am
    interval: 300ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.target }} is down"}
"""

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _normal(value: Any, ids: dict[str, str]) -> Any:
    """Times, fingerprints and silence ids replaced by what they are, after checking their form."""
    if isinstance(value, dict):
        return {k: _normal(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_normal(v, ids) for v in value), key=repr)
    if isinstance(value, str):
        if value in ids:
            return ids[value]
        if TIME.match(value):
            return "<time>"
        if FINGERPRINT.match(value):
            return "<fingerprint>"
    return value


@pytest.mark.external
def test_api_v2_answers_as_alertmanager_does(daemon_factory, tmp_path):
    amtool = require_tool("amtool")
    binary = require_tool("prometheus-alertmanager")
    am_port = free_port()
    (tmp_path / "am.yml").write_text("route: {receiver: blackhole, group_by: [alertname], group_wait: 1s}\n"
                                     "receivers: [{name: blackhole}]\n")
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am'}",
                             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "am.log").open("wb"))
    real = f"http://127.0.0.1:{am_port}"
    try:
        wait_for(lambda: requests.get(real + "/-/ready", timeout=1).status_code == 200, timeout=20,
                 what="alertmanager ready")
        (tmp_path / "rules.yml").write_text(RULES)
        daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, state_dir: "{{dir}}/state"}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{free_port()}"}}}}
rule_files: [rules.yml]
alerting:
  route: {{receiver: blackhole, group_by: [alertname], group_wait: 1s}}
  receivers:
    - {{name: blackhole, alertmanager: {{urls: ["{real}"]}}}}
""")
        ours = daemon.url

        def amtool_run(url: str, *args: str) -> str:
            result = subprocess.run([amtool, f"--alertmanager.url={url}", *args], capture_output=True, text=True,
                                    timeout=scaled(20))
            assert result.returncode == 0, result.stderr
            return result.stdout

        ids = {}
        for url in (real, ours):
            ids[amtool_run(url, "silence", "add", "alertname=TargetDown", 'target=~"d.*"', "-c", "window",
                           "-a", "carol", "-d", "2h").strip()] = "<silence>"
        assert all(UUID.match(i) for i in ids)

        def get(base: str, path: str) -> Any:
            return requests.get(base + path, timeout=5).json()

        def alerts(base: str, query: str = "") -> Any:
            return _normal(get(base, "/api/v2/alerts" + query), ids)

        wait_for(lambda: alerts(real) and alerts(ours), timeout=20, what="the alert in both")
        assert alerts(ours) == alerts(real)
        (alert,) = get(ours, "/api/v2/alerts")
        assert alert["status"]["state"] == "suppressed" and alert["receivers"] == [{"name": "blackhole"}]
        for query in ("?silenced=false", "?active=false", "?filter=severity%3D%22critical%22",
                      "?filter=severity%3D%22none%22", "?receiver=black.*", "?receiver=other"):
            assert alerts(ours, query) == alerts(real, query), query
        assert _normal(get(ours, "/api/v2/alerts/groups"), ids) == _normal(get(real, "/api/v2/alerts/groups"), ids)
        assert _normal(get(ours, "/api/v2/silences"), ids) == _normal(get(real, "/api/v2/silences"), ids)
        assert json.loads(amtool_run(ours, "silence", "query", "-o", "json"))[0]["createdBy"] == "carol"

        for url, silence_id in zip((real, ours), ids, strict=True):
            amtool_run(url, "silence", "expire", silence_id)
        wait_for(lambda: alerts(ours) == alerts(real) and alerts(ours)[0]["status"]["state"] == "active",
                 timeout=10, what="both alerts active again")
        assert _normal(get(ours, "/api/v2/silences"), ids) == _normal(get(real, "/api/v2/silences"), ids)

        status_ours, status_real = get(ours, "/api/v2/status"), get(real, "/api/v2/status")
        assert set(status_ours) == set(status_real)
        assert set(status_ours["versionInfo"]) == set(status_real["versionInfo"])
        assert TIME.match(status_ours["uptime"]) and status_ours["cluster"]["status"] == status_real["cluster"]["status"]
        assert get(ours, "/api/v2/receivers") == get(real, "/api/v2/receivers")

        unknown = "/api/v2/silence/0b6a5d2c-0000-4000-8000-000000000000"
        good = {"matchers": [{"name": "a", "value": "b", "isRegex": False}], "startsAt": "2020-01-01T00:00:00Z",
                "endsAt": "2099-01-01T00:00:00Z", "createdBy": "x", "comment": "y"}
        for method, path, body in (
                ("DELETE", "/api/v2/silence/nope", None), ("GET", "/api/v2/silence/nope", None),
                ("DELETE", unknown, None), ("GET", unknown, None),
                ("POST", "/api/v2/silences", {**good, "createdBy": None}),
                ("POST", "/api/v2/silences", {**good, "id": unknown.rsplit("/", 1)[1]}),
                ("POST", "/api/v2/silences", {**good, "matchers": [{"name": "a", "value": ".*", "isRegex": True}]}),
                ("POST", "/api/v2/silences", {**good, "endsAt": "2021-01-01T00:00:00Z"}),
                ("POST", "/api/v2/silences", {**good, "matchers": []})):
            mine = requests.request(method, ours + path, json=body, timeout=5)
            theirs = requests.request(method, real + path, json=body, timeout=5)
            assert mine.status_code == theirs.status_code, (method, path, body, mine.text, theirs.text)
            if theirs.text.startswith('"'):  # Alertmanager's own reason (not go-swagger's)
                assert mine.json() == theirs.json(), (method, path, body)
    finally:
        proc.terminate()
        proc.wait(10)
