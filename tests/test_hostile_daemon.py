"""A real daemon probing 40 hostile targets next to healthy ones, measured against a healthy-only run.

The issue's bar: with 40 hostile targets running, at least 99.9 % of probes end within their
deadline + 100 ms; healthy targets never fail, and start no later than in a run without
the hostile ones. Every probe's duration is read from /api/v1/targets (polled faster than
the interval, one entry per correlation id), the schedule's lateness from
tocsin_scheduler_lateness_seconds, healthy failures from tocsin_probes_total.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime

import requests

import hostile
from conftest import scaled, slowdown, wait_for
from hostile import HostileServer

INTERVAL, TIMEOUT = "1s", "900ms"
SLACK = 0.1
HEALTHY = 8
HOSTILE = 40


def hostile_behaviours(echo_url: str) -> list[tuple[str, hostile.Behaviour, dict]]:
    """(name, server behaviour, target options) — one each of what the issue names, and the older ones."""
    adversarial = b"xa" * 2**19  # 1 MiB for `(.*a){20}`
    return [
        ("slow-drip", hostile.slow_drip(0.05), {}),
        ("accept-hang", hostile.accept_and_hang(), {}),
        ("endless-body", hostile.endless_body(), {}),
        ("endless-chunked", hostile.endless_body(chunked=True), {}),
        ("huge-length", hostile.huge_content_length(), {}),
        ("redirect-loop", hostile.redirect_loop(), {}),
        ("reset", hostile.reset(), {}),
        ("garbage", hostile.garbage(), {}),
        ("endless-trailers", hostile.endless_trailers(), {}),
        ("one-byte-chunks", hostile.endless_tiny_chunks(), {}),
        ("length-minus-one", hostile.bad_content_length("-1"), {}),
        ("long-redirects", hostile.redirect_to_new_long_urls(), {"http": {"max_redirects": 50}}),
        ("credential-redirect", hostile.redirect_to(echo_url), {"http": {"bearer_token": "s3cret"}}),
        ("costly-regex", hostile.ok(adversarial), {"http": {"fail_if_body_not_matches_regexp": ["(.*a){20}"]}}),
    ]


class ProbeLog:
    """Every probe result the API shows while running: polled every 150 ms (the interval is 1 s)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[str, dict] = {}
        self.stop = threading.Event()
        self.since = float("inf")
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.wait(0.15):
            try:
                targets = requests.get(self.url + "/api/v1/targets", timeout=5).json()["data"]
            except (requests.RequestException, ValueError):
                continue
            for target in targets:
                result = target["last_result"]
                if result is None or datetime.fromisoformat(target["last_run"]).timestamp() < self.since:
                    continue
                self.seen.setdefault(result["correlation_id"], {**result, "name": target["name"],
                                                                "timeout": target["timeout_seconds"]})

    def measure(self, seconds: float) -> list[dict]:
        self.since = time.time()
        time.sleep(seconds)
        self.stop.set()
        self.thread.join()
        return list(self.seen.values())


def lateness(daemon) -> tuple[float, float]:
    return (daemon.sample("tocsin_scheduler_lateness_seconds_sum") or 0.0,
            daemon.sample("tocsin_scheduler_lateness_seconds_count") or 0.0)


def run(daemon_factory, tmp_path, healthy: list[str], hostile_targets: list[str], seconds: float,
        env: dict[str, str]) -> tuple[list[dict], float, object]:
    directory = tmp_path / ("hostile" if hostile_targets else "baseline")
    directory.mkdir()
    body = "\n".join(f"  - {line}" for line in healthy + hostile_targets)
    config = (f'global: {{listen_address: "127.0.0.1:{{port}}", interval: {INTERVAL}, timeout: {TIMEOUT}}}\n'
              f"targets:\n{body}\n")
    daemon = daemon_factory(config, env=env, start=False)
    daemon.dir = directory
    daemon.config = directory / "tocsin.yml"
    daemon.log = directory / "daemon.out"
    daemon.write_config(config)
    daemon.start()
    wait_for(lambda: all(t["last_result"] for t in daemon.targets()), timeout=10, what="a first result everywhere")
    log = ProbeLog(daemon.url)
    sum0, count0 = lateness(daemon)
    probes = log.measure(seconds)
    sum1, count1 = lateness(daemon)
    mean_lateness = (sum1 - sum0) / max(count1 - count0, 1)
    return probes, mean_lateness, daemon


