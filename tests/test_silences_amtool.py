"""Silences through Alertmanager's API v2, driven by the real `amtool` (Debian's prometheus-alertmanager).

One daemon with a target that is down and a webhook: a silence added with `amtool silence
add` keeps the firing alert from the webhook; `amtool silence expire` lets it through, while
it still fires; `amtool silence query` and `import` see and restore what the API holds; the
silences are in SQLite and a `kill -9` loses none. Every write needs the listener's basic
auth (amtool is given it through its --http.config.file).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from conftest import free_port, require_tool, scaled, wait_for
from notify_sinks import HTTPSink
from toggle_port import Port

RULES = """
groups:
  - name: silences
    interval: 300ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
        for: 2s
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.target }} is down"}
"""

PASSWORD = "amtool-pass"


def _config(sink_url: str, closed: int, auth: bool = False) -> str:
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    web = ', web: {basic_auth_users: {ops: "sha256:%s"}}' % digest if auth else ""
    return """
global: {listen_address: "127.0.0.1:{port}", interval: 300ms, timeout: 250ms, state_dir: "{dir}/state"WEB}
targets:
  - {name: db, tcp: {address: "127.0.0.1:CLOSED"}}
rule_files: [rules.yml]
alerting:
  route: {receiver: hook, group_by: [alertname], group_wait: 200ms, group_interval: 500ms, repeat_interval: 1h}
  receivers:
    - name: hook
      webhook: {url: "SINK/hook"}
