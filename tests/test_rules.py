"""The alert state machine, group evaluation, persistence and reload, without a daemon."""

from __future__ import annotations

import math
import time
from pathlib import Path

from tocsin import promql
from tocsin.config import LoadedConfig, parse_config
from tocsin.promql import MemoryStorage, is_stale
from tocsin.rules.alerting import FIRING, INACTIVE, PENDING, AlertingRule
from tocsin.rules.files import parse_rule_text
from tocsin.rules.group import Group
from tocsin.rules.manager import RuleManager
from tocsin.rules.persist import AlertStateDB
from tocsin.rules.rule import query_vector

S = 1000
RULES = """
groups:
  - name: g
    interval: 10s
    rules:
      - record: target:down
        expr: 1 - probe_success
      - alert: Down
        expr: target:down == 1
        for: 30s
        keep_firing_for: 20s
        labels: {severity: page}
        annotations: {summary: "{{ $labels.target }} down ({{ $value }})"}
"""


def group(text: str = RULES) -> Group:
    return Group(parse_rule_text(text, "r.yml")[0])


def feed(store: MemoryStorage, t: int, values: dict[str, float]) -> None:
    for target, v in values.items():
        store.add((("__name__", "probe_success"), ("target", target)), t, v)


def test_pending_firing_keep_firing_resolved_and_retention() -> None:
    g, store = group(), MemoryStorage()
    rule = g.rules[1]
    assert isinstance(rule, AlertingRule)
    rule.restored = True
    states = []
    sent = []
    for step in range(16):
        t = step * 10 * S
        feed(store, t, {"a": 0.0 if 1 <= step <= 6 else 1.0})
        for _, alerts in g.eval(t, store):
            sent += [(step, a.state, a.resolved_at) for a in alerts]
        states.append(next(iter(rule.active.values())).state if rule.active else None)
    # down from step 1: pending at 1..3, firing at 4 (30s), source clears at 7,
    # keep_firing_for 20s keeps it firing at 7 and 8, resolved at 9, kept as inactive.
    assert states[:4] == [None, PENDING, PENDING, PENDING]
    assert states[4:9] == [FIRING] * 5
    assert states[9] == INACTIVE
    alert = next(iter(rule.active.values()))
    assert alert.labels == (("alertname", "Down"), ("severity", "page"), ("target", "a"))
    assert alert.annotations == {"summary": "a down (1)"}
    assert alert.fired_at == 40 * S and alert.resolved_at == 90 * S
    # sent: first at firing, resent after the 1m resend delay, resolution at once
    assert sent[0] == (4, FIRING, 0)
    assert (9, INACTIVE, 90 * S) in sent
    # ALERTS went stale once the alert resolved
    alerts_series = [s for s in store.select([], 0, 10**9) if dict(s.labels).get("__name__") == "ALERTS"]
    firing = next(s for s in alerts_series if dict(s.labels)["alertstate"] == "firing")
    assert is_stale(firing.values[-1])


def test_alert_from_an_earlier_recording_rule_and_for_state_series() -> None:
    g, store = group(), MemoryStorage()
    g.rules[1].restored = True
    for step in range(5):
        feed(store, step * 10 * S, {"a": 0.0, "b": 1.0})
        g.eval(step * 10 * S, store)
    series = {s.labels: s for s in store.select([], 0, 10**9)}
    rec = series[(("__name__", "target:down"), ("target", "a"))]
    assert list(rec.values) == [1.0] * 5
    fs = series[(("__name__", "ALERTS_FOR_STATE"), ("alertname", "Down"), ("severity", "page"), ("target", "a"))]
    assert fs.values[-1] == 0.0  # ActiveAt in unix seconds


def test_limit_and_duplicate_labelsets_fail_the_rule() -> None:
    text = """
groups:
  - name: g
    limit: 1
    rules:
      - alert: Many
        expr: probe_success
      - alert: Same
        expr: probe_success
        labels: {target: x}
"""
    g, store = group(text), MemoryStorage()
    feed(store, 0, {"a": 1.0, "b": 1.0})
    g.eval(0, store)
    assert "exceeded limit of 1 with 2 alerts" in (g.rules[0].last_error or "")
    assert "same labelset" in (g.rules[1].last_error or "")
    assert g.stats.failures == 2 and g.stats.evaluations == 2


