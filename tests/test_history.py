"""The history store: rollups, uptime, incidents, alert states, pruning, restart."""

from __future__ import annotations

import sqlite3

import pytest

from tocsin.history import MAINTENANCE, HistoryConfig, HistoryRecorder
from tocsin.history.queries import HistoryQueryError, history_view, incidents_view, parse_range, series
from tocsin.history.rollup import Rollup
from tocsin.probes import ProbeResult

T0 = 1_800_000_000 - 1_800_000_000 % 86400 + 12 * 3600  # noon UTC, on a day boundary's grid


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def result(name: str, at: float, success: bool, duration: float = 0.02, reason: str = "status",
           status: int = 500, message: str = "HTTP status 500") -> ProbeResult:
    facts = {"http_status_code": float(status if not success else 200)}
    return ProbeResult(name, "http", success, "" if success else reason, "" if success else message,
                       duration, 1, success, "c", at, 5.0, facts)


def feed(recorder: HistoryRecorder, clock: Clock, name: str, start: float, seconds: int, interval: int,
         down: range | None = None) -> None:
    """A result every `interval` s for `seconds` s from `start`; those at offsets in `down` fail."""
    for offset in range(0, seconds, interval):
        clock.now = start + offset
        recorder.record(name, result(name, start + offset, not (down and offset in down)), interval)
        if offset % 60 == 0:
            recorder.flush()
    recorder.flush()


def test_six_minutes_down_in_an_hour_reads_90_percent(tmp_path):
    clock = Clock(T0)
    recorder = HistoryRecorder(str(tmp_path / "history.db"), clock=clock)
    feed(recorder, clock, "web", T0, 3600, 10, down=range(1200, 1560))
    clock.now = T0 + 3599
    view = history_view(recorder, "web", "1h", "1m")
    assert view["total"]["uptime"] == pytest.approx(0.9)
    assert f"{view['total']['uptime'] * 100:.1f}" == "90.0"
    assert view["total"]["failures"] == 36 and view["total"]["count"] == 360
    assert view["total"]["reasons"] == {"HTTP 500": 36}
    assert len(view["points"]) == 60
    assert sum(1 for p in view["points"] if p["failures"]) == 6
    assert view["uptime"]["24h"] == pytest.approx(0.9)  # the same hour, from the in-memory summary
    hourly = history_view(recorder, "web", "1d", "1h")
    assert hourly["total"]["uptime"] == pytest.approx(0.9)
    incidents = incidents_view(recorder, "web")
    assert len(incidents) == 1
    assert incidents[0]["start"] == T0 + 1200 and incidents[0]["end"] == T0 + 1560
    assert incidents[0]["duration_seconds"] == 360 and incidents[0]["reason"] == "HTTP 500"
    recorder.stop()


def test_uptime_is_weighted_by_time_not_by_count(tmp_path):
    """Backoff when down probes less often: 10 min down at one probe a minute is still 10 min."""
    clock = Clock(T0)
    recorder = HistoryRecorder(str(tmp_path / "history.db"), clock=clock)
    feed(recorder, clock, "api", T0, 3000, 10)
    feed(recorder, clock, "api", T0 + 3000, 600, 60, down=range(0, 600))
    clock.now = T0 + 3599
    assert history_view(recorder, "api", "1h", "1m")["total"]["uptime"] == pytest.approx(5 / 6)
    recorder.stop()


def test_maintenance_is_left_out_of_uptime(tmp_path):
    clock = Clock(T0)
    recorder = HistoryRecorder(str(tmp_path / "history.db"), clock=clock)
    for offset in range(0, 600, 10):
        recorder.record("db", result("db", T0 + offset, offset < 300), 10, MAINTENANCE if offset >= 300 else None)
    clock.now = T0 + 599
    recorder.flush()
    total = history_view(recorder, "db", "1h", "1m")["total"]
    assert total["uptime"] == 1.0 and total["maintenance_seconds"] == 300
    assert incidents_view(recorder) == []
    recorder.stop()


