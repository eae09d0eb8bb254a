"""The listener's optional hardening (TLS, basic auth) and the demo target, over real sockets;
the pages it shows, built from the few parts of the daemon they read."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
import requests
import trustme

from conftest import free_port, wait_for
from tocsin.config import parse_config
from tocsin.history import HistoryRecorder
from tocsin.probes import ProbeResult
from tocsin.scheduler import TargetState
from tocsin.web.views import WebViews


@pytest.fixture
def listener_tls(tmp_path):
    """A server certificate for 127.0.0.1 and the CA that signed it: (cert, key, ca) paths."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    return cert_file, key_file, ca_file


def test_basic_auth_and_tls_on_the_listener(daemon_factory, listener_tls):
    cert_file, key_file, ca_file = listener_tls
    digest = hashlib.sha256(b"s3cret").hexdigest()
    daemon = daemon_factory(f"""
global:
  listen_address: "127.0.0.1:{{port}}"
  web: {{tls_cert_file: "{cert_file}", tls_key_file: "{key_file}", basic_auth_users: {{prom: "sha256:{digest}"}}}}
""", start=False)
    daemon.start(wait_ready=False)
    url = f"https://127.0.0.1:{daemon.port}"
    wait_for(lambda: requests.get(url + "/-/healthy", verify=str(ca_file), auth=("prom", "s3cret"), timeout=2).ok,
             what="the TLS listener")
    assert requests.get(url + "/metrics", verify=str(ca_file), timeout=2).status_code == 401
    assert requests.get(url + "/metrics", verify=str(ca_file), auth=("prom", "wrong"), timeout=2).status_code == 401
    ok = requests.get(url + "/metrics", verify=str(ca_file), auth=("prom", "s3cret"), timeout=2)
    assert ok.status_code == 200 and "tocsin_build_info" in ok.text
    for _ in range(10):  # the wrong guess above was the first of eleven: refused with 429
        requests.get(url + "/metrics", verify=str(ca_file), auth=("prom", "wrong"), timeout=2)
    refused = requests.get(url + "/metrics", verify=str(ca_file), auth=("prom", "wrong"), timeout=2)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    ok = requests.get(url + "/metrics", verify=str(ca_file), auth=("prom", "s3cret"), timeout=2)
    assert ok.status_code == 200 and "tocsin_web_auth_refused_total 2.0" in ok.text, ok.text[-3000:]
    assert daemon.stop() == 0


def test_demo_target_serves_health_errors_and_404():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tocsin.cli", "demo-target", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(base + "/health", timeout=1).json()["status"] == "ok", what="demo target")
        assert requests.get(base + "/", timeout=1).status_code == 200
        codes = [requests.get(base + "/simulate/error", timeout=2).status_code for _ in range(50)]
        assert set(codes) <= {200, 500} and 25 <= codes.count(500) <= 49  # 80 % fail; 50 tries
        assert requests.get(base + "/nope", timeout=1).status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_stalled_tls_client_does_not_block_the_listener(daemon_factory, listener_tls):
    cert_file, key_file, ca_file = listener_tls
    daemon = daemon_factory(f"""
global:
  listen_address: "127.0.0.1:{{port}}"
  web: {{tls_cert_file: "{cert_file}", tls_key_file: "{key_file}"}}
""", start=False)
    daemon.start(wait_ready=False)
    url = f"https://127.0.0.1:{daemon.port}"
    wait_for(lambda: requests.get(url + "/-/healthy", verify=str(ca_file), timeout=2).ok, what="the TLS listener")
    stalled = [socket.create_connection(("127.0.0.1", daemon.port)) for _ in range(3)]  # connect, never handshake
    try:
        response = requests.get(url + "/-/healthy", verify=str(ca_file), timeout=3)
        assert response.status_code == 200
    finally:
        for s in stalled:
            s.close()
    assert daemon.stop() == 0


class _Table:
    """A scheduler's target table, as far as the views read it."""

    def __init__(self, states: dict[str, TargetState], next_run: datetime) -> None:
        self.states = states
        self._next_run = next_run

    def next_run(self, name: str) -> datetime | None:
        return self._next_run if name in self.states else None


class _Alerts:
    def active_alerts(self) -> list[dict]:
        return [{"labels": {"alertname": "Down"}, "state": "firing"}]


class _Counts:
    up = 1


def test_views_read_only_the_target_table_alerts_and_counts(tmp_path):
    web, gone = parse_config({"targets": [{"name": "web", "url": "http://example.test/", "labels": {"team": "core"}},
                                          {"name": "<gone>", "tcp": {"address": "127.0.0.1:9"}}]}, "test").targets
    result = ProbeResult(target="web", kind="http", success=True, reason="", message="", duration=0.0123456789,
                         attempts=1, first_attempt_success=True, correlation_id="c1", started_at=0.0, timeout=1.0,
                         facts={"http_status_code": 200.0, "ssl_earliest_cert_expiry": time.time() + 10.5 * 86400})
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    table = _Table({"web": TargetState(web, 15.0, last_result=result), "<gone>": TargetState(gone, 30.0)}, at)
    history = HistoryRecorder(str(tmp_path / "history.db"))
    views = WebViews(table, _Alerts(), _Counts(), (lambda: "a 1\n", lambda: "b 2\n"), history)

    assert views.render_metrics() == [b"a 1\n", b"b 2\n"]
    assert views.api("alerts") is None  # /api/v1/alerts is Prometheus's read API (web/prom_api.py)
    assert views.api("nope") is None
    targets = {t["name"]: t for t in views.api("targets")}
    assert targets["web"]["endpoint"] == "http://example.test/" and targets["web"]["labels"] == {"team": "core"}
    assert targets["web"]["health"] == "up" and targets["web"]["current_interval_seconds"] == 15.0
    assert targets["web"]["last_run"] == "1970-01-01T00:00:00+00:00" and targets["web"]["next_run"] == at.isoformat()
    assert targets["web"]["last_result"]["duration_seconds"] == 0.012346
    assert targets["web"]["last_result"]["status_code"] == 200
    assert targets["<gone>"]["labels"] == {} and targets["<gone>"]["endpoint"] == "127.0.0.1:9"
    assert targets["<gone>"]["health"] == "unknown" and targets["<gone>"]["last_result"] is None
    page = views.page("/", "")
    assert page is not None
    text = page.body.decode()
    assert "2 targets: 1 unknown, 1 up." in text and "&lt;gone&gt;" in text and "<gone>" not in text
    assert ">12 ms (–)<" in text and ">10 days<" in text
    history.stop()
