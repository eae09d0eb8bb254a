"""Routing tree, matchers, inhibition, dedup decisions, config errors, expiry, and `tocsin notify test`."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry

from conftest import REPO, free_port, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4
from tocsin.config import parse_config
from tocsin.errors import ConfigError
from tocsin.notify import Alert, Notifier, NotifyMetrics
from tocsin.notify.dispatcher import needs_update
from tocsin.notify.matchers import parse_matchers
from tocsin.notify.notification import Notification
from tocsin.notify.outbox import LogEntry, Outbox
from tocsin.notify.router import build


def cfg(route: dict, receivers=("a", "b", "c"), inhibit=None) -> dict:
    return {"alerting": {"route": route, "receivers": [{"name": n, "log": {}} for n in receivers],
                         **({"inhibit_rules": inhibit} if inhibit else {})}}


def test_matcher_syntax_and_anchored_re2():
    assert [str(m) for m in parse_matchers('{a="1", b!="2",c=~"x|y", d!~ "z.*"}')] == \
        ['a="1"', 'b!="2"', 'c=~"x|y"', 'd!~"z.*"']
    (m,) = parse_matchers('job=~"api|db"')
    assert m.matches({"job": "api"}) and not m.matches({"job": "api2"}) and not m.matches({"job": "xapi"})
    (m,) = parse_matchers("severity=critical")
    assert m.matches({"severity": "critical"})
    (m,) = parse_matchers('team=""')
    assert m.matches({}) and not m.matches({"team": "x"})
    (m,) = parse_matchers(r'msg="say \"hi\"\n"')
    assert m.value == 'say "hi"\n'
    for bad in ('a=~"("', "=x", 'a="unterminated', "a", 'a="1" b="2"'):
        with pytest.raises(ValueError):
            parse_matchers(bad)


def test_routing_tree_continue_and_inheritance():
    config = parse_config(cfg({
        "receiver": "a", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "2s",
        "repeat_interval": "3h",
        "routes": [
            {"matchers": ['team="db"'], "receiver": "b", "continue": True, "group_wait": "5s",
             "routes": [{"matchers": ['severity="critical"'], "receiver": "c", "group_by": ["..."]}]},
            {"matchers": ['team=~"db|web"'], "receiver": "c"},
            {"matchers": ['team="web"'], "receiver": "b"},
        ]}), "t.yml").alerting
    root, _ = build(config)
    recv = lambda labels: [r.receiver for r in root.match(labels)]  # noqa: E731
    assert recv({"team": "ops"}) == ["a"]
    assert recv({"team": "db"}) == ["b", "c"]                 # continue: true -> next sibling too
    assert recv({"team": "db", "severity": "critical"}) == ["c", "c"]
    assert recv({"team": "web"}) == ["c"]                     # first match without continue stops
    leaf = root.match({"team": "db", "severity": "critical"})[0]
    assert (leaf.group_wait, leaf.group_interval, leaf.repeat_interval) == (5.0, 2.0, 3 * 3600.0)
    assert leaf.group_all and leaf.group_labels({"x": "1", "y": "2"}) == {"x": "1", "y": "2"}
    assert leaf.key == '{}/{team="db"}/{severity="critical"}'
    mid = root.match({"team": "db"})[0]
    assert mid.group_by == ("alertname",) and mid.group_labels({"alertname": "X", "t": "1"}) == {"alertname": "X"}
    assert mid.group_key({"alertname": "X"}) == '{}/{team="db"}:{alertname="X"}'
    assert root.routes[0].routes[0].receiver == "c" and root.group_wait == 1.0


def test_inhibition_needs_a_firing_source_with_equal_labels():
    config = parse_config(cfg({"receiver": "a"}, inhibit=[{
        "source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
        "equal": ["target", "zone"]}]), "t.yml").alerting
    _, inhibitor = build(config)
    muted = inhibitor.muter([{"alertname": "Down", "severity": "critical", "target": "api"}])
    assert muted({"alertname": "Slow", "severity": "warning", "target": "api"})       # zone missing on both
    assert not muted({"alertname": "Slow", "severity": "warning", "target": "db"})
    assert not muted({"alertname": "Slow", "severity": "warning", "target": "api", "zone": "eu"})
    assert not muted({"alertname": "Down", "severity": "critical", "target": "api"})
    assert not inhibitor.muter([])({"severity": "warning", "target": "api"})


def test_dedup_decisions_follow_alertmanager():
    f1, f2 = frozenset({"1"}), frozenset({"1", "2"})
    none = frozenset()
    assert needs_update(None, f1, none, True, 60, 100) == "new"
    assert needs_update(None, none, f1, True, 60, 100) == ""          # resolved before group_wait ended
    entry = LogEntry(f1, none, 90)
    assert needs_update(entry, f1, none, True, 60, 100) == ""
    assert needs_update(entry, f2, none, True, 60, 100) == "changed"
    assert needs_update(entry, f1, none, True, 60, 151) == "repeat"
    assert needs_update(entry, none, f1, False, 60, 100) == "resolved"
    assert needs_update(LogEntry(f2, none, 90), f1, frozenset({"2"}), True, 60, 100) == "changed"
    assert needs_update(LogEntry(f2, none, 90), f1, frozenset({"2"}), False, 60, 100) == ""


@pytest.mark.parametrize("alerting, message", [
    ({"route": {"receiver": "nope"}, "receivers": [{"name": "a"}]}, "route.receiver: undefined receiver 'nope'"),
    ({"route": {"receiver": "a", "routes": [{"receiver": "x"}]}, "receivers": [{"name": "a"}]},
     "route.routes[0].receiver: undefined receiver 'x'"),
    ({"route": {"receiver": "a"}, "receivers": [{"name": "a"}, {"name": "a"}]}, "duplicate receiver name 'a'"),
    ({"route": {"receiver": "a", "group_by": ["...", "x"]}, "receivers": [{"name": "a"}]}, "'...'"),
    ({"route": {"receiver": "a"}, "receivers": [{"name": "a", "webhook": {}}]}, "give url or url_file"),
    ({"route": {"receiver": "a"}, "receivers": [{"name": "a", "webhook": {"url": "u", "urll": 1}}]},
     "alerting.receivers[0].webhook.urll: unknown key"),
    ({"route": {"receiver": "a"}, "receivers": [{"name": "a", "log": {}, "slack": {"webhook_url": "u"}}]},
     "give one receiver kind"),
    ({"route": {"receiver": "a", "matchers": ['a="1"']}, "receivers": [{"name": "a"}]}, "must not have matchers"),
    ({"route": {"receiver": "a"}, "receivers": [{"name": "a"}],
      "inhibit_rules": [{"source_matchers": ['a=~"("'], "target_matchers": ["b=1"]}]},
     "alerting.inhibit_rules[0].source_matchers: invalid regular expression"),
])
def test_config_errors_name_the_key(alerting, message):
    with pytest.raises(ConfigError) as info:
        parse_config({"alerting": alerting}, "t.yml")
    assert any(message in line for line in info.value.errors), info.value.errors


def test_the_outbox_keeps_a_firing_alerts_valid_until(tmp_path):
    """An Alertmanager peer is sent a firing alert's endsAt, even after a restart; the webhook
    view of the same alert still shows Alertmanager's zero time."""
    valid_until = datetime(2024, 5, 1, 12, 4, tzinfo=timezone.utc)
    firing = Alert(labels={"alertname": "Down"}, starts_at=datetime(2024, 5, 1, 12, tzinfo=timezone.utc),
                   ends_at=valid_until)
    outbox = Outbox(str(tmp_path))
    outbox.commit([Notification(key="k", receiver="am", group_key="{}", status="firing", alerts=[firing])], {})
    (stored,) = outbox.head("am#0").notification.alerts
    outbox.close()
    assert stored == firing and stored.ends_at == valid_until
    assert stored.to_dict()["endsAt"] == "0001-01-01T00:00:00Z"


