"""What the listener answers to one whole request: the checks in order, then the page.

Plain functions of a parsed request, run in the listener's worker threads (bcrypt and
rendering /metrics take CPU; a reload waits for the daemon), and knowing nothing of
sockets: `connection.py` parses and frames, this module decides. The order of the checks
is deliberate: a Host the listener does not answer to gets nothing else (not even a
password prompt), a cross-site write is refused before credentials are looked at, and
only then come auth and the page.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from .auth import Authenticator, parse_basic
from .guessing import GuessLimiter
from .origin import HostPolicy, cross_site_reason

log = logging.getLogger("tocsin.web")

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


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


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    body: bytes = b""
    client: str = ""  # the peer's address

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = TEXT
    headers: list[tuple[str, str]] = field(default_factory=list)


def text(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, (message + "\n").encode(), TEXT, headers or [])


def _json(status: int, value: Any) -> Response:
    return Response(status, json.dumps(value, indent=1, default=str).encode(), "application/json")


_READ_PATHS = ("/metrics", "/-/healthy", "/-/ready", "/", "/index.html")
_WRITE_PATHS = ("/-/reload",)
_READ_METHODS = ("GET", "HEAD")
_WRITE_METHODS = ("POST", "PUT")  # Prometheus takes both for /-/reload


class Router:
    """The listener's answers, over the daemon's `Pages` and `Control`."""

    def __init__(self, pages: Pages, control: Control, auth: Authenticator, hosts: HostPolicy,
                 guesses: GuessLimiter | None = None) -> None:
        self.pages = pages
        self.control = control
        self.auth = auth
        self.hosts = hosts
        self.guesses = guesses or GuessLimiter()

    def handle(self, request: Request) -> Response:
        if not self.hosts.allows(request.headers.get("host")):
            return text(421, "this listener does not answer to that Host name (see web.allowed_hosts)")
        refused = cross_site_reason(request.method, request.headers)
        if refused is not None:
            return text(*refused)
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        path = request.path
        try:
            return self._route(request.method, path)
        except Exception:  # noqa: BLE001 - one bad page must not take the listener down
            log.exception("error serving %s", path)
            return text(500, "internal error")

    def _authenticate(self, request: Request) -> Response | None:
        """None if the request may go on; else 401, or 429 for an address guessing passwords."""
        if not self.auth.enabled:
            return None
        authorization = request.headers.get("authorization")
        wait = self.guesses.retry_after(request.client)
        if wait and not self.auth.known_good(authorization):
            self.guesses.refused.inc()
            return text(429, "too many wrong passwords from this address; try again later", [("Retry-After", str(wait))])
        if self.auth.check(authorization):
            return None
        if parse_basic(authorization) is not None:  # no credentials at all is a browser's first try, not a guess
            self.guesses.failed(request.client)
        return Response(401, b"", TEXT, [("WWW-Authenticate", 'Basic realm="tocsin", charset="UTF-8"')])

    def _route(self, method: str, path: str) -> Response:
        is_api = path.startswith("/api/v1/")
        if path in _WRITE_PATHS:
            if method not in _WRITE_METHODS:
                return text(405, "only POST or PUT", [("Allow", ", ".join(_WRITE_METHODS))])
            ok, message = self.control.request_reload()
            return text(200 if ok else 500, message)
        if path not in _READ_PATHS and not is_api:
            return text(404, "not found")
        if method not in _READ_METHODS:
            return text(405, "only GET or HEAD", [("Allow", ", ".join(_READ_METHODS))])
        if path == "/metrics":
            return Response(200, self.pages.render_metrics(), CONTENT_TYPE_METRICS)
        if path == "/-/healthy":
            problems = self.control.health_problems()  # e.g. a delivery lane that makes no progress
            return text(503, "\n".join(problems)) if problems else text(200, "tocsin is healthy.")
        if path == "/-/ready":
            ready = self.control.is_ready()
            return text(200, "tocsin is ready.") if ready else text(503, "not ready")
        if is_api:
            value = self.pages.api(path.removeprefix("/api/v1/"))
            if value is None:
                return _json(404, {"status": "error", "error": f"no such endpoint {path}"})
            return _json(200, {"status": "success", "data": value})
        return Response(200, self.pages.status_page().encode(), "text/html; charset=utf-8")
