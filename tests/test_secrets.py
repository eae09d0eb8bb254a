"""The secrets sweep: plant a distinctive secret in every secret field, then look everywhere.

Every secret field gets its own marker, given inline, through `${ENV}` or through a
`*_file`. The receivers point at loopback sinks that refuse every request and echo it
back (the path percent-encoded, the Authorization header, the body), so their errors carry
the secrets back into tocsin; one webhook points at a closed port, so the HTTP library's
own error names its percent-encoded path. A real daemon then runs at each log level with
every log destination on (the console, a JSON file, syslog to a unix socket this test
reads), and the sweep searches all of it, the API, the status page, /metrics, the SQLite
files in state_dir (as bytes), and the output of `tocsin check config` and
`tocsin notify test`, for each marker and for the base64 forms the credentials are sent in.
"""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from conftest import free_port, scaled, wait_for

# The markers: each appears in every text form of its secret except base64 (checked apart).
PROBE_URL_PW = "PrbUrlPw4e1"      # probe URL userinfo, inline; the password is `PrbUrlPw4e1/z`
BASIC_PW = "BscEnvPw7c2"          # probe basic_auth.password via ${ENV}
BEARER = "BrrFileTk9d3"           # probe bearer_token_file
PROBE_HEADER = "PrbHdrKey5b8"     # probe headers.X-Api-Key, inline
HOOK_PATH = "WhkPath3a9"          # webhook url, inline (its path has a space: percent-encoded on the wire)
HOOK_HEADER = "WhkHdrTk6f1"       # webhook headers.Authorization, inline
GONE_PATH = "ClsdPath0f5"         # webhook url_file to a closed port (the path has a non-ASCII letter)
SLACK_PATH = "SlkPath8e2"         # slack webhook_url_file
PD_KEY = "PgdEnvKey2c7"           # pagerduty routing_key via ${ENV}
MAIL_PW = "MailPw5a4x"            # email auth_password_file
AM_PW = "AmUrlPw1d6"              # alertmanager url userinfo, inline
MARKERS = (PROBE_URL_PW, BASIC_PW, BEARER, PROBE_HEADER, HOOK_PATH, HOOK_HEADER, GONE_PATH, SLACK_PATH, PD_KEY,
           MAIL_PW, AM_PW)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# How the credentials travel: Basic for HTTP, AUTH PLAIN for SMTP.
ENCODED = {
    "probe userinfo Basic": _b64(f"prober:{PROBE_URL_PW}/z"),
    "probe basic_auth Basic": _b64(f"probeuser:{BASIC_PW}"),
    "alertmanager userinfo Basic": _b64(f"amuser:{AM_PW}"),
    "SMTP AUTH PLAIN": _b64(f"\0mailer\0{MAIL_PW}"),
}


def leaks(text: str) -> list[str]:
    """Which secrets `text` shows, in any form (raw, percent-encoded, escaped or base64)."""
    found = [marker for marker in MARKERS if marker in text]
    return found + [name for name, form in ENCODED.items() if form in text or form.rstrip("=") in text]


# ---------------------------------------------------------------- loopback peers


