"""Time intervals: the dispatcher mutes a route's groups at flush time; Alertmanager 0.25's edge cases."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry

from conftest import scaled, wait_for
from notify_sinks import HTTPSink
from tocsin.config import parse_config
from tocsin.notify import Alert, Notifier, NotifyMetrics
from tocsin.timeintervals import TimeInterval, days_in_month, muted_at

ALWAYS = [{"weekdays": ["sunday:saturday"]}]
NEVER = [{"years": ["1999"]}]


def test_muted_and_inactive_routes_send_nothing_and_log_nothing(tmp_path):
    sink = HTTPSink()
    route = {"receiver": "hook", "group_by": ["alertname"], "group_wait": "0s", "group_interval": "200ms",
             "repeat_interval": "1h", "routes": [
                 {"matchers": ["alertname=Muted"], "mute_time_intervals": ["always"]},
                 {"matchers": ["alertname=Inactive"], "active_time_intervals": ["never"]},
                 {"matchers": ["alertname=Active"], "active_time_intervals": ["never", "always"],
                  "mute_time_intervals": ["never"]}]}
    config = parse_config({"alerting": {"route": route, "receivers": [{"name": "hook", "webhook": {"url": sink.url}}],
                                        "time_intervals": [{"name": "always", "time_intervals": ALWAYS},
                                                           {"name": "never", "time_intervals": NEVER}]}}, "t.yml")
    n = Notifier(config.alerting, state_dir=str(tmp_path / "state"), external_labels={},
                 metrics=NotifyMetrics(CollectorRegistry()))
    n.start()
    try:
        now = datetime.now(timezone.utc)
        n.submit([Alert(labels={"alertname": name}, starts_at=now) for name in ("Muted", "Inactive", "Active", "Plain")])
        wait_for(lambda: len(sink.bodies()) >= 2, timeout=5, what="the two notifications not muted")
        time.sleep(scaled(0.6))  # three more group_interval flushes: the muted groups stay quiet
        assert sorted(b["groupLabels"]["alertname"] for b in sink.bodies()) == ["Active", "Plain"]
    finally:
        n.stop()
        sink.stop()


def test_alertmanager_0_25_edge_cases():
    at = datetime(2025, 3, 30, 12, tzinfo=timezone.utc)  # a Sunday; Berlin moved its clocks that night
    berlin = ZoneInfo("Europe/Berlin")
    assert days_in_month(at.astimezone(berlin)) == 30, "743 hours in March over 24, truncated"
    assert days_in_month(datetime(2025, 10, 5, tzinfo=berlin)) == 31, "745 hours"
    assert days_in_month(datetime(2024, 2, 10, tzinfo=timezone.utc)) == 29
    last_day = TimeInterval.model_validate({"days_of_month": ["-1"], "location": "Europe/Berlin"})
    assert last_day.contains(datetime(2025, 3, 30, 12, tzinfo=timezone.utc)), "the 30th is the 'last' day in 0.25"
    assert not last_day.contains(datetime(2025, 3, 31, 12, tzinfo=timezone.utc))
    assert TimeInterval.model_validate({"days_of_month": ["31"]}).contains(datetime(2025, 1, 31, tzinfo=timezone.utc))
    assert not TimeInterval.model_validate({"days_of_month": ["30:31"]}).contains(
        datetime(2025, 2, 28, tzinfo=timezone.utc)), "a range starting after the month's end is skipped"
    assert TimeInterval.model_validate({"days_of_month": ["27:31"]}).contains(datetime(2025, 2, 28, tzinfo=timezone.utc))
    assert not TimeInterval.model_validate({"weekdays": []}).contains(at), "an empty list never matches"
    assert TimeInterval.model_validate({}).contains(at), "no field: always"
    evening = TimeInterval.model_validate({"times": [{"start_time": "17:00", "end_time": "24:00"}]})
    assert evening.contains(datetime(2025, 1, 1, 23, 59, tzinfo=timezone.utc))
    assert not evening.contains(datetime(2025, 1, 1, 0, 0, tzinfo=timezone.utc))
    assert TimeInterval.model_validate({"weekdays": ["Sunday"]}).contains(at)
    table = {"a": [TimeInterval.model_validate({"weekdays": ["sunday"]})],
             "b": [TimeInterval.model_validate({"weekdays": ["monday"]})]}
    assert muted_at(at, ("a",), (), table) and not muted_at(at, ("b",), (), table)
    assert muted_at(at, (), ("b",), table) and not muted_at(at, (), ("a", "b"), table)
    assert muted_at(at, ("a",), ("a",), table), "mute wins over active"