def test_expired_notifications_are_dropped_with_an_error_and_counted(tmp_path, caplog):
    state = str(tmp_path / "state")
    outbox = Outbox(state)
    old = Notification(key="k-old", receiver="hook", group_key="{}:{}", status="firing",
                       alerts=[Alert(labels={"alertname": "Old"})], created_at=time.time() - 7200)
    gone = Notification(key="k-gone", receiver="removed", group_key="{}:{}", status="firing",
                        alerts=[Alert(labels={"alertname": "Gone"})], created_at=time.time())
    outbox.commit([old, gone], {})
    outbox.close()
    port = free_port()
    config = parse_config({"alerting": {"route": {"receiver": "hook"}, "receivers": [
        {"name": "hook", "webhook": {"url": f"http://127.0.0.1:{port}/"}}], "delivery": {"expire_after": "1h"}}},
        "t.yml").alerting
    registry = CollectorRegistry()
    with caplog.at_level(logging.ERROR, logger="tocsin.notify"):
        n = Notifier(config, state_dir=state, metrics=NotifyMetrics(registry))
        n.start()
        try:
            wait_for(lambda: registry.get_sample_value("tocsin_outbox_length") == 0, timeout=5, what="dropped")
            wait_for(lambda: registry.get_sample_value("tocsin_notifications_expired_total",
                                                       {"receiver": "hook"}) == 1, timeout=5, what="counted")
        finally:
            n.stop()
    assert registry.get_sample_value("tocsin_notifications_expired_total", {"receiver": "removed"}) == 1
    assert registry.get_sample_value("tocsin_notifications_total", {"receiver": "hook"}) == 0
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("expired" in m for m in messages) and any("no longer configured" in m for m in messages)


