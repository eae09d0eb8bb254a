"""Two replicas of two shards behind a real Alertmanager cluster, scraped by a real Prometheus.

Three `prometheus-alertmanager` processes gossip on loopback; four tocsin processes (replicas
a and b, shards 0 and 1 of the same targets) send every alert to all three. Alertmanager
deduplicates by labels, which works only because both replicas send identical label sets
(`replica` is never on an alert). A webhook sink behind the Alertmanagers counts what a person
would be paged with; a Prometheus scrapes the fleet with `tocsin prometheus-config`'s output
and evaluates its fleet rules.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from conftest import free_port, free_port_run, require_tool, scaled, wait_for
from notify_sinks import HTTPSink
from tocsin.cluster.config import shard_of

RULES = """
groups:
  - name: down
    interval: 300ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
"""


class Listening:
    """A TCP port that accepts (target up) until closed (target down), and can be reopened."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sock: socket.socket | None = None
        self.open()

    def open(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        self.sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    @staticmethod
    def _accept(sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.sock = None


def _alertmanagers(binary: str, tmp: Path, sink: HTTPSink, count: int = 3) -> tuple[list[subprocess.Popen], list[str]]:
    (tmp / "am.yml").write_text(f"""
route: {{receiver: sink, group_by: [alertname, target], group_wait: 1s, group_interval: 3s, repeat_interval: 1h}}
receivers:
  - name: sink
    webhook_configs: [{{url: "{sink.url}/am", send_resolved: true}}]
""")
    web = [free_port() for _ in range(count)]
    gossip = [free_port() for _ in range(count)]
    procs = []
    for i in range(count):
        peers = [f"--cluster.peer=127.0.0.1:{gossip[j]}" for j in range(count) if j != i]
        procs.append(subprocess.Popen(
            [binary, f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / f'am{i}'}",
             f"--web.listen-address=127.0.0.1:{web[i]}", f"--cluster.listen-address=127.0.0.1:{gossip[i]}",
             "--cluster.advertise-address=127.0.0.1:%d" % gossip[i], "--cluster.peer-timeout=1s",
             "--cluster.gossip-interval=100ms", "--cluster.pushpull-interval=2s", *peers],
            stdout=subprocess.DEVNULL, stderr=(tmp / f"am{i}.log").open("wb")))
    return procs, [f"http://127.0.0.1:{p}" for p in web]


def _tocsin_config(tmp: Path, replica: str, port: int, targets: dict[str, int], ams: list[str]) -> Path:
    lines = "\n".join(f'  - {{name: {name}, tcp: {{address: "127.0.0.1:{p}"}}}}' for name, p in targets.items())
    path = tmp / f"tocsin-{replica}.yml"
    path.write_text(f"""
global: {{listen_address: "127.0.0.1:{port}", interval: 300ms, timeout: 250ms, state_dir: "{tmp}/state-{replica}"}}
cluster: {{shards: 2, replica: {replica}}}
targets:
{lines}
rule_files: [{tmp}/rules.yml]
alerting:
  route: {{receiver: am}}
  receivers:
    - {{name: am, alertmanager: {{urls: {json.dumps(ams)}}}}}
""")
    return path


def _notifications(sink: HTTPSink, target: str, status: str) -> int:
    """How many times the people behind the sink were told `target` is `status`."""
    return sum(1 for body in sink.bodies() for alert in body["alerts"]
               if alert["labels"].get("target") == target and alert["status"] == status)


def test_an_ha_pair_of_shards_pages_once_through_an_alertmanager_cluster(tmp_path):
    am_binary = require_tool("prometheus-alertmanager")
    prometheus = require_tool("prometheus")
    sink = HTTPSink()
    flip = Listening()
    targets = {"dead": free_port(), "flip": flip.port, "web": flip.port, "api": flip.port}
    (tmp_path / "rules.yml").write_text(RULES)
    ams, am_urls = _alertmanagers(am_binary, tmp_path, sink)
    procs: dict[tuple[str, int], subprocess.Popen] = {}
    prom = None
    try:
        for url in am_urls:
            wait_for(lambda url=url: len(requests.get(url + "/api/v2/status", timeout=2).json()["cluster"]["peers"]) == 3,
                     timeout=scaled(20), what="the alertmanager cluster formed")
        base = free_port_run(4)  # replica a: base, base + 1; replica b: base + 2, base + 3
        ports = {"a": base, "b": base + 2}
        for replica, port in ports.items():
            config = _tocsin_config(tmp_path, replica, port, targets, am_urls)
            for shard in (0, 1):
                procs[replica, shard] = subprocess.Popen(
                    [sys.executable, "-m", "tocsin.cli", "run", "--config", str(config), "--shard", str(shard)],
                    cwd=tmp_path, stdout=(tmp_path / f"tocsin-{replica}{shard}.out").open("wb"),
                    stderr=subprocess.STDOUT)
        # Prometheus over the fleet, configured by tocsin itself.
        generated = subprocess.run(
            [sys.executable, "-m", "tocsin.cli", "prometheus-config", "--config", str(tmp_path / "tocsin-a.yml"),
             "--replica", "a=127.0.0.1", "--replica", "b=127.0.0.1", "--scrape-interval", "1s",
             "--rules", str(tmp_path / "fleet.yml"), "--for", "0s"], capture_output=True, text=True, check=True)
        # Both replicas run on this one host here, on different ports: point b's entries at its port.
        scrape = generated.stdout.replace(f"127.0.0.1:{ports['a']}", "A0").replace(f"127.0.0.1:{ports['a'] + 1}", "A1")
        scrape = scrape.replace("A0", f"127.0.0.1:{ports['a']}", 1).replace("A1", f"127.0.0.1:{ports['a'] + 1}", 1)
        scrape = scrape.replace("A0", f"127.0.0.1:{ports['b']}").replace("A1", f"127.0.0.1:{ports['b'] + 1}")
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{tmp_path / 'fleet.yml'}]\n"
            + scrape)
        prom = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"))

        # 1. "dead" fires on both replicas of its shard: the sink hears of it once.
        wait_for(lambda: _notifications(sink, "dead", "firing") >= 1, timeout=scaled(30), what="dead's page")
        time.sleep(scaled(3))  # beyond the last peer's wait (2 × the 1 s peer timeout)
        assert _notifications(sink, "dead", "firing") == 1
        alert = next(a for b in sink.bodies() for a in b["alerts"] if a["labels"]["target"] == "dead")
        assert alert["labels"] == {"alertname": "TargetDown", "target": "dead", "shard": str(shard_of("dead", 2))}

        # 2. The fleet's Prometheus sees "dead" down from both vantage points; all four shards answer.
        def fleet_alerts() -> dict[str, int]:
            data = requests.get(f"http://127.0.0.1:{prom_port}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
            return Counter(a["labels"]["alertname"] for a in data if a["state"] == "firing")

        wait_for(lambda: fleet_alerts().get("TargetDownFromQuorum") == 1, timeout=scaled(30),
                 what="the fleet rule firing in Prometheus")
        def shards_seen() -> str | None:
            result = requests.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                                  params={"query": "count(tocsin_shard_info)"}, timeout=2).json()["data"]["result"]
            return result[0]["value"][1] if result else None

        # Every shard scraped (a shard that started last may not have been scraped yet when the rule fired).
        wait_for(lambda: shards_seen() == "4", timeout=scaled(20), what="Prometheus seeing all four shards")
        assert "TocsinShardCountMismatch" not in fleet_alerts()

        # 3. kill -9 one replica of flip's shard and one Alertmanager: the next page still arrives once.
        flip_shard = shard_of("flip", 2)
        procs["b", flip_shard].send_signal(signal.SIGKILL)
        ams[0].send_signal(signal.SIGKILL)
        flip.close()
        wait_for(lambda: _notifications(sink, "flip", "firing") >= 1, timeout=scaled(40), what="flip's page")
        time.sleep(scaled(3))
        assert _notifications(sink, "flip", "firing") == 1
        # 4. ... and so does its resolution.
        flip.open()
        wait_for(lambda: _notifications(sink, "flip", "resolved") >= 1, timeout=scaled(40), what="flip's resolve")
        time.sleep(scaled(3))
        assert _notifications(sink, "flip", "resolved") == 1
        assert _notifications(sink, "flip", "firing") == 1
        assert _notifications(sink, "dead", "firing") == 1
    finally:
        for proc in [*procs.values(), *ams, *([prom] if prom else [])]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*procs.values(), *ams, *([prom] if prom else [])]:
            try:
                proc.wait(scaled(20))
            except subprocess.TimeoutExpired:
                proc.kill()
        flip.close()
        sink.stop()
