"""tocsin reads routing trees and matchers as Alertmanager 0.25 does: differential tests.

The same generated trees, alerts and matcher strings go through tocsin and through the real
amtool (`check-config`, `config routes show`, `config routes test`) and a real Alertmanager
whose webhooks give the reference `groupKey` and group labels. Seeds are fixed.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from am_harness import alertmanager, check_configs, post_alerts, routes_show, routes_test
from dialect_gen import CURATED, RECEIVERS, alert, fuzz_matcher, fuzz_regex, matcher_line, tree
from prometheus_client import CollectorRegistry

from conftest import scaled, wait_for
from notify_sinks import HTTPSink
from tocsin.config import parse_config
from tocsin.errors import ConfigError
from tocsin.notify import Alert, Notifier, NotifyMetrics
from tocsin.notify.matchers import compile_go_regexp, format_matchers, parse_matchers, sorted_matchers
from tocsin.notify.router import build

TREES, ALERTS_PER_TREE = 30, 8


def tocsin_accepts(alerting: dict[str, Any]) -> str | None:
    try:
        parse_config({"alerting": alerting}, "t.yml")
    except ConfigError as exc:
        return "; ".join(exc.errors) or str(exc)
    return None


def test_matcher_strings_are_accepted_and_read_as_alertmanager_does(tmp_path):
    rng = random.Random(1325)
    strings = list(dict.fromkeys(CURATED + [fuzz_matcher(rng) for _ in range(300)]
                                 + [matcher_line(rng) for _ in range(100)]))
    configs = [{"route": {"receiver": "r0", "routes": [{"matchers": [s]}]}, "receivers": [{"name": "r0"}]}
               for s in strings]
    verdicts = check_configs(tmp_path / "check", configs)
    ours: dict[str, str | None] = {}
    for s in strings:
        try:
            parse_matchers(s)
            ours[s] = None
        except ValueError as exc:
            ours[s] = str(exc)
    disagree = [(s, am, ours[s]) for s, am in zip(strings, verdicts, strict=True) if (am is None) != (ours[s] is None)]
    assert not disagree, f"{len(disagree)} of {len(strings)} matcher strings judged differently: {disagree[:10]}"
    accepted = [s for s, am in zip(strings, verdicts, strict=True) if am is None]
    assert 100 < len(accepted) < len(strings) - 50, "the corpus has both kinds"
    shown = routes_show(tmp_path, {"route": {"receiver": "r0", "routes": [{"matchers": [s]} for s in accepted]},
                                   "receivers": [{"name": "r0"}]})
    mine = [format_matchers(sorted_matchers(parse_matchers(s))) for s in accepted]
    wrong = [(s, theirs, m) for s, theirs, m in zip(accepted, shown, mine, strict=True) if theirs != m]
    assert not wrong, f"{len(wrong)} of {len(accepted)} read differently (string, amtool, tocsin): {wrong[:10]}"


def test_regexps_are_accepted_as_go_accepts_them(tmp_path):
    """RE2 in C++ takes `\\C` and `(?<name>x)`; Go's regexp (Alertmanager 0.25 is built with Go
    1.19) does not."""
    rng = random.Random(4242)
    patterns = list(dict.fromkeys(fuzz_regex(rng) for _ in range(800)))
    theirs = check_configs(tmp_path, [{"route": {"receiver": "r0", "routes": [{"match_re": {"a": p}}]},
                                       "receivers": [{"name": "r0"}]} for p in patterns])
    ours = []
    for pattern in patterns:
        try:
            compile_go_regexp(pattern)
            ours.append(True)
        except ValueError:
            ours.append(False)
    wrong = [(p, t) for p, t, o in zip(patterns, theirs, ours, strict=True) if (t is None) != o]
    assert not wrong, f"{len(wrong)} of {len(patterns)} regexps judged differently: {wrong[:10]}"
    assert 100 < ours.count(True) < len(patterns) - 100


def delivered(sink: HTTPSink) -> tuple[dict[tuple, set[tuple[str, str]]], dict[tuple[str, str], dict[str, str]]]:
    """From webhook bodies: each alert's (receiver, groupKey) pairs, and each group's labels."""
    by_alert: dict[tuple, set[tuple[str, str]]] = {}
    labels: dict[tuple[str, str], dict[str, str]] = {}
    for body in sink.bodies():
        labels[(body["receiver"], body["groupKey"])] = body["groupLabels"]
        for a in body["alerts"]:
            by_alert.setdefault(tuple(sorted(a["labels"].items())), set()).add((body["receiver"], body["groupKey"]))
    return by_alert, labels


def wait_deliveries(sink: HTTPSink, want: int) -> None:
    deadline = time.monotonic() + scaled(20)
    while time.monotonic() < deadline and sum(len(v) for v in delivered(sink)[0].values()) < want:
        time.sleep(0.2)
    time.sleep(scaled(1.5))  # anything sent beyond what is expected


def test_generated_trees_route_and_group_as_in_alertmanager(tmp_path):
    """Receivers (amtool), route keys, group labels and groupKey (webhooks of Alertmanager and
    of tocsin's own dispatcher) for every alert."""
    rng = random.Random(2023)
    route = {"receiver": "r0", "group_wait": "1s", "group_interval": "1h", "repeat_interval": "4h",
             "routes": [tree(rng, i) for i in range(TREES)]}
    alerts = list({tuple(sorted(a.items())): a for a in (alert(rng, i) for i in range(TREES)
                                                          for _ in range(ALERTS_PER_TREE))}.values())
    am_sink, our_sink = HTTPSink(), HTTPSink()
    notifier = None
    try:
        config = parse_config({"alerting": {"route": route, "receivers": [
            {"name": r, "webhook": {"url": f"{our_sink.url}/{r}", "send_resolved": False}} for r in RECEIVERS]}},
            "t.yml")
        root, _ = build(config.alerting)
        am_config = {"route": route, "receivers": [
            {"name": r, "webhook_configs": [{"url": f"{am_sink.url}/{r}", "send_resolved": False}]}
            for r in RECEIVERS]}
        assert check_configs(tmp_path / "check", [am_config]) == [None]

        expected: dict[tuple, set[tuple[str, str]]] = {}
        group_labels: dict[tuple[str, str], dict[str, str]] = {}
        with ThreadPoolExecutor(4) as pool:  # one amtool process per alert
            amtool = list(pool.map(lambda labels: routes_test(tmp_path / "check" / "c0.yml", labels), alerts))
        for labels, receivers in zip(alerts, amtool, strict=True):
            routes = root.match(labels)
            assert receivers == [r.receiver for r in routes], labels
            for r in routes:
                group_labels[(r.receiver, r.group_key(r.group_labels(labels)))] = r.group_labels(labels)
            expected[tuple(sorted(labels.items()))] = {(r.receiver, r.group_key(r.group_labels(labels))) for r in routes}
        want = sum(len(v) for v in expected.values())

        notifier = Notifier(config.alerting, state_dir=str(tmp_path / "state"), external_labels={},
                            metrics=NotifyMetrics(CollectorRegistry()))
        notifier.start()
        now = datetime.now(timezone.utc)
        notifier.submit([Alert(labels=labels, starts_at=now) for labels in alerts])
        with alertmanager(tmp_path / "am", am_config) as url:
            post_alerts(url, alerts)
            wait_deliveries(am_sink, want)
        wait_deliveries(our_sink, want)
        for who, sink in (("Alertmanager", am_sink), ("tocsin", our_sink)):
            got, labels_sent = delivered(sink)
            wrong = [(dict(k), sorted(got.get(k, ())), sorted(v)) for k, v in expected.items() if got.get(k, set()) != v]
            assert not wrong, f"{who}: {len(wrong)} of {len(alerts)} alerts grouped differently: {wrong[:5]}"
            assert labels_sent == group_labels, who
        keys = {k for v in expected.values() for _, k in v}
        assert len(alerts) >= 200 and len(keys) >= 100, (len(alerts), len(keys))
    finally:
        if notifier is not None:
            notifier.stop()
        am_sink.stop()
        our_sink.stop()


STRICT_CASES = [
    {"group_wait": " 5m"}, {"group_wait": "5m "}, {"group_wait": "\uff15m"}, {"group_wait": "5"},
    {"group_wait": "0"}, {"group_wait": "1h30m"}, {"group_wait": "1.5m"}, {"group_interval": "0s"},
    {"continue": "true"}, {"continue": True}, {"continue": "yes"}, {"group_by": ["...", "a"]},
    {"group_by": ["a", "a"]}, {"group_by": ["a-b"]}, {"group_by": []}, {"group_by": ["...", "..."]}, {"match": {"a-b": "x"}},
    {"match": {"a": "x"}}, {"match_re": {"a": "("}}, {"match_re": {"a": "\\C"}}, {"match_re": {"a": "(?<n>x)"}},
    {"match_re": {"a": "x|y"}}, {"receiver": ""}, {"receiver": "nope"}, {"matchers": ["a=b", ""]},
    {"mute_time_intervals": ["nope"]}, {"active_time_intervals": ["night"]}, {"mute_time_intervals": ["night"]},
]
ROOT_CASES = [{"continue": True}, {"matchers": ["a=b"]}, {"match": {"a": "b"}}, {"receiver": ""},
              {"mute_time_intervals": ["night"]}, {"group_by": []}, {"matchers": [""]}]


@pytest.mark.parametrize("root_level", [False, True])
def test_config_strictness_agrees_with_alertmanager(tmp_path, root_level):
    night = [{"name": "night", "time_intervals": [{"times": [{"start_time": "00:00", "end_time": "06:00"}]}]}]
    cases = ROOT_CASES if root_level else STRICT_CASES
    routes = [{"receiver": "r0", **case} if root_level else {"receiver": "r0", "routes": [case]} for case in cases]
    theirs = check_configs(tmp_path, [{"route": r, "receivers": [{"name": "r0"}], "time_intervals": night}
                                      for r in routes])
    ours = [tocsin_accepts({"route": r, "receivers": [{"name": "r0"}], "time_intervals": night}) for r in routes]
    wrong = [(case, am, mine) for case, am, mine in zip(cases, theirs, ours, strict=True) if (am is None) != (mine is None)]
    assert not wrong, wrong


def test_send_resolved_is_a_boolean_not_a_string(tmp_path):
    def config(value: object, tocsin: bool) -> dict[str, Any]:
        hook = {"url": "http://127.0.0.1:1/", "send_resolved": value}
        return {"route": {"receiver": "r0"}, "receivers": [{"name": "r0", **(
            {"webhook": hook} if tocsin else {"webhook_configs": [hook]})}]}
    values = [True, "true", "yes", 1]
    theirs = check_configs(tmp_path, [config(v, tocsin=False) for v in values])
    ours = [tocsin_accepts(config(v, tocsin=True)) for v in values]
    assert [t is None for t in theirs] == [o is None for o in ours] == [True, False, False, False]


def test_env_references_do_not_reach_matchers(monkeypatch):
    monkeypatch.setenv("TEAM", "db")
    config = parse_config({"alerting": {
        "route": {"receiver": "${TEAM}", "routes": [{"matchers": ["cost=cost$$", 'team="${TEAM}"'],
                                                    "match": {"x": "$$"}, "match_re": {"y": "a$$"}}]},
        "receivers": [{"name": "db"}]}}, "t.yml")
    root, _ = build(config.alerting)
    assert root.receiver == "db"  # expanded elsewhere, as before
    assert root.routes[0].key == '{}/{cost="cost$$",team="${TEAM}",x="$$",y=~"^(?:a$$)$"}'


INHIBIT_RULES = [
    {"source_match": {"severity": "critical"}, "target_match": {"severity": "warning"}, "equal": ["team", "n"]},
    {"source_matchers": ['alertname=~"Node.*"'], "target_match_re": {"alertname": "Disk.*|Cpu"}, "equal": ["n"]},
    {"source_match_re": {"env": "prod|stage"}, "target_matchers": ['env="dev"'], "equal": ["svc", "n"]},
    {"target_matchers": ["alertname=Noisy"]},
]


def test_inhibit_rules_with_legacy_keys_mute_as_in_alertmanager(tmp_path):
    """Which alerts a real Alertmanager lists as inhibited, for seeded alerts and four rules."""
    rng = random.Random(77)
    alerts = list({tuple(sorted(a.items())): a for a in (
        {"alertname": rng.choice(["NodeDown", "DiskFull", "Cpu", "Noisy", "Other"]),
         "severity": rng.choice(["critical", "warning"]), "team": rng.choice("ab"),
         "env": rng.choice(["prod", "stage", "dev"]), "svc": rng.choice("xy"), "n": str(i % 8)}
        for i in range(40))}.values())
    config = parse_config({"alerting": {"route": {"receiver": "r0"}, "receivers": [{"name": "r0"}],
                                        "inhibit_rules": INHIBIT_RULES}}, "t.yml")
    _, inhibitor = build(config.alerting)
    muted = inhibitor.muter(alerts)
    ours = {tuple(sorted(a.items())) for a in alerts if muted(a)}
    assert 5 < len(ours) < len(alerts) - 5, f"both kinds in the corpus: {len(ours)} of {len(alerts)} muted"
    with alertmanager(tmp_path / "am", {"route": {"receiver": "r0"}, "receivers": [{"name": "r0"}],
                                        "inhibit_rules": INHIBIT_RULES}) as url:
        post_alerts(url, alerts)

        def inhibited() -> set[tuple] | None:
            listed = requests.get(url + "/api/v2/alerts", timeout=5).json()
            if len(listed) < len(alerts):
                return None
            return {tuple(sorted(a["labels"].items())) for a in listed if a["status"]["inhibitedBy"]}
        wait_for(lambda: inhibited() == ours, timeout=10, what="Alertmanager's inhibitions")


def test_group_keys_quote_label_values_as_go_does():
    """prometheus/common's LabelSet.String(): `, ` between pairs and strconv.Quote'd values."""
    from tocsin.gofmt import go_label_set, strconv_quote
    assert strconv_quote('a\tb\x01\x7f\u00a0é\u200b\U0001f600\n"\\') == '"a\\tb\\x01\\x7f\\u00a0é\\u200b\U0001f600\\n\\"\\\\"'
    assert go_label_set({"b": "x", "a": "y\tz"}) == '{a="y\\tz", b="x"}'