def test_restart_keeps_adding_to_the_open_spans(tmp_path):
    clock = Clock(T0)
    path = str(tmp_path / "history.db")
    recorder = HistoryRecorder(path, clock=clock)
    feed(recorder, clock, "web", T0, 1800, 10, down=range(600, 660))
    recorder.db.close()  # no final flush, no clean stop: as after kill -9, right after a flush
    again = HistoryRecorder(path, clock=clock)
    assert again.open_incidents == {}
    assert history_view(again, "web", "1d", "1h")["total"]["count"] == 180  # the hour row, repaired
    assert again.window("web", "24h").count == 180 and again.window("web", "7d").down_seconds == 60
    feed(again, clock, "web", T0 + 1800, 1800, 10, down=range(0, 300))
    clock.now = T0 + 3599
    view = history_view(again, "web", "1h", "1m")
    assert view["total"]["count"] == 360 and view["total"]["failures"] == 36
    assert view["uptime"]["24h"] == pytest.approx(0.9)
    assert history_view(again, "web", "1d", "1h")["total"]["count"] == 360
    assert len(incidents_view(again, "web")) == 2
    again.stop()


def test_a_restart_hours_later_completes_the_hour_and_day_rows(tmp_path):
    """Hour and day rows are written once a minute; minutes written since are added back at start."""
    clock = Clock(T0)
    path = str(tmp_path / "history.db")
    recorder = HistoryRecorder(path, clock=clock)
    feed(recorder, clock, "web", T0, 1800, 10, down=range(1500, 1800))
    recorder.db.close()  # as after kill -9
    db = sqlite3.connect(path)
    [(written,)] = db.execute("SELECT count FROM hours")
    assert written < 180  # the hour row lags the minutes: what the repair is for
    clock.now = T0 + 3 * 3600
    again = HistoryRecorder(path, clock=clock)
    view = history_view(again, "web", "1d", "1h")
    assert view["total"]["count"] == 180 and view["total"]["down_seconds"] == 300
    assert again.window("web", "24h").down_seconds == 300 and again.window("web", "30d").seconds == 1800
    [(count, through)] = db.execute("SELECT count, through FROM days")
    assert count == 180 and through == T0 + 3 * 3600
    again.stop()


def test_an_incident_open_at_a_restart_is_closed_after_it(tmp_path):
    clock = Clock(T0)
    path = str(tmp_path / "history.db")
    recorder = HistoryRecorder(path, clock=clock)
    feed(recorder, clock, "web", T0, 60, 10, down=range(0, 60))
    recorder.db.close()
    again = HistoryRecorder(path, clock=clock)
    assert "web" in again.open_incidents
    feed(again, clock, "web", T0 + 120, 30, 10)
    [incident] = incidents_view(again, "web")
    assert incident["start"] == T0 and incident["end"] == T0 + 120 and not incident["open"]
    again.stop()


def test_firing_alerts_are_recorded_and_tied_to_the_incident(tmp_path):
    clock = Clock(T0)
    alerts: list[dict] = []
    recorder = HistoryRecorder(str(tmp_path / "history.db"), alerts=lambda: alerts, clock=clock)
    labels = {"alertname": "Down", "target": "web"}
    feed(recorder, clock, "web", T0, 30, 10, down=range(0, 30))
    alerts.append({"labels": labels, "state": "pending"})
    recorder.flush()
    alerts[0] = {"labels": labels, "state": "firing"}
    clock.now += 5
    recorder.flush()
    clock.now += 5
    recorder.flush()  # no change: no event
    alerts.clear()
    clock.now += 5
    recorder.flush()
    [incident] = incidents_view(recorder, "web")
    assert incident["alerts"] == ["Down"] and incident["open"]
    from tocsin.notify.alert import fingerprint

    states = [e["state"] for e in recorder.db.alert_events(fingerprint(labels))]
    assert states == ["inactive", "firing", "pending"]
    recorder.stop()


