"""The bounded sample store: only selected series, only as long as rules need them."""

from __future__ import annotations

import time

from tocsin import promql
from tocsin.config import Target
from tocsin.metrics import ProbeMetrics
from tocsin.probes import ProbeResult
from tocsin.promql import is_stale
from tocsin.rules.files import parse_rule_text
from tocsin.rules.store import SampleStore, build_interest


def store_for(*exprs: str) -> SampleStore:
    return SampleStore(build_interest(promql.parse(e) for e in exprs), margin_ms=15_000)


def probe(target: str, success: float, duration: float = 0.1, reason: str | None = None) -> list:
    labels = (("target", target), ("team", "core"))
    out = [("probe_success", labels, success), ("probe_duration_seconds", labels, duration),
           ("probe_http_status_code", labels, 200.0), ("tocsin_probe_attempts", labels, 1.0)]
    if reason:
        out.append(("tocsin_probe_failure_reason", labels + (("reason", reason),), 1.0))
    return out


def test_keeps_only_selected_series_for_the_window_rules_need() -> None:
    store = store_for('changes(probe_success{team="core"}[10m])', "probe_duration_seconds offset 1m")
    for i in range(2000):  # one probe every 15 s for 8 h
        store.ingest("a", probe("a", float(i % 2)), 1_000_000 + i * 15)
        store.ingest("b", probe("b", 1.0), 1_000_000 + i * 15)
    names = {dict(s.labels)["__name__"] for s in store.select([], 0, 2**62)}
    assert names == {"probe_success", "probe_duration_seconds"}  # status code etc. never stored
    # probe_success: 10m range + 15s margin (+1/8 slack before a trim); a range reads no lookback
    for s in store.select([promql.Matcher("__name__", "=", "probe_success")], 0, 2**62):
        span = (s.timestamps[-1] - s.timestamps[0]) / 1000
        assert 600 <= span <= 615 * 1.13, span
    # probe_duration_seconds: 1m offset + 5m lookback + margin
    for s in store.select([promql.Matcher("__name__", "=", "probe_duration_seconds")], 0, 2**62):
        assert (s.timestamps[-1] - s.timestamps[0]) / 1000 <= 375 * 1.13
    stats = store.stats()
    assert stats["series"] == 4 and stats["samples"] < 2 * 48 + 2 * 30
    # The engine reads it like any store.
    t = (1_000_000 + 1999 * 15) * 1000
    result = promql.instant_query(promql.parse("changes(probe_success[10m])"), store, t)
    assert sorted(s.value for s in result) == [0.0, 40.0]  # 41 samples in a closed 10m window


