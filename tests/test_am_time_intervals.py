"""`time_intervals` with Alertmanager 0.25's semantics, checked against a real Alertmanager.

Alertmanager evaluates a route's intervals at the moment a group flushes, on its own clock
(which a preloaded fake clock cannot move: Go reads the time through the vDSO). So the
instants come from the real now seen through many time zones, and the intervals are drawn
around and away from that local time: each (interval, instant) pair is one route with one
alert, muted in both or in neither. A pair whose verdict changes while the test runs (a
boundary crossed) is left out and counted.
"""

from __future__ import annotations

import os
import random
import subprocess
import textwrap
import time
from datetime import datetime, timezone
from typing import Any

from am_harness import alertmanager, check_configs, post_alerts

from conftest import require_tool, scaled
from notify_sinks import HTTPSink
from tocsin.config import load_config, parse_config
from tocsin.errors import ConfigError
from tocsin.timeintervals import WEEKDAYS, load_location, muted_at

PAIRS = 240
ZONES = [None, "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Kiritimati",
         "Pacific/Pago_Pago", "Australia/Lord_Howe", "America/St_Johns", "Etc/GMT+12", "Etc/GMT-14", "Asia/Tokyo",
         "America/Santiago", "Africa/Casablanca", "Local"]
MONTH_NAMES = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
               "november", "december"]
DAY_NAMES = list(WEEKDAYS)


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def span(rng: random.Random, around: int, low: int, high: int) -> tuple[int, int]:
    """A range inside [low, high], containing `around` about half the time."""
    if rng.random() < 0.5:
        return max(low, around - rng.randint(0, 3)), min(high, around + rng.randint(0, 3))
    a, b = sorted((rng.randint(low, high), rng.randint(low, high)))
    return a, b


def day_name(rng: random.Random, index: int) -> str:
    return DAY_NAMES[index].capitalize() if rng.random() < 0.2 else DAY_NAMES[index]


def text_range(a: Any, b: Any) -> str:
    return str(a) if a == b else f"{a}:{b}"


def interval(rng: random.Random, now: datetime) -> dict[str, Any]:
    zone = rng.choice(ZONES)
    local = now.astimezone(load_location(zone or ""))
    out: dict[str, Any] = {}
    while not out:
        if rng.random() < 0.6:
            minute = local.hour * 60 + local.minute
            times = []
            for _ in range(rng.choice([1, 1, 2])):
                if rng.random() < 0.6:
                    start, end = max(0, minute - rng.randint(0, 240)), min(1440, minute + rng.randint(1, 240))
                else:
                    start, end = sorted(rng.sample(range(0, 1441), 2))
                times.append({"start_time": hhmm(start), "end_time": hhmm(end)})
            out["times"] = times
        if rng.random() < 0.4:
            today = (local.weekday() + 1) % 7
            a, b = span(rng, today, 0, 6)
            out["weekdays"] = [text_range(day_name(rng, a), day_name(rng, b))]
        if rng.random() < 0.4:
            if rng.random() < 0.5:
                a, b = span(rng, local.day, 1, 31)
                out["days_of_month"] = [text_range(a, b)]
            else:
                a, b = sorted(rng.sample(range(-31, 0), 2)) if rng.random() < 0.7 else (rng.randint(1, 27), -1)
                out["days_of_month"] = [text_range(a, b)]
        if rng.random() < 0.3:
            a, b = span(rng, local.month, 1, 12)
            out["months"] = [text_range(MONTH_NAMES[a - 1] if rng.random() < 0.5 else a, MONTH_NAMES[b - 1])]
        if rng.random() < 0.3:
            a, b = span(rng, local.year, local.year - 3, local.year + 3)
            out["years"] = [text_range(a, b)]
    if zone is not None:
        out["location"] = zone
    return out


