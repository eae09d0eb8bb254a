"""Every receiver kind against a real local peer: HTTP sinks, an SMTP server, Alertmanager."""

from __future__ import annotations

import hashlib
import logging
import socket
import subprocess
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import requests
from prometheus_client import CollectorRegistry

from conftest import free_port, require_tool, wait_for
from notify_sinks import HTTPSink, validate_pagerduty_v2, validate_slack, validate_webhook_v4
from tocsin.config import parse_config
from tocsin.notify import Alert, Notifier, NotifyMetrics

FAST = {"group_by": ["alertname"], "group_wait": "0s", "group_interval": "200ms", "repeat_interval": "1h"}


def start(tmp_path, receiver: dict, **extra) -> Notifier:
    raw = {"global": {"external_labels": {"site": "lab"}},
           "alerting": {"route": {"receiver": receiver["name"], **FAST}, "receivers": [receiver],
                        "delivery": {"initial_backoff": "50ms", "max_backoff": "100ms",
                                     "breaker_failures": 50, "breaker_cooldown": "1s"}, **extra}}
    config = parse_config(raw, "test.yml")
    notifier = Notifier(config.alerting, state_dir=str(tmp_path / "state"), external_labels={"site": "lab"},
                        metrics=NotifyMetrics(CollectorRegistry()), external_url="http://tocsin.test:9469")
    notifier.start()
    return notifier


def alert(name: str = "HighLatency", status: str = "firing", severity: str = "critical", **labels: str) -> Alert:
    return Alert(labels={"alertname": name, "severity": severity, "target": "api", **labels},
                 annotations={"summary": "latency above 1s", "description": "p99 is 2.3s"},
                 starts_at=datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
                 generator_url="http://127.0.0.1:9469/rules", status=status)


@pytest.fixture
def sinks():
    made: list[HTTPSink] = []

    def make(**kw) -> HTTPSink:
        made.append(HTTPSink(**kw))
        return made[-1]

    yield make
    for s in made:
        s.stop()


