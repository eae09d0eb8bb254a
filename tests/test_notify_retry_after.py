"""A receiver that answers 429 with Retry-After is not asked again before the time it gave.

Every HTTP receiver kind, against real sinks, in seconds and in HTTP-date form; the backoff
alone (50 ms here) would retry long before. Meanwhile a healthy receiver fed the same alerts
gets them at once: one lane waiting for its peer holds no other lane back.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from email.utils import formatdate

import pytest
from prometheus_client import CollectorRegistry

from conftest import scaled, wait_for
from notify_sinks import HTTPSink
from tocsin.config import parse_config
from tocsin.notify import Alert, Notifier, NotifyMetrics
from tocsin.notify.receivers.base import parse_retry_after

RETRY_AFTER = 2  # seconds: an HTTP-date has a resolution of one second


def _receivers(sinks: dict[str, HTTPSink]) -> list[dict]:
    return [{"name": "hook", "webhook": {"url": sinks["hook"].url}},
            {"name": "slack", "slack": {"webhook_url": sinks["slack"].url, "send_resolved": True}},
            {"name": "pager", "pagerduty": {"routing_key": "R0UT1NGKEY0123456789012345678901",
                                            "url": sinks["pager"].url}},
            {"name": "am", "alertmanager": {"urls": [sinks["am"].url]}},
            {"name": "healthy", "webhook": {"url": sinks["healthy"].url}}]


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_no_attempt_before_retry_after_and_no_lane_held_back(tmp_path, form):
    throttled = ("hook", "slack", "pager", "am")
    sinks = {name: HTTPSink(mode="fail", fail_status=429) for name in throttled}
    sinks["healthy"] = HTTPSink()
    try:
        if form == "seconds":
            for name in throttled:
                sinks[name].fail_headers = {"Retry-After": str(RETRY_AFTER)}
        raw = {"alerting": {
            "route": {"receiver": "healthy", "group_by": ["alertname"], "group_wait": "0s",
                      "group_interval": "100ms", "repeat_interval": "1h",
                      "routes": [{"receiver": name, "continue": True} for name in throttled] + [{"receiver": "healthy"}]},
            "receivers": _receivers(sinks),
            "delivery": {"initial_backoff": "50ms", "max_backoff": "50ms", "breaker_failures": 100,
                         "breaker_cooldown": "50ms"}}}
        notifier = Notifier(parse_config(raw, "test.yml").alerting, state_dir=str(tmp_path / "state"),
                            metrics=NotifyMetrics(CollectorRegistry()))
        notifier.start()
        try:
            if form == "http-date":  # a date a whole second ahead at least, as the header has no fraction
                for name in throttled:
                    sinks[name].fail_headers = {"Retry-After": formatdate(int(time.time()) + RETRY_AFTER + 1,
                                                                          usegmt=True)}
            started = time.time()
            notifier.submit([Alert(labels={"alertname": "Down", "target": "db"},
                                   starts_at=datetime.now(timezone.utc))])
            wait_for(lambda: sinks["healthy"].bodies(), timeout=2, what="the healthy receiver")
            healthy_after = time.time() - started
            wait_for(lambda: all(len(sinks[n].attempt_times) >= 3 for n in throttled), timeout=4 * RETRY_AFTER + 2,
                     what="three attempts at each throttled receiver")
            for name in throttled:
                times = sinks[name].attempt_times[:3]
                for (previous, _), current in zip(_asked(sinks[name], times), times[1:], strict=False):
                    assert current >= previous, f"{name}: attempt {current - started:.2f}s after the start came " \
                                                f"before the Retry-After time {previous - started:.2f}s"
            assert healthy_after < scaled(1.0), f"the healthy receiver waited {healthy_after:.2f}s"
        finally:
            notifier.stop()
    finally:
        for sink in sinks.values():
            sink.stop()


def _asked(sink: HTTPSink, times: list[float]) -> list[tuple[float, float]]:
    """For each answered attempt: (the earliest time the sink asked to be tried again, the attempt)."""
    out = []
    for t in times:
        header = sink.fail_headers["Retry-After"]
        if header.isdigit():
            out.append((t + int(header), t))
        else:
            wait = parse_retry_after(header, now=0.0)
            assert wait is not None
            out.append((wait, t))
    return out


def test_retry_after_forms():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0   # already past
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("-5") is None
