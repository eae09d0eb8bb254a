"""Real local peers for the notification tests: HTTP sinks that record and validate payloads.

A sink can accept (2xx), refuse (5xx), or stall (read the request, never answer) - the
three ways a receiver behaves in production - and can be switched between them live.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class HTTPSink:
    validate: Callable[[Any], None] | None = None
    mode: str = "ok"             # ok | fail | stall
    status: int = 200
    port: int = 0
    received: list[Received] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    attempts: int = 0
    delay: float = 0.0           # seconds between recording a request and answering it
    fail_status: int = 503       # what mode "fail" answers, with these headers (e.g. 429 + Retry-After)
    fail_headers: dict[str, str] = field(default_factory=dict)
    attempt_times: list[float] = field(default_factory=list)   # time.time() of each request

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with sink._lock:
                    sink.attempts += 1
                    sink.attempt_times.append(time.time())
                    mode = sink.mode
                if mode == "stall":
                    sink._release.wait(60)
                    return
                if mode == "fail":
                    self._answer(sink.fail_status, b'{"error":"unavailable"}', sink.fail_headers)
                    return
                try:
                    body = json.loads(raw)
                    if sink.validate:
                        sink.validate(body)
                except Exception as exc:  # noqa: BLE001 - report to the test, answer 400
                    with sink._lock:
                        sink.errors.append(f"{type(exc).__name__}: {exc}")
                    self._answer(400, str(exc).encode())
                    return
                with sink._lock:
                    sink.received.append(Received(self.path, dict(self.headers.items()), body))
                    delay = sink.delay
                if delay:
                    sink._release.wait(delay)
                self._answer(sink.status, b'{"status":"ok"}')

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                try:
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client went away (killed mid-request): that is the point of some tests

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.body for r in self.received]

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------- schema checks


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _rfc3339(value: Any) -> None:
    from datetime import datetime

    assert isinstance(value, str) and value.endswith("Z"), value
    datetime.fromisoformat(value.replace("Z", "+00:00"))


def validate_webhook_v4(body: Any) -> None:
    """Alertmanager's webhook payload, version 4: exactly these keys, these types."""
    keys = {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels",
            "commonAnnotations", "externalURL", "notification_reason", "alerts"}
    assert set(body) == keys, f"keys {sorted(set(body) ^ keys)}"
    assert body["version"] == "4"
    assert isinstance(body["groupKey"], str) and body["groupKey"]
    assert isinstance(body["truncatedAlerts"], int) and body["truncatedAlerts"] >= 0
    assert body["status"] in ("firing", "resolved")
    assert isinstance(body["receiver"], str) and isinstance(body["externalURL"], str)
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert _is_str_map(body[key]), key
    assert isinstance(body["alerts"], list) and body["alerts"]
    for alert in body["alerts"]:
        assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
        assert alert["status"] in ("firing", "resolved")
        assert _is_str_map(alert["labels"]) and _is_str_map(alert["annotations"])
        _rfc3339(alert["startsAt"])
        _rfc3339(alert["endsAt"])
        assert isinstance(alert["generatorURL"], str) and isinstance(alert["fingerprint"], str)
    if body["status"] == "firing":
        assert any(a["status"] == "firing" for a in body["alerts"])
    else:
        assert all(a["status"] == "resolved" for a in body["alerts"])


def validate_slack(body: Any) -> None:
    """Slack incoming webhook: text and/or attachments with colour, title, text, fallback."""
    assert isinstance(body, dict) and ("text" in body or "attachments" in body)
    for attachment in body.get("attachments", []):
        assert isinstance(attachment["fallback"], str) and attachment["fallback"]
        assert attachment["color"] in ("good", "warning", "danger") or attachment["color"].startswith("#")
        assert isinstance(attachment["title"], str) and isinstance(attachment["text"], str)
        for f in attachment.get("fields", []):
            assert set(f) <= {"title", "value", "short"}
    unknown = set(body) - {"text", "attachments", "channel", "username", "icon_emoji", "icon_url", "blocks"}
    assert not unknown, unknown


def validate_pagerduty_v2(body: Any) -> None:
    """PagerDuty Events API v2 (trigger needs payload.summary/source/severity)."""
    assert isinstance(body["routing_key"], str) and len(body["routing_key"]) > 0
    assert body["event_action"] in ("trigger", "acknowledge", "resolve")
    assert isinstance(body["dedup_key"], str) and 0 < len(body["dedup_key"]) <= 255
    if body["event_action"] == "trigger":
        payload = body["payload"]
        assert isinstance(payload["summary"], str) and 0 < len(payload["summary"]) <= 1024
        assert isinstance(payload["source"], str) and payload["source"]
        assert payload["severity"] in ("critical", "error", "warning", "info")
        assert set(payload) <= {"summary", "source", "severity", "timestamp", "component", "group", "class",
                                "custom_details"}
    assert set(body) <= {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client",
                         "client_url"}