""".replace("WEB", web).replace("CLOSED", str(closed)).replace("SINK", sink_url)


class Amtool:
    def __init__(self, path: str, url: str, tmp_path) -> None:
        self.path, self.url = path, url
        self.http_config = tmp_path / "amtool-http.yml"
        self.http_config.write_text(f"basic_auth: {{username: ops, password: {PASSWORD}}}\n")

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([self.path, f"--alertmanager.url={self.url}", f"--http.config.file={self.http_config}",
                                 *args], capture_output=True, text=True, timeout=scaled(20))
        if check:
            assert result.returncode == 0, f"amtool {' '.join(args)}: {result.returncode}\n{result.stderr}"
        return result

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "-o", "json").stdout)


def _firing(sink: HTTPSink) -> list[dict]:
    return [r.body for r in sink.received if r.body.get("status") == "firing"]


def test_amtool_silences_mute_and_release_a_firing_alert(daemon_factory, tmp_path):
    amtool_path = require_tool("amtool")
    (tmp_path / "rules.yml").write_text(RULES)
    sink = HTTPSink()
    target = Port()
    target.up()
    daemon = daemon_factory(_config(sink.url, target.port))
    amtool = Amtool(amtool_path, daemon.url, tmp_path)

    silence_id = amtool("silence", "add", "alertname=TargetDown", "target=~d.*", "--comment=db maintenance",
                        "--author=alice", "--duration=1h").stdout.strip()
    target.down()  # the maintenance starts once the silence is in place
    (listed,) = amtool.json("silence", "query")
    assert listed["id"] == silence_id and listed["status"]["state"] == "active"
    assert listed["createdBy"] == "alice" and listed["comment"] == "db maintenance"
    assert {(m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in listed["matchers"]} == {
        ("alertname", "TargetDown", False, True), ("target", "d.*", True, True)}

    # The alert fires, and is held back: amtool sees it suppressed, the webhook gets nothing.
    wait_for(lambda: daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1, timeout=15,
             what="TargetDown firing")
    (alert,) = wait_for(lambda: amtool.json("alert", "query", "--silenced"), what="the alert in /api/v2/alerts")
    assert alert["status"] == {"state": "suppressed", "silencedBy": [silence_id], "inhibitedBy": []}
    assert alert["labels"]["target"] == "db" and alert["receivers"] == [{"name": "hook"}]
    assert amtool.json("alert", "query") == []  # without --silenced, as Alertmanager does
    time.sleep(scaled(2.0))  # group_wait and three group intervals
    assert _firing(sink) == []

    # Expired while the alert still fires: the next flush notifies it.
    amtool("silence", "expire", silence_id)
    wait_for(lambda: _firing(sink), timeout=10, what="the firing notification after the silence expired")
    assert _firing(sink)[0]["alerts"][0]["labels"]["alertname"] == "TargetDown"
    assert amtool.json("silence", "query") == []
    (expired,) = amtool.json("silence", "query", "--expired")
    assert expired["id"] == silence_id and expired["status"]["state"] == "expired"

    # Import brings the exported silence back (a new id: the old one has expired).
    export = tmp_path / "silences.json"
    restored = dict(expired)
    restored["endsAt"] = "2099-01-01T00:00:00.000Z"
    export.write_text(json.dumps([restored]))
    new_id = amtool("silence", "import", str(export)).stdout.strip()
    assert new_id and new_id != silence_id
    (active,) = amtool.json("silence", "query")
    assert active["id"] == new_id and active["comment"] == "db maintenance"
    assert amtool.json("silence", "query", "target=~d.*")[0]["id"] == new_id
    assert amtool.json("silence", "query", "target=other") == []

    # Update keeps the id (same matchers and start, a later end), as Alertmanager does.
    (updated,) = amtool.json("silence", "update", new_id, "--duration=3h")
    assert updated["id"] == new_id and updated["endsAt"] < active["endsAt"]  # 3h from now, before 2099
    # A silence that starts later is pending until then.
    pending_id = amtool("silence", "add", "alertname=Later", "-c", "tonight", "--start=2098-01-01T00:00:00Z",
                        "--end=2098-01-01T02:00:00Z").stdout.strip()
    states = {s["id"]: s["status"]["state"] for s in amtool.json("silence", "query")}
    assert states == {new_id: "active", pending_id: "pending"}
    assert daemon.sample("tocsin_silences", state="active") == 1
    assert daemon.sample("tocsin_silences", state="pending") == 1
    assert daemon.sample("tocsin_silences", state="expired") == 1  # the first one (the update was in place)


def test_silences_survive_kill_9(daemon_factory, tmp_path):
    amtool_path = require_tool("amtool")
    (tmp_path / "rules.yml").write_text(RULES)
    sink = HTTPSink()
    daemon = daemon_factory(_config(sink.url, free_port()))
    amtool = Amtool(amtool_path, daemon.url, tmp_path)
    silence_id = amtool("silence", "add", "alertname=TargetDown", "-c", "kept", "-d", "2h").stdout.strip()
    daemon.proc.kill()  # SIGKILL right after the API answered
    daemon.proc.wait()
    daemon.start()
    (listed,) = amtool.json("silence", "query")
    assert listed["id"] == silence_id and listed["comment"] == "kept"
    wait_for(lambda: daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1, timeout=15,
             what="TargetDown firing")
    time.sleep(scaled(1.5))
    assert _firing(sink) == []  # still muted after the restart


def test_a_silence_ends_on_time_and_the_alert_is_notified_then(daemon_factory, tmp_path):
    amtool_path = require_tool("amtool")
    (tmp_path / "rules.yml").write_text(RULES)
    sink = HTTPSink()
    target = Port()
    target.up()
    daemon = daemon_factory(_config(sink.url, target.port))
    amtool = Amtool(amtool_path, daemon.url, tmp_path)
    amtool("silence", "add", "alertname=TargetDown", "-c", "short", "-d", "4s")
    added = time.monotonic()
    target.down()
    wait_for(lambda: daemon.sample("ALERTS", alertname="TargetDown", alertstate="firing") == 1, timeout=15,
             what="TargetDown firing")
    assert _firing(sink) == [] or time.monotonic() - added > 4  # muted while the silence lasts
    wait_for(lambda: _firing(sink), timeout=10, what="the page once the silence ended by itself")
    assert time.monotonic() - added >= 4
    assert amtool.json("silence", "query") == []


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/api/v2/silences", {"matchers": [{"name": "a", "value": "b", "isRegex": False}],
                                  "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
                                  "createdBy": "x", "comment": "y"}),
    ("DELETE", "/api/v2/silence/0b6a5d2c-5f70-4f7e-9a3c-000000000000", None),
    ("POST", "/api/v1/alerts/0123456789abcdef/ack", {}),
])
def test_every_write_needs_the_listener_auth(daemon_factory, tmp_path, method, path, body):
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory(_config("http://127.0.0.1:9", free_port(), auth=True), start=False)
    daemon.start(wait_ready=False)
    wait_for(lambda: requests.get(daemon.url + "/-/ready", auth=("ops", PASSWORD), timeout=2).ok, what="ready")
    refused = requests.request(method, daemon.url + path, json=body, timeout=5)
    assert refused.status_code == 401
    wrong = requests.request(method, daemon.url + path, json=body, auth=("ops", "nope"), timeout=5)
    assert wrong.status_code == 401
    allowed = requests.request(method, daemon.url + path, json=body, auth=("ops", PASSWORD), timeout=5)
    assert allowed.status_code in (200, 404, 500), allowed.text  # past auth: the API's own answer
    assert requests.get(daemon.url + "/api/v2/silences", auth=("ops", "nope"), timeout=5).status_code == 401


def test_amtool_with_and_without_credentials(daemon_factory, tmp_path):
    amtool = require_tool("amtool")
    (tmp_path / "rules.yml").write_text(RULES)
    daemon = daemon_factory(_config("http://127.0.0.1:9", free_port(), auth=True), start=False)
    daemon.start(wait_ready=False)
    wait_for(lambda: requests.get(daemon.url + "/-/ready", auth=("ops", PASSWORD), timeout=2).ok, what="ready")
    add = ("silence", "add", "alertname=X", "-c", "why")
    anonymous = subprocess.run([amtool, f"--alertmanager.url={daemon.url}", *add], capture_output=True, text=True,
                               timeout=scaled(20))
    assert anonymous.returncode != 0 and "401" in anonymous.stderr + anonymous.stdout
    assert requests.get(daemon.url + "/api/v2/silences", auth=("ops", PASSWORD), timeout=5).json() == []
    silence_id = Amtool(amtool, daemon.url, tmp_path)(*add).stdout.strip()
    (listed,) = requests.get(daemon.url + "/api/v2/silences", auth=("ops", PASSWORD), timeout=5).json()
    assert listed["id"] == silence_id

    # `tocsin ack` takes the password from the environment, never from its arguments.
    wait_for(lambda: requests.get(daemon.url + "/api/v2/alerts", auth=("ops", PASSWORD), timeout=5).json(),
             timeout=15, what="the alert firing")
    ack = [sys.executable, "-m", "tocsin.cli", "ack", "TargetDown", "--url", daemon.url, "--user", "ops"]
    wrong = subprocess.run(ack, capture_output=True, text=True, timeout=scaled(20),
                           env={**os.environ, "TOCSIN_PASSWORD": "nope"}, stdin=subprocess.DEVNULL)
    assert wrong.returncode == 1 and "401" in wrong.stderr
    right = subprocess.run(ack, capture_output=True, text=True, timeout=scaled(20),
                           env={**os.environ, "TOCSIN_PASSWORD": PASSWORD}, stdin=subprocess.DEVNULL)
    assert right.returncode == 0, right.stderr
    (record,) = requests.get(daemon.url + "/api/v1/acks", auth=("ops", PASSWORD), timeout=5).json()["data"]
    assert record["active"] and record["labels"]["alertname"] == "TargetDown"