def test_restore_after_restart(tmp_path: Path) -> None:
    state = AlertStateDB(tmp_path / "rules.db")
    g, store = group(), MemoryStorage()
    rule = g.rules[1]
    rule.restored = True
    for step in range(6):
        feed(store, step * 10 * S, {"a": 0.0, "b": 0.0 if step >= 4 else 1.0})
        g.eval(step * 10 * S, store)
    state.save_group(g.key, 50 * S, [(rule.name, a) for a in rule.active.values()])
    last_eval, saved = state.load()
    assert last_eval[g.key] == 50 * S
    # a new process, 20 s later: `a` still down (firing continues), `b` came back up while we were away
    g2, store2 = group(), MemoryStorage()
    rule2 = g2.rules[1]
    rule2.to_restore, rule2.restore_down_at = saved[(g.key, "Down")], last_eval[g.key]
    for t in (50, 60, 70):
        feed(store2, t * S, {"a": 0.0, "b": 1.0})
    sent = g2.eval(70 * S, store2)
    by_target = {dict(a.labels)["target"]: a for a in rule2.active.values()}
    assert by_target["a"].state == FIRING and by_target["a"].active_at == 0
    assert by_target["a"].fired_at == 30 * S  # same startsAt as before the restart
    assert "b" not in by_target  # was only pending: forgotten
    state.close()
    assert sent == [] or all(a.state == FIRING for _, alerts in sent for a in alerts)


def test_restore_resolves_an_alert_that_cleared_while_down() -> None:
    g, store = group(), MemoryStorage()
    g.rules[1].restored = True
    for step in range(6):
        feed(store, step * 10 * S, {"a": 0.0})
        g.eval(step * 10 * S, store)
    saved = dict(g.rules[1].active)
    g2, store2 = group(), MemoryStorage()
    g2.rules[1].to_restore, g2.rules[1].restore_down_at = saved, 50 * S
    feed(store2, 100 * S, {"a": 1.0})
    g2.eval(100 * S, store2)  # keep_firing_for (20s) holds it one more evaluation
    assert next(iter(g2.rules[1].active.values())).state == FIRING
    feed(store2, 130 * S, {"a": 1.0})
    sent = g2.eval(130 * S, store2)
    assert [(a.state, a.resolved_at) for _, alerts in sent for a in alerts] == [(INACTIVE, 130 * S)]


def _loaded(tmp_path: Path, rule_files: list[str]) -> LoadedConfig:
    cfg = parse_config({"global": {"state_dir": str(tmp_path / "state")}, "rule_files": rule_files,
                        "targets": [{"name": "a", "tcp": {"address": "127.0.0.1:1"}}]}, "t.yml")
    return LoadedConfig(path=tmp_path / "tocsin.yml", config=cfg)


def test_reload_keeps_state_of_unchanged_rules_and_last_good_file(tmp_path: Path) -> None:
    (tmp_path / "one.yml").write_text(RULES)
    (tmp_path / "two.yml").write_text(RULES.replace("name: g", "name: h"))
    manager = RuleManager(_loaded(tmp_path, ["*.yml"]))
    assert manager.errors == [] and len(manager.groups) == 2
    key = f"{tmp_path / 'one.yml'};g"
    rule = manager.groups[key].rules[1]
    rule.restored = True
    manager.store.ingest("a", [("probe_success", (("target", "a"),), 0.0)], 100.0)
    manager._evaluate(key, 100_000)
    assert rule.active
    # two.yml breaks, one.yml gains a rule: state of the unchanged rule survives
    (tmp_path / "two.yml").write_text("groups:\n  - name: h\n    rules:\n      - alert: X\n        expr: sum(\n")
    (tmp_path / "one.yml").write_text(RULES + "      - alert: New\n        expr: vector(1)\n")
    errors = manager.reload(_loaded(tmp_path, ["*.yml"]))
    assert len(errors) == 1 and "two.yml" in errors[0] and "could not parse expression" in errors[0]
    assert len(manager.groups) == 2  # two.yml's previous version is still running
    new_rule = manager.groups[key].rules[1]
    assert new_rule is not rule and new_rule.active is rule.active
    assert len(manager.groups[key].rules) == 3
    text = manager.render_metrics()
    assert f'tocsin_rule_group_rules{{rule_group="{key}"}} 3' in text
    assert 'tocsin_rule_evaluations_total{rule_group="' in text