def test_webhook_v4_payload_idempotency_and_resolution(tmp_path, sinks, monkeypatch):
    sink = sinks(validate=validate_webhook_v4)
    monkeypatch.setenv("HOOK_URL", sink.url + "/hook")
    n = start(tmp_path, {"name": "hook", "webhook": {"url": "${HOOK_URL}"}})
    try:
        n.submit([alert(), alert(target="db")])
        wait_for(lambda: sink.bodies(), timeout=5, what="webhook")
        n.submit([alert(status="resolved"), alert(target="db", status="resolved")])
        wait_for(lambda: len(sink.bodies()) == 2, timeout=5, what="resolved webhook")
        fire, res = sink.bodies()
        assert fire["status"] == "firing" and res["status"] == "resolved"
        assert fire["receiver"] == "hook" and fire["externalURL"] == "http://tocsin.test:9469"
        assert fire["groupLabels"] == {"alertname": "HighLatency"} and fire["truncatedAlerts"] == 0
        assert fire["commonLabels"] == {"alertname": "HighLatency", "severity": "critical", "site": "lab"}
        assert fire["commonAnnotations"] == {"summary": "latency above 1s", "description": "p99 is 2.3s"}
        assert {a["labels"]["target"] for a in fire["alerts"]} == {"api", "db"}
        assert fire["alerts"][0]["startsAt"] == "2024-05-01T12:00:00.000Z"
        assert fire["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        assert all(a["status"] == "resolved" for a in res["alerts"])
        keys = [r.headers["Idempotency-Key"] for r in sink.received]
        assert len(set(keys)) == 2 and all(len(k) == 36 for k in keys)
        assert sink.received[0].path == "/hook" and not sink.errors
    finally:
        n.stop()


def test_webhook_max_alerts_truncates(tmp_path, sinks):
    sink = sinks(validate=validate_webhook_v4)
    n = start(tmp_path, {"name": "hook", "webhook": {"url": sink.url, "max_alerts": 2}})
    try:
        n.submit([alert(target=f"t{i}") for i in range(5)])
        body = wait_for(lambda: sink.bodies(), timeout=5, what="webhook")[0]
        assert len(body["alerts"]) == 2 and body["truncatedAlerts"] == 3
    finally:
        n.stop()


def test_slack_colours_and_send_resolved_default_false(tmp_path, sinks):
    sink = sinks(validate=validate_slack)
    secret = tmp_path / "slack.url"
    secret.write_text(sink.url + "/services/T000/B000/XXXX\n")
    n = start(tmp_path, {"name": "chat", "slack": {"webhook_url_file": str(secret), "channel": "#ops"}})
    try:
        n.submit([alert(severity="warning")])
        body = wait_for(lambda: sink.bodies(), timeout=5, what="slack")[0]
        attachment = body["attachments"][0]
        assert attachment["color"] == "warning" and attachment["title"] == "[FIRING:1] HighLatency"
        assert "latency above 1s" in attachment["text"] and body["channel"] == "#ops"
        assert sink.received[0].path == "/services/T000/B000/XXXX"
        n.submit([alert(severity="warning", status="resolved")])
        time.sleep(0.6)
        assert len(sink.bodies()) == 1, "slack does not send resolved by default (Alertmanager's default)"
    finally:
        n.stop()
    sink2 = sinks(validate=validate_slack)
    n = start(tmp_path / "2", {"name": "chat", "slack": {"webhook_url": sink2.url, "send_resolved": True}})
    try:
        n.submit([alert()])
        wait_for(lambda: sink2.bodies(), timeout=5, what="slack")
        assert sink2.bodies()[0]["attachments"][0]["color"] == "danger"
        n.submit([alert(status="resolved")])
        wait_for(lambda: len(sink2.bodies()) == 2, timeout=5, what="slack resolved")
        assert sink2.bodies()[1]["attachments"][0]["color"] == "good"
        assert sink2.bodies()[1]["attachments"][0]["title"] == "[RESOLVED] HighLatency"
    finally:
        n.stop()


def test_pagerduty_trigger_then_resolve_with_one_dedup_key(tmp_path, sinks):
    sink = sinks(validate=validate_pagerduty_v2, status=202)
    n = start(tmp_path, {"name": "pager", "pagerduty": {"routing_key": "R0UT1NGKEY0123456789012345678901",
                                                        "url": sink.url + "/v2/enqueue"}})
    try:
        n.submit([alert()])
        wait_for(lambda: sink.bodies(), timeout=5, what="trigger")
        n.submit([alert(target="db")])
        wait_for(lambda: len(sink.bodies()) == 2, timeout=5, what="update of the group")
        n.submit([alert(status="resolved"), alert(target="db", status="resolved")])
        wait_for(lambda: len(sink.bodies()) == 3, timeout=5, what="resolve")
        trigger, update, resolve = sink.bodies()
        assert trigger["event_action"] == update["event_action"] == "trigger"
        assert resolve["event_action"] == "resolve" and "payload" not in resolve
        assert trigger["dedup_key"] == update["dedup_key"] == resolve["dedup_key"]
        assert trigger["dedup_key"] == hashlib.sha256(b'{}:{alertname="HighLatency"}').hexdigest(), "Alertmanager's"
        assert trigger["payload"]["severity"] == "critical"
        assert trigger["payload"]["summary"].startswith("[FIRING:1] HighLatency")
        assert sink.received[0].path == "/v2/enqueue" and not sink.errors
    finally:
        n.stop()


def test_log_receiver_writes_a_structured_record(tmp_path, caplog):
    n = start(tmp_path, {"name": "console", "log": {}})
    try:
        with caplog.at_level(logging.INFO, logger="tocsin.notify"):
            n.submit([alert()])
            record = wait_for(lambda: next((r for r in caplog.records if r.name == "tocsin.notify.log"), None),
                              timeout=5, what="log record")
        assert record.levelno == logging.WARNING
        assert record.getMessage() == "alert firing: HighLatency on api: latency above 1s"
        assert record.json_fields["labels"]["site"] == "lab" and record.json_fields["status"] == "firing"
        assert record.receiver == "console"
    finally:
        n.stop()


def test_log_receiver_lines_read_as_text_and_carry_the_structure_as_json(tmp_path, caplog):
    """The console (the journal) gets one short line per alert, no Python repr; JSON logs get the fields."""
    import json

    from tocsin.logs import ContextFilter, JSONFormatter, TextFormatter

    n = start(tmp_path, {"name": "console", "log": {}})
    try:
        with caplog.at_level(logging.INFO, logger="tocsin.notify"):
            n.submit([alert(site="lab"), alert("DiskFull", target="db")])
            records = wait_for(lambda: (lambda rs: rs if len(rs) >= 2 else None)(
                [r for r in caplog.records if r.name == "tocsin.notify.log"]), timeout=5, what="two log records")
    finally:
        n.stop()
    for record in records:
        ContextFilter().filter(record)
    lines = sorted(TextFormatter(journal=True).format(r) for r in records)
    assert lines == ["<4>alert firing: DiskFull on db: latency above 1s receiver=console",
                     "<4>alert firing: HighLatency on api: latency above 1s receiver=console"]
    as_json = [json.loads(JSONFormatter().format(r)) for r in records]
    assert {d["labels"]["alertname"] for d in as_json} == {"HighLatency", "DiskFull"}
    assert all(d["receiver"] == "console" and d["annotations"]["description"] == "p99 is 2.3s" for d in as_json)


def test_text_log_fields_are_never_python_reprs():
    from tocsin.logs import TextFormatter

    record = logging.LogRecord("tocsin.x", logging.INFO, __file__, 1, "something", None, None)
    record.fields = {"labels": {"a": "b"}, "count": 3}
    assert TextFormatter(journal=True).format(record) == '<6>something labels={"a":"b"} count=3'


def test_email_over_starttls_with_auth(tmp_path):
    trustme = pytest.importorskip("trustme")
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    import ssl

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    received = []

    class Handler:
        async def handle_DATA(self, _server, session, envelope):  # noqa: N802 - aiosmtpd's API
            received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode(), session.authenticated))
            return "250 OK"

    def authenticate(_server, _session, _envelope, _mechanism, auth_data):
        return AuthResult(success=auth_data.login == b"tocsin" and auth_data.password == b"s3cret-pw")

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=server_ctx,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    controller.start()
    password = tmp_path / "pw"
    password.write_text("s3cret-pw\n")
    n = start(tmp_path, {"name": "mail", "email": {
        "to": "ops@example.org, oncall@example.org", "from": "tocsin@example.org", "smarthost": f"127.0.0.1:{port}",
        "auth_username": "tocsin", "auth_password_file": str(password), "ca_file": str(ca_file),
        "send_resolved": True}})
    try:
        n.submit([alert()])
        wait_for(lambda: received, timeout=10, what="e-mail")
        n.submit([alert(status="resolved")])
        wait_for(lambda: len(received) == 2, timeout=10, what="resolved e-mail")
        mail_from, rcpt, text, authenticated = received[0]
        assert mail_from == "tocsin@example.org" and rcpt == ["ops@example.org", "oncall@example.org"]
        assert authenticated
        assert "Subject: [FIRING:1] HighLatency" in text and "latency above 1s" in text
        assert "Idempotency-Key:" in text and "labels: alertname=HighLatency" in text
        assert "Subject: [RESOLVED] HighLatency" in received[1][2]
    finally:
        n.stop()
        controller.stop()


