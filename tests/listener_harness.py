"""An in-process listener over fake pages, and raw-socket helpers, for the listener's attack tests.

The listener is the daemon's real `WebServer`; only what it shows is faked, so a test can
count reloads and talk bytes that no HTTP client library would send.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from tocsin.config import WebConfig


class FakePages:
    def render_metrics(self) -> bytes:
        return b"up 1\n"

    def api(self, path: str, query: str = "") -> Any | None:  # noqa: ARG002 - the Pages signature
        return [] if path in ("targets", "alerts") else None

    def page(self, path: str, query: str) -> Any | None:  # noqa: ARG002 - the Pages signature
        from tocsin.web.routes import Response

        return Response(200, b"<html>tocsin</html>", "text/html") if path in ("/", "/index.html") else None

    def is_public(self, path: str) -> bool:  # noqa: ARG002 - the Pages signature
        return False


class FakeControl:
    def __init__(self) -> None:
        self.reloads = 0

    def is_ready(self) -> bool:
        return True

    def health_problems(self) -> list[str]:
        return []

    def request_reload(self) -> tuple[bool, str]:
        self.reloads += 1
        return True, "reloaded"


class Listener:
    """A started `WebServer` on 127.0.0.1; `stop()` must be called (the fixture does)."""

    def __init__(self, web: WebConfig, **kwargs: Any) -> None:
        from tocsin.web.server import WebServer

        self.control = FakeControl()
        self.server = WebServer("127.0.0.1:0", FakePages(), self.control, web, **kwargs)
        self.port = self.server.server_address[1]
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()


def exchange(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    """Send raw bytes, read until the server closes or `timeout` passes with nothing new."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_all(sock, timeout)


def read_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out


def statuses(raw: bytes) -> list[int]:
    """The status codes of the responses in `raw`, in order (bodies here never hold 'HTTP/1.')."""
    codes = []
    for line in raw.split(b"\n"):
        if line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")):
            codes.append(int(line.split()[1]))
    return codes


def request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
            host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start