def test_removed_target_goes_stale_and_resolves(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text("groups:\n  - name: g\n    rules:\n      - alert: Down\n"
                                    "        expr: probe_success == 0\n")
    manager = RuleManager(_loaded(tmp_path, ["r.yml"]))
    key = next(iter(manager.groups))
    manager.groups[key].rules[0].restored = True
    manager.store.ingest("a", [("probe_success", (("target", "a"),), 0.0)], 100.0)
    manager._evaluate(key, 100_000)
    assert manager.active_alerts()[0]["labels"] == {"alertname": "Down", "target": "a"}
    loaded = _loaded(tmp_path, ["r.yml"])
    manager.reload(LoadedConfig(path=loaded.path, config=loaded.config.model_copy(update={"targets": []})))
    manager._evaluate(key, int(time.time() * 1000) + 1000)
    assert manager.active_alerts() == []
    assert "ALERTS{" not in manager.render_metrics()
    assert math.isnan(0 * float("nan"))


def test_reload_matches_rules_by_name_and_labels(tmp_path: Path) -> None:
    """Editing expr, `for` and annotations keeps a rule's alerts; changing its labels makes it a new rule."""
    (tmp_path / "r.yml").write_text(RULES)
    manager = RuleManager(_loaded(tmp_path, ["r.yml"]))
    key = next(iter(manager.groups))

    def step(t: int) -> None:
        manager.store.ingest("a", [("probe_success", (("target", "a"),), 0.0)], float(t))
        manager._evaluate(key, t * S)

    rule = manager.groups[key].rules[1]
    assert isinstance(rule, AlertingRule)
    rule.restored = True
    for t in range(100, 150, 10):
        step(t)
    (alert,) = rule.active.values()
    assert alert.state == FIRING and alert.active_at == 100 * S
    edited = (RULES.replace("for: 30s", "for: 5m").replace("expr: target:down == 1", "expr: target:down > 0.5")
              .replace("down ({{ $value }})", "is down"))
    (tmp_path / "r.yml").write_text(edited)
    assert manager.reload(_loaded(tmp_path, ["r.yml"])) == []
    kept_rule = manager.groups[key].rules[1]
    assert isinstance(kept_rule, AlertingRule) and kept_rule is not rule and kept_rule.hold_ms == 300 * S
    step(150)
    (kept,) = kept_rule.active.values()
    assert (kept.state, kept.active_at, kept.fired_at) == (FIRING, 100 * S, 130 * S)
    assert kept.annotations == {"summary": "a is down"}

    (tmp_path / "r.yml").write_text(edited.replace("severity: page", "severity: ticket"))
    assert manager.reload(_loaded(tmp_path, ["r.yml"])) == []
    other = manager.groups[key].rules[1]
    assert isinstance(other, AlertingRule) and other.active == {}
    step(160)
    (fresh,) = other.active.values()
    assert (fresh.state, fresh.active_at) == (PENDING, 160 * S)


def test_reload_ends_the_series_of_a_rule_the_group_no_longer_has(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(RULES + "      - record: target:up\n        expr: probe_success\n")
    (tmp_path / "reader.yml").write_text("groups:\n  - name: reader\n    rules:\n"
                                         "      - record: target:up:copy\n        expr: target:up\n")
    manager = RuleManager(_loaded(tmp_path, ["r.yml", "reader.yml"]))
    key = f"{tmp_path / 'r.yml'};g"
    t_ms = int(time.time() * 1000) - 2000
    manager.store.ingest("a", [("probe_success", (("target", "a"),), 1.0)], t_ms / 1000)
    manager._evaluate(key, t_ms)
    expr = promql.parse("target:up")
    assert len(query_vector(expr, manager.store, t_ms, 10 * S)) == 1
    (tmp_path / "r.yml").write_text(RULES)
    assert manager.reload(_loaded(tmp_path, ["r.yml", "reader.yml"])) == []
    assert query_vector(expr, manager.store, int(time.time() * 1000) + 1, 10 * S) == []


def test_templates_see_the_samples_full_labels_but_the_alert_drops_the_name() -> None:
    """Prometheus gives templates the sample's labels with __name__; the alert's labels drop it."""
    g, store = group("""
groups:
  - name: g
    interval: 10s
    rules:
      - alert: Down
        expr: probe_success == 0
        labels: {metric: "{{ $labels.__name__ }}"}
        annotations: {summary: "{{ $labels.__name__ }} {{ len $labels }} {{ range $k, $v := $labels }}{{ $k }},{{ end }}"}
"""), MemoryStorage()
    g.rules[0].restored = True
    feed(store, 0, {"a": 0.0})
    g.eval(0, store)
    (alert,) = g.rules[0].active.values()
    assert dict(alert.labels) == {"alertname": "Down", "metric": "probe_success", "target": "a"}
    assert alert.annotations["summary"] == "probe_success 2 __name__,target,"


def test_api_alerts_shows_a_pending_alert_as_pending_with_no_start(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text("groups:\n  - name: g\n    rules:\n      - alert: Down\n"
                                    "        expr: probe_success == 0\n        for: 5m\n")
    manager = RuleManager(_loaded(tmp_path, ["r.yml"]))
    key = next(iter(manager.groups))
    manager.groups[key].rules[0].restored = True
    manager.store.ingest("a", [("probe_success", (("target", "a"),), 0.0)], 100.0)
    manager._evaluate(key, 100_000)
    [alert] = manager.active_alerts()
    assert alert["state"] == "pending" and alert["status"] == "pending"
    assert alert["startsAt"] is None and alert["activeAt"].startswith("1970-01-01T00:01:40")
    manager.store.ingest("a", [("probe_success", (("target", "a"),), 0.0)], 500.0)
    manager._evaluate(key, 500_000)
    [alert] = manager.active_alerts()
    assert alert["status"] == "firing" and alert["startsAt"].startswith("1970-01-01T00:08:20")