def test_secrets_never_reach_logs_or_api(tmp_path, caplog):
    port = free_port()
    secret_url = f"http://127.0.0.1:{port}/hooks/T0KEN-s3cr3t-path"
    n = start(tmp_path, {"name": "hook", "webhook": {"url": secret_url, "timeout": "200ms"}})
    try:
        with caplog.at_level(logging.DEBUG):
            n.submit([alert()])
            wait_for(lambda: any("delivery failed" in r.getMessage() for r in caplog.records), timeout=5,
                     what="a failed delivery")
        text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
        assert "T0KEN-s3cr3t-path" not in text and "<secret>" in text
        assert "T0KEN" not in repr(n.active_alerts()) + repr(n.receiver_status())
        assert "T0KEN" not in repr(n.config)
    finally:
        n.stop()


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_alertmanager_peers_get_each_submitted_batch_as_submitted(tmp_path, sinks):
    """No timers of its own: each submit routed to the receiver is one POST per URL, carrying the
    alerts as the rule engine submitted them (a firing alert's endsAt = its valid-until), and
    nothing arrives between submits."""
    first, second = sinks(), sinks()
    raw = {"global": {"external_labels": {"site": "lab"}},
           "alerting": {"route": {"receiver": "am", **FAST, "routes": [
                            {"matchers": ['alertname="Noise"'], "receiver": "drop"}]},
                        "receivers": [{"name": "am", "alertmanager": {"urls": [first.url, second.url + "/"]}},
                                      {"name": "drop"}]}}
    config = parse_config(raw, "test.yml")
    n = Notifier(config.alerting, state_dir=str(tmp_path / "state"), external_labels={"site": "lab"},
                 metrics=NotifyMetrics(CollectorRegistry()))
    n.start()
    try:
        now = datetime.now(timezone.utc)
        valid_until = now + timedelta(minutes=4)
        n.submit([replace(alert(), ends_at=valid_until), alert(target="db"), alert("Noise")])
        wait_for(lambda: first.bodies() and second.bodies(), timeout=5, what="a batch at each peer")
        for sink in (first, second):
            (batch,) = sink.bodies()
            assert [a["labels"]["target"] for a in batch] == ["api", "db"], "not grouped, Noise not routed here"
            api, db = batch
            assert set(api) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
            assert api["labels"] == {"alertname": "HighLatency", "severity": "critical", "target": "api", "site": "lab"}
            assert api["startsAt"] == "2024-05-01T12:00:00.000Z" and api["endsAt"] == iso(valid_until)
            assert api["generatorURL"] == "http://127.0.0.1:9469/rules"
            # Submitted without a valid-until: Prometheus's, 4 x its 1 min resend delay.
            ends = datetime.fromisoformat(db["endsAt"].replace("Z", "+00:00"))
            assert 230 < (ends - now).total_seconds() < 250
            assert sink.received[0].path == "/api/v2/alerts"
        later = valid_until + timedelta(minutes=1)
        n.submit([replace(alert(), ends_at=later)])
        wait_for(lambda: len(first.bodies()) == 2 and len(second.bodies()) == 2, timeout=5, what="the next batch")
        assert first.bodies()[1] == second.bodies()[1] and len(first.bodies()[1]) == 1
        assert first.bodies()[1][0]["endsAt"] == iso(later)
        resolved_at = now + timedelta(seconds=30)
        n.submit([replace(alert(status="resolved"), ends_at=resolved_at), alert(target="db", status="resolved")])
        wait_for(lambda: len(first.bodies()) == 3 and len(second.bodies()) == 3, timeout=5, what="the resolution")
        api, db = first.bodies()[2]
        assert api["endsAt"] == iso(resolved_at)
        assert now <= datetime.fromisoformat(db["endsAt"].replace("Z", "+00:00")) <= datetime.now(timezone.utc)
        time.sleep(1.0)
        assert len(first.bodies()) == len(second.bodies()) == 3, "nothing is sent that was not submitted"
        keys = [r.headers["Idempotency-Key"] for r in first.received + second.received]
        assert len(set(keys)) == 6, "each peer has its own outbox entries"
        assert not first.errors and not second.errors
    finally:
        n.stop()


