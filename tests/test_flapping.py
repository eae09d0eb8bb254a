"""Flapping: Icinga's weighted state-change percentage, and one notice instead of a page storm."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import yaml

from conftest import REPO, wait_for
from notify_sinks import HTTPSink
from tocsin.config import parse_config
from tocsin.flapping import FlappingConfig, FlappingGate, state_change_percent
from tocsin.notify.alert import Alert

# ---------------------------------------------------------------- the percentage


def test_weighted_percentage_as_icinga_computes_it():
    # 21 results, a change between every two: every weight counts, the mean weight is 1: 100 %.
    assert state_change_percent([i % 2 == 0 for i in range(21)], 21) == pytest.approx(100.0)
    assert state_change_percent([True] * 21, 21) == 0.0
    # One change: 0.75 when it is the oldest of the 20 possible ones, 1.25 when the newest.
    oldest = [True] + [False] * 20
    newest = [True] * 20 + [False]
    assert state_change_percent(oldest, 21) == pytest.approx(100 * 0.75 / 20)
    assert state_change_percent(newest, 21) == pytest.approx(100 * 1.25 / 20)
    # A young target: its few changes are a share of the whole window, so it cannot flap at once.
    assert state_change_percent([True, False], 21) == pytest.approx(100 * 1.25 / 20)


def test_flapping_starts_above_high_and_ends_below_low_only():
    target = parse_config({"targets": [{"name": "t", "tcp": {"address": "127.0.0.1:1"}}]}, "test").targets[0]
    sent: list[Alert] = []
    gate = FlappingGate(FlappingConfig(window=11, high=30, low=20), sent.extend)

    def feed(results: list[bool]) -> list[tuple[float, bool]]:
        out = []
        for up in results:
            flapping = gate.observe(target, up)
            out.append((round(gate._targets["t"].percent, 1), flapping))
        return out

    assert feed([True] * 11)[-1] == (0.0, False)
    # Rising: 24.4 % is between low and high, and not yet flapping; 3 changes (35.6 %) are.
    assert feed([False, True, False]) == [(12.5, False), (24.4, False), (35.8, True)]
    # Falling: the changes age out; 24.2 % is in the band again, and still flapping.
    falling = feed([True] * 9)
    assert (24.2, True) in falling and falling[-1] == (15.6, False), falling
    assert [(a.labels["alertname"], a.status) for a in sent] == [("TargetFlapping", "firing"),
                                                                 ("TargetFlapping", "resolved")]


def test_a_flapping_targets_alerts_are_held_and_their_last_state_sent_at_the_end():
    target = parse_config({"targets": [{"name": "t", "tcp": {"address": "127.0.0.1:1"},
                                        "labels": {"team": "x"}}]}, "test").targets[0]
    sent: list[Alert] = []
    gate = FlappingGate(FlappingConfig(window=11, high=30, low=20), sent.extend)
    for _ in range(11):
        gate.observe(target, True)
    down = Alert({"alertname": "TargetDown", "target": "t"})
    slow = Alert({"alertname": "TargetSlow", "target": "t"})
    gate.submit([down])  # paged before the flapping was detected
    for up in [False, True, False]:
        gate.observe(target, up)
    gate.submit([down.resolved(down.starts_at), slow, Alert({"alertname": "TargetFlapping", "target": "t"})])
    gate.submit([Alert({"alertname": "Other", "target": "elsewhere"})])
    while gate.observe(target, True):
        pass
    assert [(a.labels["alertname"], a.status) for a in sent] == [
        ("TargetDown", "firing"),
        ("TargetFlapping", "firing"),    # the notice carries the target's labels
        ("Other", "firing"),             # another target's alerts are not held
        ("TargetFlapping", "resolved"),
        ("TargetDown", "resolved"),      # paged before: its resolve is owed
        ("TargetSlow", "firing"),        # still firing at the end: sent once
    ]
    assert sent[1].labels == {"alertname": "TargetFlapping", "target": "t", "team": "x", "severity": "warning"}


# ---------------------------------------------------------------- in a real daemon


class _FlappingService:
    """An HTTP health endpoint the test flips: steady (200) or flapping (3 × 200, 3 × 500, …)."""

    def __init__(self) -> None:
        self.flapping = False
        self._answers = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                service._answers += 1
                status = 500 if service.flapping and (service._answers // 3) % 2 else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _shipped_target_rules() -> str:
    """TargetDown and TargetFlapping as shipped, TargetDown's `for` cut to 0: every down would page."""
    shipped = yaml.safe_load((REPO / "etc/rules/tocsin.yml").read_text())
    rules = [r for g in shipped["groups"] for r in g["rules"] if r.get("alert") in ("TargetDown", "TargetFlapping")]
    for rule in rules:
        rule["for"] = "0s"
    return yaml.safe_dump({"groups": [{"name": "targets", "interval": "250ms", "rules": rules}]})


