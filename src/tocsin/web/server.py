"""The daemon's HTTP listener: routing, TLS, basic auth, and a stop that needs no polling.

A threaded stdlib server, apart from the probe event loop: rendering /metrics for ten
thousand targets must not hold up probes, and a slow scraper must not hold up anything.
The listener knows nothing of probes or rules: it asks its `Pages` for what to show and
its `Control` whether the daemon is ready and to reload.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import selectors
import ssl
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from ..config import WebConfig

log = logging.getLogger("tocsin.web")

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


class Pages(Protocol):
    """What the listener shows (read-only; `tocsin.web.views.WebViews`)."""

    def render_metrics(self) -> bytes: ...
    def api(self, path: str) -> Any | None: ...
    def status_page(self) -> str: ...


class Control(Protocol):
    """What the listener asks of the daemon's lifecycle (the `Daemon`)."""

    def is_ready(self) -> bool: ...
    def health_problems(self) -> list[str]: ...
    def request_reload(self) -> tuple[bool, str]: ...


def check_password(stored: str, password: str) -> bool:
    """`stored` is a bcrypt hash ($2…) or `sha256:<hex>`; plain text is never accepted."""
    if stored.startswith("$2"):
        try:
            import bcrypt
        except ImportError:  # pragma: no cover - bcrypt is optional
            log.error("a bcrypt password hash is configured but the bcrypt package is not installed")
            return False
        return bcrypt.checkpw(password.encode(), stored.encode())
    if stored.startswith("sha256:"):
        digest = hashlib.sha256(password.encode()).hexdigest()
        return hmac.compare_digest(digest, stored.removeprefix("sha256:").lower())
    return False


class _Handler(BaseHTTPRequestHandler):
    server: WebServer
    protocol_version = "HTTP/1.1"
    server_version = "tocsin"
    timeout = 30  # per socket operation: a client that stops talking frees its thread

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, indent=1, default=str).encode(), "application/json")

    def _authorized(self) -> bool:
        users = self.server.web_config.basic_auth_users
        if not users:
            return True
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            if user in users and check_password(users[user], password):
                return True
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="tocsin"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._authorized():
            return
        pages = self.server.pages
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                self._send(200, pages.render_metrics(), CONTENT_TYPE_METRICS)
            elif path == "/-/healthy":
                problems = self.server.control.health_problems()
                self._send(503 if problems else 200,
                           "".join(f"{p}\n" for p in problems).encode() if problems else b"tocsin is healthy.\n")
            elif path == "/-/ready":
                ready = self.server.control.is_ready()
                self._send(200 if ready else 503, b"tocsin is ready.\n" if ready else b"not ready\n")
            elif path.startswith("/api/v1/"):
                value = pages.api(path.removeprefix("/api/v1/"))
                if value is None:
                    self._json(404, {"status": "error", "error": f"no such endpoint {path}"})
                else:
                    self._json(200, {"status": "success", "data": value})
            elif path in ("/", "/index.html"):
                self._send(200, pages.status_page().encode(), "text/html; charset=utf-8")
            else:
                self._send(404, b"not found\n")
        except Exception:  # noqa: BLE001 - one bad request must not take the listener down
            log.exception("error serving %s", path)
            self._send(500, b"internal error\n")

    def do_POST(self) -> None:
        if not self._authorized():
            return
        path = self.path.split("?", 1)[0]
        if int(self.headers.get("Content-Length") or 0):
            self.rfile.read(min(int(self.headers["Content-Length"]), 1 << 16))
        if path == "/-/reload":
            ok, message = self.server.control.request_reload()
            self._send(200 if ok else 500, (message + "\n").encode())
        else:
            self._send(404 if path != "/metrics" else 405, b"not found\n")


class WebServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: str, pages: Pages, control: Control, web_config: WebConfig) -> None:
        host, _, port = address.rpartition(":")
        self.pages = pages
        self.control = control
        self.web_config = web_config
        super().__init__((host.strip("[]") or "0.0.0.0", int(port)), _Handler)
        if self.web_config.tls_cert_file:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.web_config.tls_cert_file, self.web_config.tls_key_file)
            # The handshake happens on the first read, in the request's own thread: a client
            # that stalls mid-handshake then holds only its thread, never the accept loop.
            self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """Accept connections until stop(), blocking with no timeout.

        The stdlib's serve_forever wakes every poll_interval to look for a shutdown
        request; idle, that was 4 wake-ups a second, each costing the process ~0.2 ms of
        CPU on a virtual machine. stop() wakes this loop through a pipe instead.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self and not self._stopping:
                        # socketserver's own accept-and-dispatch step (private, stable since 3.x;
                        # not in typeshed): serve_forever() would poll, this blocks in select().
                        self._handle_request_noblock()  # type: ignore[attr-defined]  # see above

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            os.write(self._wake_w, b"\0")
            self._thread.join(5.0)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._thread = None
        self.server_close()