def test_alertmanager_receives_then_resolves(tmp_path):
    """A real Alertmanager takes what the rule engine submits: the valid-until as endsAt, moved
    forward by each re-submission, then the resolution."""
    binary = require_tool("prometheus-alertmanager")
    port = free_port()
    (tmp_path / "am.yml").write_text("route: {receiver: blackhole, group_wait: 1s}\nreceivers: [{name: blackhole}]\n")
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "am.log").open("wb"))
    am = f"http://127.0.0.1:{port}"
    n = None
    try:
        wait_for(lambda: requests.get(am + "/-/ready", timeout=1).status_code == 200, timeout=20,
                 what="alertmanager ready")
        n = start(tmp_path, {"name": "am", "alertmanager": {"urls": [am]}})

        def listed():
            return [a for a in requests.get(am + "/api/v2/alerts", timeout=2).json()
                    if a["labels"].get("alertname") == "HighLatency"]

        def ends_at() -> datetime:
            return datetime.fromisoformat(listed()[0]["endsAt"].replace("Z", "+00:00"))

        valid_until = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=4)
        n.submit([replace(alert(), ends_at=valid_until)])
        found = wait_for(listed, timeout=10, what="alert in alertmanager")[0]
        assert found["labels"] == {"alertname": "HighLatency", "severity": "critical", "target": "api", "site": "lab"}
        assert found["status"]["state"] == "active" and found["annotations"]["summary"] == "latency above 1s"
        assert ends_at() == valid_until, "endsAt = the submitted valid-until"
        assert found["generatorURL"] == "http://127.0.0.1:9469/rules"
        # Re-submitted while firing (the rule engine's resend): endsAt moves forward.
        n.submit([replace(alert(), ends_at=valid_until + timedelta(seconds=4))])
        wait_for(lambda: ends_at() > valid_until, timeout=5, what="the re-submission")
        n.submit([alert(status="resolved")])

        def resolved():
            alerts = listed()
            if not alerts:
                return True  # Alertmanager no longer lists resolved alerts
            ends = datetime.fromisoformat(alerts[0]["endsAt"].replace("Z", "+00:00"))
            return ends <= datetime.now(timezone.utc)

        wait_for(resolved, timeout=10, what="alert resolved in alertmanager")
    finally:
        if n:
            n.stop()
        proc.terminate()
        proc.wait(10)