def test_forty_hostile_targets_leave_deadlines_and_healthy_targets_alone(daemon_factory, tmp_path):
    with HostileServer(hostile.ok()) as ok, HostileServer(hostile.echo_headers()) as echo, \
            hostile.DNSServer({}, silent=True) as silent_dns:
        healthy = ([f'{{name: h-ip-{i}, url: "{ok.url()}"}}' for i in range(3)]
                   + [f'{{name: h-localhost-{i}, url: "http://localhost:{ok.port}/health"}}' for i in range(3)]
                   + [f'{{name: h-regex, url: "{ok.url()}", http: {{fail_if_body_not_matches_regexp: ["ok"]}}}}',
                      f'{{name: h-tcp, tcp: {{address: "127.0.0.1:{ok.port}"}}}}'])
        assert len(healthy) == HEALTHY
        env = {"TOCSIN_NAMESERVERS": f"127.0.0.1:{silent_dns.port}"}
        baseline, baseline_lateness, base_daemon = run(daemon_factory, tmp_path, healthy, [], 6, env)
        base_daemon.stop()

        servers = [HostileServer(behaviour) for _, behaviour, _ in hostile_behaviours(echo.url())]
        for server in servers:
            server.__enter__()
        try:
            kinds = [(name, server, options) for (name, _, options), server in
                     zip(hostile_behaviours(echo.url()), servers, strict=True)]
            hostile_targets = []
            for i in range(HOSTILE):
                choice = i % (len(kinds) + 3)
                if choice < len(kinds):
                    name, server, options = kinds[choice]
                    extra = "".join(f", {key}: {value!r}".replace("'", '"') for key, value in options.items())
                    hostile_targets.append(f'{{name: x-{name}-{i}, url: "{server.url()}"{extra}}}')
                elif choice == len(kinds):  # a name only a silent resolver knows
                    hostile_targets.append(f'{{name: x-silent-resolver-{i}, url: "http://t{i}.hang.test:{ok.port}/"}}')
                elif choice == len(kinds) + 1:
                    hostile_targets.append(f'{{name: x-silent-dns-{i}, dns: {{query: "q{i}.hang.test",'
                                           f' server: "127.0.0.1:{silent_dns.port}"}}}}')
                else:
                    hang = kinds[1][1]
                    hostile_targets.append(f'{{name: x-tcp-hang-{i}, tcp: {{address: "127.0.0.1:{hang.port}",'
                                           f' expect: "^never"}}}}')
            random.Random(7).shuffle(hostile_targets)
            probes, hostile_lateness, daemon = run(daemon_factory, tmp_path, healthy, hostile_targets, 15, env)
            failures = {name: daemon.sample("tocsin_probes_total", target=name, result="failure")
                        for name in (t.split(",")[0].removeprefix("{name: ") for t in healthy)}
            daemon.stop()
        finally:
            for server in servers:
                server.__exit__()

    slack = SLACK * slowdown()
    late = [p for p in probes if p["duration_seconds"] > p["timeout"] + slack]
    within = 1 - len(late) / len(probes)
    within_issue = sum(p["duration_seconds"] <= p["timeout"] + SLACK for p in probes) / len(probes)
    healthy_probes = [p for p in probes if p["name"].startswith("h-")]
    healthy_mean = sum(p["duration_seconds"] for p in healthy_probes) / len(healthy_probes)
    baseline_mean = sum(p["duration_seconds"] for p in baseline) / len(baseline)
    print(f"\n{len(probes)} probes ({len(healthy_probes)} healthy), {within:.2%} within deadline + {slack:.2f} s,"
          f" {within_issue:.2%} within deadline + {SLACK} s (slowdown {slowdown():.1f});"
          f" late: {[(p['name'], p['duration_seconds']) for p in late][:5]}\n"
          f"scheduler lateness mean {hostile_lateness * 1000:.1f} ms (baseline {baseline_lateness * 1000:.1f} ms);"
          f" healthy probe mean {healthy_mean * 1000:.1f} ms (baseline {baseline_mean * 1000:.1f} ms);"
          f" healthy failures {failures}")
    assert len(probes) >= (HEALTHY + HOSTILE) * 15 * 0.8 / slowdown(), len(probes)  # the log saw most probes
    assert within >= 0.999, late[:10]
    assert all(not count for count in failures.values()), failures
    assert all(p["success"] for p in healthy_probes)
    # The same schedule and healthy probes as without hostile targets: a few ms of noise allowed.
    assert hostile_lateness <= 2 * baseline_lateness + scaled(0.005), (hostile_lateness, baseline_lateness)
    assert healthy_mean <= 2 * baseline_mean + scaled(0.005), (healthy_mean, baseline_mean)