def test_rows_past_their_retention_are_pruned(tmp_path):
    clock = Clock(T0)
    config = HistoryConfig(minutes="1h", hours="1d")
    recorder = HistoryRecorder(str(tmp_path / "history.db"), config, clock=clock)
    feed(recorder, clock, "web", T0, 7200, 60)
    clock.now = T0 + 2 * 86400
    feed(recorder, clock, "web", clock.now, 60, 60)
    db = sqlite3.connect(tmp_path / "history.db")
    minutes = [t for (t,) in db.execute("SELECT t FROM minutes")]
    hours = [t for (t,) in db.execute("SELECT t FROM hours")]
    assert minutes and min(minutes) >= clock.now - 3600
    assert all(t >= clock.now - 86400 for t in hours)
    recorder.stop()


def test_a_range_or_step_the_history_cannot_answer_is_refused(tmp_path):
    recorder = HistoryRecorder(str(tmp_path / "history.db"))
    with pytest.raises(HistoryQueryError, match="minutes are kept"):
        parse_range("7d", "1m", recorder)
    with pytest.raises(HistoryQueryError, match="whole number of minutes"):
        parse_range("1h", "30s", recorder)
    with pytest.raises(HistoryQueryError, match="longer than the history"):
        parse_range("365d", "1d", recorder)
    assert parse_range("7d", "1h", recorder) == (7 * 86400, 3600)
    recorder.stop()


def test_rollup_quantiles_and_storage_round_trip():
    rollup = Rollup()
    for i in range(100):
        rollup.add("up" if i % 10 else "down", 10, 0.02 if i < 90 else 0.4, "HTTP 503")
    assert rollup.quantile(0.5) == 0.025 and rollup.quantile(0.95) == 0.5
    assert Rollup.from_row(*rollup.to_row()).to_row() == rollup.to_row()


def test_series_has_one_point_per_step_with_the_current_one_last(tmp_path):
    clock = Clock(T0 + 30)
    recorder = HistoryRecorder(str(tmp_path / "history.db"), clock=clock)
    feed(recorder, clock, "web", T0 - 600, 630, 10)
    points = series(recorder, "web", 600, 60)
    assert len(points) == 10 and points[-1][0] == T0 and points[-1][1].count == 3
    recorder.stop()


def test_overview_windows_follow_late_results_and_new_hours(tmp_path):
    """The summary caches the sum of closed hours and days; a late result or a new hour must show."""
    clock = Clock(T0 + 1800)
    recorder = HistoryRecorder(str(tmp_path / "history.db"), clock=clock)
    feed(recorder, clock, "web", T0 - 3600, 3600, 60)  # the previous hour: all up
    assert recorder.window("web", "24h", T0 + 1800).uptime() == 1.0  # caches the closed hours
    recorder.record("web", result("web", T0 - 60, False), 60)  # late: belongs to the closed hour
    recorder.flush()
    assert recorder.window("web", "24h", T0 + 1800).uptime() == pytest.approx(1 - 60 / 3660)
    feed(recorder, clock, "web", T0, 600, 60, down=range(0, 600))
    assert recorder.window("web", "24h", T0 + 1800).down_seconds == 660
    assert recorder.window("web", "7d", T0 + 1800).down_seconds == 660
    clock.now = T0 + 25 * 3600  # a day later, the hours have left the 24 h window; the days have not
    assert recorder.window("web", "24h").seconds == 0
    assert recorder.window("web", "7d").down_seconds == 660
    recorder.stop()


def test_failure_reasons_in_words():
    from tocsin.history.reasons import reason_words

    def failed(reason: str, message: str, facts: dict | None = None) -> ProbeResult:
        return ProbeResult("x", "http", False, reason, message, 0.1, 1, False, "c", T0, 5.0, facts or {})

    assert reason_words(failed("status", "HTTP status 503", {"http_status_code": 503.0})) == "HTTP 503"
    assert reason_words(failed("tls", "certificate verification failed: certificate has expired")) \
        == "TLS: certificate has expired"
    assert reason_words(failed("tls", "TLS handshake failed: [SSL] wrong version")) == "TLS: handshake failed"
    assert reason_words(failed("connect", "connection refused by 127.0.0.1:9")) == "connection refused"
    assert reason_words(failed("dns", "cannot resolve 'x.test': no such host")) == "DNS: no such host"
    assert reason_words(failed("timeout", "deadline")) == "timeout"
    assert reason_words(result("x", T0, True)) == ""
