"""Grouping, repeat, resolution and the circuit breaker, against real HTTP sinks."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry

from conftest import free_port, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4
from tocsin.config import parse_config
from tocsin.notify import Alert, Notifier, NotifyMetrics


def alerting(url: str, **route) -> dict:
    return {"global": {"external_labels": {"site": "lab"}},
            "alerting": {"route": {"receiver": "hook", "group_by": ["alertname"], "group_wait": "200ms",
                                   "group_interval": "300ms", "repeat_interval": "1s", **route},
                         "receivers": [{"name": "hook", "webhook": {"url": url + "/hook", "timeout": "1s"}}],
                         "delivery": {"initial_backoff": "50ms", "max_backoff": "200ms",
                                      "breaker_failures": 3, "breaker_cooldown": "500ms"}}}


def make_notifier(tmp_path, raw: dict) -> tuple[Notifier, CollectorRegistry]:
    config = parse_config(raw, "test.yml")
    registry = CollectorRegistry()
    notifier = Notifier(config.alerting, state_dir=str(tmp_path / "state"),
                        external_labels=config.global_.external_labels, metrics=NotifyMetrics(registry))
    notifier.start()
    return notifier, registry


def down(i: int, name: str = "TargetDown", status: str = "firing") -> Alert:
    return Alert(labels={"alertname": name, "target": f"t{i:02d}", "severity": "critical"},
                 annotations={"summary": f"t{i:02d} is down"}, starts_at=datetime.now(timezone.utc),
                 generator_url="http://127.0.0.1/graph", status=status)


@pytest.fixture
def sink():
    s = HTTPSink(validate=validate_webhook_v4)
    yield s
    s.stop()


def test_fifty_targets_down_make_one_notification_then_repeat_then_one_resolved(tmp_path, sink):
    notifier, registry = make_notifier(tmp_path, alerting(sink.url))
    try:
        started = time.monotonic()
        notifier.submit([down(i) for i in range(50)])
        first = wait_for(lambda: sink.bodies(), timeout=5, what="first notification")
        assert len(first) == 1, "50 alerts of one group must make one notification"
        body = first[0]
        assert body["status"] == "firing" and len(body["alerts"]) == 50
        assert body["groupLabels"] == {"alertname": "TargetDown"}
        assert body["commonLabels"] == {"alertname": "TargetDown", "severity": "critical", "site": "lab"}
        assert body["groupKey"] == '{}:{alertname="TargetDown"}' and body["receiver"] == "hook"
        assert time.monotonic() - started >= 0.2, "group_wait must be honoured"
        # The rule engine keeps submitting the same firing alerts: no new notification until repeat_interval
        # (1 s): one repeat at most, one more for every second a slow machine stretched these submits by.
        first_seen = time.monotonic()
        for _ in range(4):
            notifier.submit([down(i) for i in range(50)])
            time.sleep(0.15)
        assert len(sink.bodies()) <= 2 + int(time.monotonic() - first_seen), len(sink.bodies())
        bodies = wait_for(lambda: len(sink.bodies()) >= 2 and sink.bodies(), timeout=5, what="repeat")
        assert bodies[1]["status"] == "firing" and bodies[1]["notification_reason"] == "repeat"
        keys = [r.headers["Idempotency-Key"] for r in sink.received]
        assert len(set(keys)) == len(keys)
        count = len(sink.bodies())
        notifier.submit([down(i, status="resolved") for i in range(50)])
        resolved = wait_for(lambda: [b for b in sink.bodies() if b["status"] == "resolved"], timeout=5,
                            what="resolved notification")
        time.sleep(1.2)  # past another repeat_interval: a resolved group is forgotten, nothing repeats
        assert len(resolved) == 1 and len(resolved[0]["alerts"]) == 50
        assert len(sink.bodies()) == count + 1
        assert all(a["status"] == "resolved" and a["endsAt"] != "0001-01-01T00:00:00Z" for a in resolved[0]["alerts"])
        assert not sink.errors
        assert registry.get_sample_value("tocsin_notifications_total", {"receiver": "hook"}) == len(sink.bodies())
        assert registry.get_sample_value("tocsin_outbox_length") == 0
    finally:
        notifier.stop()


def test_groups_by_label_and_new_alert_after_group_interval(tmp_path, sink):
    notifier, _ = make_notifier(tmp_path, alerting(sink.url, group_by=["alertname", "target"],
                                                   repeat_interval="1h"))
    try:
        notifier.submit([down(i) for i in range(3)])
        wait_for(lambda: len(sink.bodies()) == 3, timeout=5, what="one notification per target")
        assert sorted(b["groupLabels"]["target"] for b in sink.bodies()) == ["t00", "t01", "t02"]
        notifier.submit([down(0), Alert(labels={"alertname": "Other"}, status="firing")])
        wait_for(lambda: len(sink.bodies()) == 4, timeout=5, what="the new group")
        time.sleep(0.5)
        assert len(sink.bodies()) == 4, "an unchanged group does not repeat before repeat_interval"
    finally:
        notifier.stop()


def test_due_work_wakes_the_dispatcher_without_a_new_submit(tmp_path, sink):
    """No poll tick: the dispatcher sleeps until the next flush, repeat or expiry is due.

    One submit only; the flush after group_wait, the repeat after repeat_interval and the
    resolution after resolve_timeout (the alert is not re-submitted) all arrive on time."""
    raw = alerting(sink.url, repeat_interval="1s")
    raw["alerting"]["resolve_timeout"] = "2500ms"
    notifier, _ = make_notifier(tmp_path, raw)
    try:
        started = time.monotonic()
        notifier.submit([down(1)])
        wait_for(lambda: len(sink.bodies()) >= 1, timeout=5, what="the first notification")
        wait_for(lambda: len(sink.bodies()) >= 2, timeout=5, what="the repeat")
        resolved = wait_for(lambda: [b for b in sink.bodies() if b["status"] == "resolved"], timeout=10,
                            what="the resolution after resolve_timeout")
        assert resolved[0]["alerts"][0]["labels"]["target"] == "t01"
        from conftest import scaled

        assert time.monotonic() - started < scaled(8), "each step came when due, not after a long idle sleep"
        firing = [b for b in sink.bodies() if b["status"] == "firing"]
        assert 2 <= len(firing) <= 4, len(firing)  # first + repeats every ~1.3 s until resolved at 2.5 s
    finally:
        notifier.stop()


def test_group_wait_ending_after_resolution_sends_nothing(tmp_path, sink):
    from conftest import scaled

    group_wait = scaled(0.4)  # the resolution must come within it, on a loaded machine too
    notifier, _ = make_notifier(tmp_path, alerting(sink.url, group_wait=f"{round(group_wait * 1000)}ms"))
    try:
        submitted = time.monotonic()
        notifier.submit([down(1)])
        time.sleep(0.1)
        notifier.submit([down(1, status="resolved")])
        assert time.monotonic() - submitted < group_wait, "the machine was too slow to resolve within group_wait"
        time.sleep(group_wait + 0.6)
        assert sink.bodies() == [] and sink.attempts == 0
    finally:
        notifier.stop()


def test_dead_receiver_opens_breaker_then_half_open_trial_delivers(tmp_path):
    port = free_port()
    from conftest import scaled

    raw = alerting(f"http://127.0.0.1:{port}", group_wait="0s", repeat_interval="1h")
    # 500 ms on an idle machine: longer than the 0.3 s looked at below, however slow the machine
    raw["alerting"]["delivery"]["breaker_cooldown"] = f"{round(scaled(0.5) * 1000)}ms"
    notifier, registry = make_notifier(tmp_path, raw)
    circuit = lambda: registry.get_sample_value("tocsin_receiver_circuit_open", {"receiver": "hook"})  # noqa: E731
    attempts = lambda: registry.get_sample_value("tocsin_notifications_total", {"receiver": "hook"})  # noqa: E731
    sink = None
    try:
        assert circuit() == 0
        notifier.submit([down(1)])
        wait_for(lambda: circuit() == 1, timeout=5, what="circuit open")
        assert attempts() == 3 and registry.get_sample_value(
            "tocsin_notifications_failed_total", {"receiver": "hook"}) == 3
        time.sleep(0.3)
        assert attempts() == 3, "no attempt while the circuit is open"
        wait_for(lambda: attempts() == 4, timeout=3, what="half-open trial")
        assert circuit() == 1, "a failed trial keeps the circuit open"
        sink = HTTPSink(validate=validate_webhook_v4, port=port)
        wait_for(lambda: sink.bodies(), timeout=3, what="delivery once the receiver is back")
        wait_for(lambda: circuit() == 0, timeout=2, what="circuit closed")
        assert len(sink.bodies()) == 1 and attempts() == 5
        assert registry.get_sample_value("tocsin_outbox_length") == 0
    finally:
        notifier.stop()
        if sink:
            sink.stop()
