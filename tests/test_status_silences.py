"""The status pages show who silenced or acknowledged what, why and until when, and offer the button."""

from __future__ import annotations

import html
import time
from datetime import datetime, timedelta, timezone

import requests

from conftest import free_port, scaled, wait_for

RULES = """
groups:
  - name: down
    interval: 200ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
"""


def test_silences_and_acknowledgements_on_the_pages(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 200ms, timeout: 150ms, state_dir: "{{dir}}/state"}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{free_port()}"}}}}
rule_files: [rules.yml]
alerting:
  route: {{receiver: log}}
  receivers: [{{name: log, log: {{}}}}]
""")

    def firing() -> list[dict]:
        alerts = requests.get(daemon.url + "/api/v2/alerts", timeout=scaled(5)).json()
        return [a for a in alerts if a["labels"].get("alertname") == "TargetDown"]

    (alert,) = wait_for(firing, timeout=20, what="TargetDown firing")
    fingerprint = alert["fingerprint"]
    page = requests.get(f"{daemon.url}/alerts/{fingerprint}", timeout=scaled(5)).text
    assert f"fetch('/api/v1/alerts/{fingerprint}/ack'" in page and "acknowledge until resolved" in page

    ends = datetime.now(timezone.utc) + timedelta(hours=2)
    silence = {"matchers": [{"name": "target", "value": "db", "isRegex": False, "isEqual": True}],
               "startsAt": datetime.now(timezone.utc).isoformat(), "endsAt": ends.isoformat(),
               "createdBy": "alice", "comment": "disk swap in rack 4"}
    assert requests.post(daemon.url + "/api/v2/silences", json=silence, timeout=scaled(5)).status_code == 200
    overview = html.unescape(requests.get(daemon.url + "/", timeout=scaled(5)).text)
    assert "disk swap in rack 4" in overview and "by alice" in overview
    assert f"until {ends:%Y-%m-%d %H:%M}" in overview and 'target="db"' in overview

    answer = requests.post(f"{daemon.url}/api/v1/alerts/{fingerprint}/ack", timeout=scaled(5),
                           json={"createdBy": "bob", "comment": "on it"})
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + scaled(5)
    while "Acknowledged by bob" not in (page := requests.get(f"{daemon.url}/alerts/{fingerprint}",
                                                             timeout=scaled(5)).text):
        assert time.monotonic() < deadline, page
        time.sleep(0.2)
    assert ": on it. Quiet until it resolves." in page and "acknowledge until resolved" not in page