def test_a_daemon_forwards_what_its_rules_send_to_an_alertmanager(daemon_factory, tmp_path, sinks):
    """Rule engine → Alertmanager peer: the firing alert once (the next resend is a minute away)
    with endsAt = its valid-until (4 × the 1 min resend delay), then the resolution."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "down.yml").write_text("""
groups:
  - name: peer
    interval: 500ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
        labels: {severity: critical}
""")
    peer = sinks()
    port = free_port()
    daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 300ms, timeout: 250ms, state_dir: "{{dir}}/state",
          external_labels: {{site: lab}}}}
targets:
  - {{name: db, tcp: {{address: "127.0.0.1:{port}"}}}}
rule_files: [rules/*.yml]
alerting:
  route: {{receiver: am}}
  receivers:
    - {{name: am, alertmanager: {{urls: ["{peer.url}"]}}}}
""")
    fired = wait_for(lambda: peer.bodies(), timeout=20, what="the firing alert at the peer")[0]
    (sent,) = fired
    assert sent["labels"] == {"alertname": "TargetDown", "target": "db", "severity": "critical", "site": "lab"}
    ends = datetime.fromisoformat(sent["endsAt"].replace("Z", "+00:00"))
    assert 230 < (ends - datetime.now(timezone.utc)).total_seconds() <= 240, sent["endsAt"]
    assert "/graph?g0.expr=" in sent["generatorURL"]
    with socket.create_server(("127.0.0.1", port)):  # the target comes up
        resolved = wait_for(lambda: [b for b in peer.bodies()
                                     if b[0]["endsAt"] <= iso(datetime.now(timezone.utc))], timeout=20,
                            what="the resolution at the peer")
    assert len(peer.bodies()) == 2 and resolved[0][0]["startsAt"] == sent["startsAt"]
    assert not peer.errors
    assert daemon.stop() == 0