class EchoSink:
    """An HTTP receiver that refuses everything (500) and echoes what it got: what a
    misbehaving or debugging peer does, and the way secrets come back in error text."""

    def __init__(self) -> None:
        self.requests = 0

        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.requests += 1
                echo = (f"{quote(self.path, safe='')} {self.headers.get('Authorization', '')} "
                        f"{body[:60].decode(errors='replace')}").encode()
                self.send_response(500)
                self.send_header("Content-Length", str(len(echo)))
                self.end_headers()
                self.wfile.write(echo)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ProbedService:
    """The probed HTTP service: answers 200 and records each request's Authorization header."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's API
                service.authorizations.append(self.headers.get("Authorization", ""))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class EchoSMTP:
    """An SMTP server that offers AUTH PLAIN and refuses it, echoing the AUTH line back."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    @staticmethod
    def _session(conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 echo ESMTP\r\n")
            for raw in lines:
                line = raw.decode(errors="replace").strip()
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    conn.sendall(b"250-echo\r\n250 AUTH PLAIN\r\n")
                elif verb == "AUTH":
                    conn.sendall(f"535 5.7.8 refused: {line}\r\n".encode())
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")

    def stop(self) -> None:
        self._listener.close()


class SyslogSocket:
    """A syslog daemon of our own: an AF_UNIX datagram socket, every datagram kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.datagrams: list[bytes] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                self.datagrams.append(self._sock.recv(65536))
            except OSError:
                return

    def text(self) -> str:
        return b"\n".join(self.datagrams).decode(errors="replace")

    def stop(self) -> None:
        self._sock.close()


# ---------------------------------------------------------------- the planted configuration

RULES = """groups:
  - name: always
    interval: 200ms
    rules:
      - alert: Always
        expr: vector(1)
        labels: {severity: critical}
        annotations: {summary: always firing}
"""

RECEIVERS = ("hook", "gone", "chat", "pager", "mail", "am")


@dataclass
class Planted:
    dir: Path
    env: dict[str, str]
    config: str
    service: ProbedService
    peers: list[Any] = field(default_factory=list)


@pytest.fixture
def planted(tmp_path: Path):
    service, hook, slack, pager, am, smtp = ProbedService(), EchoSink(), EchoSink(), EchoSink(), EchoSink(), EchoSMTP()
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "bearer").write_text(BEARER + "\n")
    (tmp_path / "gone.url").write_text(f"http://127.0.0.1:{free_port()}/gone/{GONE_PATH}-\u00fc\n")
    (tmp_path / "slack.url").write_text(f"{slack.url}/services/{SLACK_PATH}\n")
    (tmp_path / "mail.pw").write_text(MAIL_PW + "\n")
    env = {"TOCSIN_TEST_BASIC_PW": BASIC_PW, "TOCSIN_TEST_PD_KEY": PD_KEY}
    routes = "\n".join(f"      - {{receiver: {name}, matchers: ['alertname=\"Always\"'], continue: true}}"
                       for name in RECEIVERS)
    config = f"""global:
  listen_address: "127.0.0.1:{{port}}"
  interval: 300ms
  timeout: 250ms
  evaluation_interval: 200ms
  state_dir: "{tmp_path}/state"
logging:
  level: LEVEL
  console: {{format: text}}
  file: {{path: "{tmp_path}/logs/tocsin.log", format: json}}
  syslog: {{address: "{tmp_path}/syslog.sock", facility: local3, level: LEVEL}}
targets:
  - name: userinfo
    url: "http://prober:{PROBE_URL_PW}%2Fz@127.0.0.1:{service.port}/health"
  - name: basic
    url: "http://127.0.0.1:{service.port}/basic"
    http:
      basic_auth: {{username: probeuser, password: "${{TOCSIN_TEST_BASIC_PW}}"}}
      headers: {{X-Api-Key: {PROBE_HEADER}}}
  - name: bearer
    url: "http://127.0.0.1:{service.port}/bearer"
    http: {{bearer_token_file: "{tmp_path}/bearer"}}
  - name: down
    url: "http://prober:{PROBE_URL_PW}%2Fz@127.0.0.1:{free_port()}/down"
rule_files: [rules.yml]
alerting:
  delivery: {{initial_backoff: 50ms, max_backoff: 200ms, breaker_failures: 1000, breaker_cooldown: 1s}}
  route:
    receiver: hook
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
    routes:
{routes}
  receivers:
    - name: hook
      webhook: {{url: "{hook.url}/hook/{HOOK_PATH} x", headers: {{Authorization: "Bearer {HOOK_HEADER}"}}}}
    - name: gone
      webhook: {{url_file: "{tmp_path}/gone.url", timeout: 500ms}}
    - name: chat
      slack: {{webhook_url_file: "{tmp_path}/slack.url"}}
    - name: pager
      pagerduty: {{routing_key: "${{TOCSIN_TEST_PD_KEY}}", url: "{pager.url}/v2/enqueue"}}
    - name: mail
      email: {{to: [ops@example.org], from: tocsin@example.org, smarthost: "127.0.0.1:{smtp.port}",
              require_tls: false, auth_username: mailer, auth_password_file: "{tmp_path}/mail.pw"}}
    - name: am
      alertmanager: {{urls: ["http://amuser:{AM_PW}@{am.url.removeprefix('http://')}"]}}
"""
    made = Planted(tmp_path, env, config, service, [service, hook, slack, pager, am, smtp])
    yield made
    for peer in made.peers:
        peer.stop()


def _state_bytes(state_dir: Path) -> str:
    return "\n".join(p.read_bytes().decode(errors="replace") for p in sorted(state_dir.iterdir()) if p.is_file())


def _private(path: Path, mode: int) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == mode


# ---------------------------------------------------------------- the sweeps


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_no_secret_reaches_logs_api_pages_metrics_or_state(planted, daemon_factory, level):
    syslog = SyslogSocket(planted.dir / "syslog.sock")
    old_umask = os.umask(0o022)  # what a shell outside systemd gives: files 0644 unless tocsin says otherwise
    try:
        daemon = daemon_factory(planted.config.replace("LEVEL", level), env=planted.env)
    finally:
        os.umask(old_umask)
    try:
        for receiver in RECEIVERS:  # every receiver failed, more than once, with its echo in the error
            wait_for(lambda r=receiver: (daemon.sample("tocsin_notifications_failed_total", receiver=r) or 0) >= 2,
                     timeout=20, what=f"deliveries to {receiver} failing")
        wait_for(lambda: any(a.startswith("Basic ") for a in planted.service.authorizations), what="a probe")
        served = {path: requests.get(daemon.url + path, timeout=scaled(5)).text
                  for path in ("/", "/api/v1/targets", "/api/v1/alerts", "/api/tocsin/alerts", "/api/v1/rules",
                                 "/api/v2/alerts", "/api/v2/alerts/groups", "/api/v2/status", "/metrics")}
        targets = {t["name"]: t for t in daemon.targets()}
    finally:
        assert daemon.stop() == 0
        syslog.stop()

    # The probe URL's userinfo is sent as Basic auth, and shown without its password.
    assert "Basic " + ENCODED["probe userinfo Basic"] in planted.service.authorizations
    assert "Basic " + ENCODED["probe basic_auth Basic"] in planted.service.authorizations
    assert f"Bearer {BEARER}" in planted.service.authorizations
    assert targets["userinfo"]["endpoint"].startswith("http://prober:<secret>@127.0.0.1:"), targets["userinfo"]
    assert "prober:&lt;secret&gt;@127.0.0.1" in served["/"]

    logs_dir = planted.dir / "logs"
    places = {
        "console": daemon.output(),
        "JSON log file": "\n".join(p.read_text(errors="replace") for p in logs_dir.iterdir()),
        "syslog": syslog.text(),
        "state_dir (SQLite bytes)": _state_bytes(planted.dir / "state"),
        **{f"GET {path}": text for path, text in served.items()},
    }
    found = {place: leaks(text) for place, text in places.items() if leaks(text)}
    assert not found, f"secrets leaked at level {level}: {found}"
    if level == "debug":  # the sweep looked at something: the errors are there, redacted
        assert "<secret>" in places["JSON log file"] and "HTTP 500 from the receiver" in places["JSON log file"]
        assert "Starting new HTTP connection" in places["console"]  # the HTTP library's own debug lines
        assert places["syslog"].count("\n") > 10

    # State and log files are private by default, whatever the umask.
    state = planted.dir / "state"
    assert _private(state, 0o700), oct(state.stat().st_mode)
    for path in [*state.iterdir(), *logs_dir.iterdir()]:
        assert _private(path, 0o600), f"{path.name}: {oct(path.stat().st_mode)}"
    assert {p.name for p in state.iterdir()} >= {"notify.sqlite", "rules.db"}


def _run_all(planted: Planted, commands: dict[str, list[str]]) -> dict[str, tuple[int, str, str]]:
    """Run `tocsin` commands side by side (each is mostly interpreter start-up): name -> (code, out, err)."""
    started = {name: subprocess.Popen([sys.executable, "-m", "tocsin.cli", *args], cwd=planted.dir, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **planted.env})
               for name, args in commands.items()}
    results = {}
    for name, proc in started.items():
        out, err = proc.communicate(timeout=scaled(30))
        results[name] = (proc.returncode, out, err)
    return results


def test_no_secret_reaches_check_config_or_notify_test_output(planted):
    config, broken = planted.dir / "tocsin.yml", planted.dir / "broken.yml"
    config.write_text(planted.config.replace("LEVEL", "debug").replace("{port}", str(free_port())))
    # A configuration that is wrong next to a secret: the error names the key, not the value.
    broken.write_text(config.read_text().replace(f'"http://amuser:{AM_PW}@', f'"ftp://amuser:{AM_PW}@'))
    results = _run_all(planted, {
        "check config": ["check", "config", str(config)],
        "check config (invalid)": ["check", "config", str(broken)],
        **{f"notify test {r}": ["notify", "test", r, "--config", str(config)] for r in RECEIVERS}})
    assert results["check config"][0] == 0, results["check config"]
    code, _, err = results["check config (invalid)"]
    assert code == 1 and "alerting.receivers[5].alertmanager.urls" in err, err
    for receiver in RECEIVERS:
        code, _, err = results[f"notify test {receiver}"]
        assert code == 1 and "test notification failed" in err, err
    assert "HTTP 500 from the receiver" in results["notify test hook"][2]
    assert "<secret>" in results["notify test hook"][2]
    outputs = {name: out + err for name, (_, out, err) in results.items()}
    found = {place: leaks(text) for place, text in outputs.items() if leaks(text)}
    assert not found, f"secrets leaked: {found}\n{outputs}"