def test_time_intervals_mute_as_in_alertmanager(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "America/Denver")  # 'Local' for both: this process and Alertmanager
    rng = random.Random(2025)
    now = datetime.now(timezone.utc)
    cases = []
    for i in range(PAIRS):
        named = [interval(rng, now) for _ in range(rng.choice([1, 1, 1, 2]))]
        cases.append((f"ti{i}", named, "active_time_intervals" if i % 3 == 0 else "mute_time_intervals"))
    routes = [{"matchers": [f'case="{i}"'], "receiver": "hook", key: [name]} for i, (name, _, key) in enumerate(cases)]
    intervals = [{"name": name, "time_intervals": named} for name, named, _ in cases]
    sink = HTTPSink()
    try:
        route = {"receiver": "null", "group_wait": "1s", "group_interval": "1h", "repeat_interval": "4h",
                 "routes": routes}
        config = parse_config({"alerting": {"route": route, "time_intervals": intervals, "receivers": [
            {"name": "null"}, {"name": "hook", "webhook": {"url": sink.url}}]}}, "t.yml").alerting
        table = config.time_interval_table()
        am_config = {"route": route, "time_intervals": intervals, "receivers": [
            {"name": "null"}, {"name": "hook", "webhook_configs": [{"url": sink.url, "send_resolved": False}]}]}
        assert check_configs(tmp_path / "check", [am_config]) == [None]

        def verdicts(at: datetime) -> list[bool]:
            return [muted_at(at, (name,) if key == "mute_time_intervals" else (),
                             (name,) if key == "active_time_intervals" else (), table) for name, _, key in cases]

        before = verdicts(datetime.now(timezone.utc))
        with alertmanager(tmp_path / "am", am_config, env=dict(os.environ)) as url:
            post_alerts(url, [{"alertname": "Window", "case": str(i)} for i in range(PAIRS)])
            want = before.count(False)
            deadline = time.monotonic() + scaled(15)
            while time.monotonic() < deadline and len(sink.bodies()) < want:
                time.sleep(0.2)
            time.sleep(scaled(1.5))
        after = verdicts(datetime.now(timezone.utc))
        notified = {a["labels"]["case"] for body in sink.bodies() for a in body["alerts"]}
        steady = [i for i in range(PAIRS) if before[i] == after[i]]
        wrong = [(cases[i][2], cases[i][1], "AM notified" if str(i) in notified else "AM muted")
                 for i in steady if (str(i) in notified) == before[i]]
        assert not wrong, f"{len(wrong)} of {len(steady)} pairs disagree: {wrong[:5]}"
        assert len(steady) >= 200, f"only {len(steady)} pairs kept their verdict during the test"
        muted = sum(before[i] for i in steady)
        assert 40 <= muted <= len(steady) - 40, f"{muted} of {len(steady)} muted: the corpus should have both"
    finally:
        sink.stop()


INTERVAL_CASES = [
    {"times": [{"start_time": "8:00", "end_time": "10:00"}]}, {"times": [{"start_time": "08:00", "end_time": "24:00"}]},
    {"times": [{"start_time": "08:00", "end_time": "24:01"}]}, {"times": [{"start_time": "10:00", "end_time": "10:00"}]},
    {"times": [{"start_time": "10:00"}]}, {"times": []}, {"weekdays": ["monday:sunday"]}, {"weekdays": ["Monday"]},
    {"weekdays": ["mon"]}, {"weekdays": ["1"]}, {"weekdays": ["monday:wednesday:friday"]},
    {"days_of_month": ["0"]}, {"days_of_month": ["32"]}, {"days_of_month": ["-1:1"]}, {"days_of_month": ["1:-1"]},
    {"days_of_month": ["-3:-5"]}, {"days_of_month": ["+1"]}, {"days_of_month": [" 1"]}, {"days_of_month": ["1_0"]},
    {"days_of_month": [5]}, {"days_of_month": ["30:-1"]}, {"months": ["13"]}, {"months": ["December:january"]},
    {"months": ["jan"]}, {"months": ["0:3"]}, {"years": ["2020:2019"]}, {"years": ["２０２０"]},
    {"location": "Mars/Olympus"}, {"location": "Europe/Berlin"}, {"location": ""}, {"location": "Local"},
    {"location": "../etc/passwd"}, {"weekdays": []},
]


def test_time_interval_grammar_agrees_with_alertmanager(tmp_path):
    def config(case: dict[str, Any]) -> dict[str, Any]:
        return {"route": {"receiver": "r0", "routes": [{"receiver": "r0", "mute_time_intervals": ["x"]}]},
                "receivers": [{"name": "r0"}], "time_intervals": [{"name": "x", "time_intervals": [case]}]}
    theirs = check_configs(tmp_path, [config(c) for c in INTERVAL_CASES])
    ours = []
    for case in INTERVAL_CASES:
        c = config(case)
        try:
            parse_config({"alerting": c}, "t.yml")
            ours.append(None)
        except ConfigError as exc:
            ours.append("; ".join(exc.errors))
    wrong = [(case, am, mine) for case, am, mine in zip(INTERVAL_CASES, theirs, ours, strict=True)
             if (am is None) != (mine is None)]
    assert not wrong, wrong


UNQUOTED = """
  route:
    receiver: r0
    routes: [{receiver: r0, mute_time_intervals: [office]}]
  receivers: [{name: r0}]
  time_intervals:
    - name: office
      time_intervals:
        - times: [{start_time: 09:00, end_time: 17:30}]
          days_of_month: [1:5, 10]
          months: [1:3]
          years: [2020:2030]
"""


def test_unquoted_times_and_ranges_read_as_go_yaml_reads_them(tmp_path):
    """`17:30` and `1:5` are strings in Alertmanager's YAML, not YAML 1.1's base-60 numbers."""
    amtool = require_tool("amtool")
    (tmp_path / "am.yml").write_text(textwrap.dedent(UNQUOTED))
    checked = subprocess.run([amtool, "check-config", str(tmp_path / "am.yml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    (tmp_path / "tocsin.yml").write_text("alerting:" + UNQUOTED)
    (office,) = load_config(tmp_path / "tocsin.yml").config.alerting.time_interval_table()["office"]
    assert office.times[0].minutes == (540, 1050)
    assert office.days_of_month == [(1, 5), (10, 10)] and office.months == [(1, 3)] and office.years == [(2020, 2030)]