def test_active_alerts_view_shows_state_and_since(tmp_path):
    config = parse_config({"alerting": {"route": {"receiver": "a", "group_wait": "1h"}, "receivers": [{"name": "a"}],
                                        "inhibit_rules": [{"source_matchers": ['severity="critical"'],
                                                           "target_matchers": ['severity="warning"']}]}},
                          "t.yml").alerting
    n = Notifier(config, state_dir=str(tmp_path), metrics=NotifyMetrics(CollectorRegistry()))
    n.start()
    try:
        n.submit([Alert(labels={"alertname": "Down", "severity": "critical"}),
                  Alert(labels={"alertname": "Slow", "severity": "warning"}),
                  Alert(labels={"alertname": "Gone"}, status="resolved")])
        states = wait_for(lambda: {a["labels"]["alertname"]: a["state"] for a in n.active_alerts()
                                   if a["state"] != "firing" or a["labels"]["alertname"] == "Down"}
                          if len({a["state"] for a in n.active_alerts()}) == 3 else None, timeout=5, what="states")
        assert states == {"Down": "firing", "Slow": "suppressed", "Gone": "resolved"}
        down = next(a for a in n.active_alerts() if a["labels"]["alertname"] == "Down")
        assert down["activeAt"].endswith("Z") and down["receivers"] == ["a"] and down["resolvedAt"] is None
    finally:
        n.stop()


def test_cli_notify_test_sends_through_the_real_receiver(tmp_path):
    sink = HTTPSink(validate=validate_webhook_v4)
    dead = free_port()
    config = tmp_path / "tocsin.yml"
    config.write_text(f"""
global: {{external_labels: {{site: lab}}}}
alerting:
  route: {{receiver: hook}}
  receivers:
    - {{name: hook, webhook: {{url: '{sink.url}/hook'}}}}
    - {{name: dead, webhook: {{url: 'http://127.0.0.1:{dead}/s3cret', timeout: 1s}}}}
""")
    run = lambda *a: subprocess.run([sys.executable, "-m", "tocsin.cli", "notify", "test", *a, "--config", str(config)],  # noqa: E731
                                    capture_output=True, text=True, timeout=30, cwd=REPO)
    try:
        ok = run("hook")
        assert ok.returncode == 0, ok.stderr
        assert "accepted" in ok.stdout
        body = sink.bodies()[0]
        assert body["alerts"][0]["labels"] == {"alertname": "TocsinTestNotification", "severity": "info", "site": "lab"}
        failed = run("dead")
        assert failed.returncode == 1 and "failed" in failed.stderr and "s3cret" not in failed.stderr
        missing = run("nope")
        assert missing.returncode == 1 and "no receiver named 'nope'" in missing.stderr
    finally:
        sink.stop()