def test_a_flapping_target_gives_one_start_and_one_end_notice_and_no_page_storm(daemon_factory, tmp_path):
    (tmp_path / "rules.yml").write_text(_shipped_target_rules())
    sink = HTTPSink()
    service = _FlappingService()

    def notices() -> list[tuple[str, str]]:
        return [(a["labels"]["alertname"], a["status"]) for r in list(sink.received) for a in r.body["alerts"]
                if a["labels"].get("target") == "web"]

    try:
        daemon = daemon_factory(f"""
global: {{listen_address: "127.0.0.1:{{port}}", interval: 200ms, timeout: 150ms, state_dir: "{{dir}}/state",
          flapping: {{window: 21, high: 15, low: 5}}}}
targets:
  - {{name: web, url: "http://127.0.0.1:{service.port}/health"}}
rule_files: [rules.yml]
alerting:
  route: {{receiver: hook, group_by: [alertname, target], group_wait: 300ms, group_interval: 500ms,
           repeat_interval: 1h}}
  receivers:
    - name: hook
      webhook: {{url: "{sink.url}/hook"}}
""")
        wait_for(lambda: daemon.sample("probe_success", target="web") == 1, timeout=10, what="web up")
        service.flapping = True
        flapped_from = time.monotonic()
        wait_for(lambda: daemon.targets()[0]["flapping"], timeout=10, what="the API to show the flapping")
        assert daemon.sample("tocsin_target_flapping", target="web") == 1
        assert "<tr class='flapping' data-target='web'" in requests.get(daemon.url + "/", timeout=5).text
        time.sleep(max(0.0, 6.0 - (time.monotonic() - flapped_from)))  # ~30 results, down 0.6 s in 1.2 s
        downs_during_flap = daemon.sample("tocsin_probes_total", target="web", result="failure")
        service.flapping = False
        wait_for(lambda: "stopped flapping" in daemon.output(), timeout=15, what="the flapping to end")
        flap_seconds = time.monotonic() - flapped_from
        wait_for(lambda: ("TargetFlapping", "resolved") in notices(), timeout=10, what="the end notice")
        time.sleep(1.0)  # anything else the end released is grouped and sent
    finally:
        service.close()
    counts = Counter(notices())
    print(f"flapping run: {flap_seconds:.1f}s, {downs_during_flap:g} failed probes, {len(sink.received)} "
          f"notifications: {dict(counts)}")
    assert downs_during_flap is not None and downs_during_flap >= 8
    assert counts[("TargetFlapping", "firing")] == 1 and counts[("TargetFlapping", "resolved")] == 1, counts
    # No storm: TargetDown paged only before the flapping was detected (its first down, on the
    # first of the 3 changes that make 15 %), and its resolve is sent when the flapping ends.
    sent = notices()
    started = sent.index(("TargetFlapping", "firing"))
    assert ("TargetDown", "firing") not in sent[started:], sent
    assert counts[("TargetDown", "firing")] <= 1, sent
    assert counts[("TargetDown", "resolved")] == counts[("TargetDown", "firing")], counts
    assert daemon.sample("tocsin_target_flapping", target="web") == 0
    assert daemon.targets()[0]["flapping"] is False


def test_flapping_thresholds_are_checked_with_their_key_path():
    from tocsin.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config({"global": {"flapping": {"high": 20, "low": 30}}}, "tocsin.yml")
    assert any("global.flapping" in line and "low (30) must be below high (20)" in line for line in caught.value.errors)
    assert parse_config({"global": {"flapping": {"window": 11}}}, "t").global_.flapping.window == 11


def test_turning_detection_off_ends_the_flapping_and_sends_what_was_held():
    target = parse_config({"targets": [{"name": "t", "tcp": {"address": "127.0.0.1:1"}}]}, "test").targets[0]
    sent: list[Alert] = []
    gate = FlappingGate(FlappingConfig(window=11, high=30, low=20), sent.extend)
    for up in [True] * 11 + [False, True, False]:
        gate.observe(target, up)
    gate.submit([Alert({"alertname": "TargetDown", "target": "t"})])
    assert [a.labels["alertname"] for a in sent] == ["TargetFlapping"]
    gate.configure(FlappingConfig(enabled=False))
    assert [(a.labels["alertname"], a.status) for a in sent[1:]] == [("TargetFlapping", "resolved"),
                                                                     ("TargetDown", "firing")]
    assert gate.observe(target, False) is False