def test_the_store_is_bounded_by_series_times_window_whatever_the_uptime() -> None:
    """RELIABILITY.md's bound: per series reported within its window W = H + M (H: the
    longest range a rule reads, or 5m lookback for an instant read; M: the margin), at most
    W * 9/8 / interval + 1 samples. Targets come and go and a label value changes every
    probe, for 6 hours of sample time: neither the samples nor the series may keep growing."""
    margin_s, interval_s = 15, 10
    store = store_for("changes(probe_success[10m]) > 4", "probe_success == 0",
                      "tocsin_probe_failure_reason > 0")
    per_series = {"probe_success": (600 + margin_s) * 9 / 8 / interval_s + 1,   # range 10m > lookback 5m
                  "tocsin_probe_failure_reason": (300 + margin_s) * 9 / 8 / interval_s + 1}
    live = [f"t{i}" for i in range(20)]
    seen_max = 0
    for step in range(6 * 360):  # 6 h, one probe of each live target every 10 s
        now = 1_000_000 + step * interval_s
        if step % 60 == 59:  # every 10 minutes a target is replaced by a new one (a reload)
            gone = live.pop(0)
            store.remove_target(gone, now)
            live.append(f"t{step}")
        for name in live:  # each failure has its own reason: one new series a probe
            store.ingest(name, probe(name, 0.0, reason=f"r{step}"), now)
        if step >= 120 and step % 6 == 0:  # once a minute, after the first 20 minutes
            stats = store.stats()
            # series: the live targets' probe_success, failure reasons of the last W (+ one sweep
            # period), and the few replaced targets whose probe_success is still within 10m
            assert stats["series"] <= len(live) * (1 + (315 + 60) // interval_s + 1) + 3, (step, stats)
            bound = sum(per_series[dict(s.labels)["__name__"]] for s in store.select([], 0, 2**62))
            assert stats["samples"] <= bound, (step, stats, bound)
            seen_max = max(seen_max, stats["samples"])
    assert store.stats()["samples"] >= 0.5 * seen_max  # it levelled off rather than emptied


def test_bytes_per_sample() -> None:
    store = store_for("probe_success[1h]")
    n_series, n_samples = 200, 240
    for i in range(n_samples):
        for t in range(n_series):
            store.ingest(f"t{t}", [("probe_success", (("target", f"t{t}"),), 1.0)], 1_000_000 + i * 15)
    stats = store.stats()
    assert stats["samples"] == n_series * n_samples
    per_sample = stats["array_bytes"] / stats["samples"]
    print(f"array bytes per sample: {per_sample:.1f}")
    assert 16 <= per_sample < 20


def probe_result(target: str, success: bool, duration: float, end: float, reason: str = "", attempts: int = 1):
    return ProbeResult(target=target, kind="http", success=success, reason=reason, message="", duration=duration,
                       attempts=attempts, first_attempt_success=success and attempts == 1, correlation_id="c",
                       started_at=end - duration, timeout=10.0)


def registry_feeding(store: SampleStore, *targets: str) -> ProbeMetrics:
    metrics = ProbeMetrics()
    metrics.subscribe(store.ingest, store.may_want)
    for name in targets:
        metrics.ensure(Target.model_validate({"name": name, "url": "http://127.0.0.1:1/", "labels": {"team": "core"}}))
    return metrics


def test_counters_from_the_registry_and_stale_markers() -> None:
    store = store_for("tocsin_probes_total", "tocsin_probe_failure_reason", "tocsin_probe_duration_seconds_sum")
    metrics = registry_feeding(store, "a")
    delivered: list[str] = []
    metrics.subscribe(lambda _target, samples, _t: delivered.extend(name for name, _, _ in samples), store.may_want)
    metrics.record(probe_result("a", False, 0.5, 100.0, reason="connect"))
    metrics.record(probe_result("a", True, 0.25, 115.0))
    # counter samples are built only for the families some rule selects
    assert "tocsin_probes_total" in delivered and "tocsin_probe_duration_seconds_sum" in delivered
    assert not {"tocsin_probe_retries_total", "tocsin_probe_failures_total", "tocsin_probe_duration_seconds_bucket",
                "tocsin_probe_duration_seconds_count"} & set(delivered)
    got = {s.labels: list(s.values) for s in store.select([], 0, 2**62)}
    base = (("target", "a"), ("team", "core"))
    assert got[(("__name__", "tocsin_probes_total"),) + (("result", "failure"),) + base] == [1.0, 1.0]
    assert got[(("__name__", "tocsin_probes_total"),) + (("result", "success"),) + base] == [0.0, 1.0]
    assert got[(("__name__", "tocsin_probe_duration_seconds_sum"),) + base] == [0.5, 0.75]
    assert all(list(s.timestamps) == [100_000, 115_000] for s in store.select([], 0, 2**62))
    # the failure reason disappeared from the second result: it went stale, as on a scrape
    reason = got[(("__name__", "tocsin_probe_failure_reason"), ("reason", "connect")) + base]
    assert reason[0] == 1.0 and is_stale(reason[1])
    store.remove_target("a", 130.0)
    for s in store.select([], 0, 2**62):
        assert is_stale(s.values[-1])


def test_rule_outputs_and_alerts_are_kept_when_rules_read_them() -> None:
    groups = parse_rule_text("groups:\n  - name: g\n    rules:\n      - record: x:y\n        expr: vector(1)\n"
                             "      - alert: A\n        expr: x:y\n      - alert: B\n        expr: ALERTS\n", "r.yml")
    from tocsin.rules.group import Group

    g = Group(groups[0])
    store = SampleStore(build_interest(r.spec.expr for r in g.rules))
    for rule in g.rules:
        rule.restored = True
    now = int(time.time() * 1000)
    g.eval(now, store)
    g.eval(now + 60_000, store)
    names = {dict(s.labels)["__name__"] for s in store.select([], 0, 2**62)}
    assert names == {"x:y", "ALERTS"}  # ALERTS_FOR_STATE is read by no rule: not kept
    assert [r.active_alerts()[0].state for r in g.rules[1:]] == ["firing", "firing"]


def test_derived_counters_equal_what_metrics_serves() -> None:
    """Every counter family a rule can select holds, after each result, the value /metrics shows."""
    from prometheus_client.parser import text_string_to_metric_families

    store = store_for("tocsin_probes_total", "tocsin_probe_retries_total", "tocsin_probe_failures_total",
                      "tocsin_probe_duration_seconds_bucket", "tocsin_probe_duration_seconds_sum",
                      "tocsin_probe_duration_seconds_count")
    metrics = registry_feeding(store, "web")
    outcomes = [(True, 0.004, 1, ""), (False, 0.3, 3, "connect"), (True, 2.0, 2, ""), (False, 7.0, 1, "timeout"),
                (False, 0.02, 2, "connect")]
    for i, (success, duration, attempts, reason) in enumerate(outcomes):
        metrics.record(ProbeResult(target="web", kind="http", success=success, reason=reason, message="",
                                   duration=duration, attempts=attempts, first_attempt_success=success and attempts == 1,
                                   correlation_id="c", started_at=1_000.0 + 15 * i, timeout=10.0))
        served = {(s.name, tuple(sorted(s.labels.items()))): s.value
                  for family in text_string_to_metric_families(metrics.render())
                  for s in family.samples if s.name.startswith(("tocsin_probes_total", "tocsin_probe_retries",
                                                                "tocsin_probe_failures", "tocsin_probe_duration"))}
        stored = {(dict(s.labels)["__name__"], tuple(sorted(p for p in s.labels if p[0] != "__name__"))): s.values[-1]
                  for s in store.select([], 0, 2**62) if not is_stale(s.values[-1])}
        assert stored == served, i
    assert served[("tocsin_probe_failures_total", (("reason", "connect"), ("target", "web"), ("team", "core")))] == 2
    assert served[("tocsin_probe_duration_seconds_bucket", (("le", "+Inf"), ("target", "web"), ("team", "core")))] == 5
