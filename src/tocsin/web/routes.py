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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .auth import BUSY_RETRY_S, Authenticator, Busy, parse_basic
from .guessing import GuessLimiter
from .origin import HostPolicy, cross_site_reason
from .push import PREFIX as PUSH_PREFIX
from .push import handle_push

log = logging.getLogger("tocsin.web")

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"
# A body, or its parts in order: /metrics comes as one part per family, so a 30 MB answer is
# never also joined into one string and one bytes object (that doubled a scrape's memory).
Body = bytes | list[bytes]


def body_length(body: Body) -> int:
    return len(body) if isinstance(body, bytes) else sum(len(part) for part in body)
TEXT = "text/plain; charset=utf-8"


class Pages(Protocol):
    """What the listener shows (read-only; `tocsin.web.views.WebViews`)."""

    def render_metrics(self) -> Body: ...
    def api(self, path: str, query: str = "") -> Any | None: ...  # an ApiError for a bad request
    def page(self, path: str, query: str) -> Response | None: ...  # None: no such page
    def is_public(self, path: str) -> bool: ...  # answers without credentials


class Control(Protocol):
    """What the listener asks of the daemon's lifecycle (the `Daemon`)."""

    def is_ready(self) -> bool: ...
    def health_problems(self) -> list[str]: ...
    def request_reload(self) -> tuple[bool, str]: ...


class Handler(Protocol):
    """A set of endpoints served beside the pages (`api_v2.py`, `prom_api.py`): a Response,
    or None when the path is not one of its own."""

    def handle(self, request: "Request") -> "Response | None": ...


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

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass(frozen=True)
class ApiError:
    """What `Pages.api` returns for a request it understood and refuses (a bad range, no such target)."""

    status: int
    message: str


@dataclass
class Response:
    status: int
    body: Body = b""
    content_type: str = TEXT
    headers: list[tuple[str, str]] = field(default_factory=list)


def text(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, (message + "\n").encode(), TEXT, headers or [])


def _json(status: int, value: Any) -> Response:
    return Response(status, json.dumps(value, indent=1, default=str).encode(), "application/json")


_READ_PATHS = ("/metrics", "/-/healthy", "/-/ready")  # and what `Pages.page` serves
_WRITE_PATHS = ("/-/reload",)
_READ_METHODS = ("GET", "HEAD")
_WRITE_METHODS = ("POST", "PUT")  # Prometheus takes both for /-/reload
# POSTs that change nothing (Prometheus's query endpoint takes a form): no cross-site check.
_READ_POSTS = frozenset({"/api/v1/query"})


class Router:
    """The listener's answers, over the daemon's `Pages` and `Control`."""

    def __init__(self, pages: Pages, control: Control, auth: Authenticator, hosts: HostPolicy,
                 handlers: Sequence[Handler] = (), guesses: GuessLimiter | None = None) -> None:
        self.pages = pages
        self.handlers = tuple(handlers)
        self.control = control
        self.auth = auth
        self.hosts = hosts
        self.guesses = guesses or GuessLimiter()

    def handle(self, request: Request) -> Response:
        if not self.hosts.allows(request.headers.get("host")):
            return text(421, "this listener does not answer to that Host name (see web.allowed_hosts)")
        if request.path.startswith(PUSH_PREFIX):  # its own bearer token, before basic auth (see web/push.py)
            return text(*handle_push(request.method, request.target, request.headers))
        read_post = request.method == "POST" and request.path in _READ_POSTS
        refused = None if read_post else cross_site_reason(request.method, request.headers)
        if refused is not None:
            return text(*refused)
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        path = request.path
        try:
            for handler in self.handlers:
                response = handler.handle(request)
                if response is not None:
                    return response
            return self._route(request.method, path, request.query)
        except Exception:  # noqa: BLE001 - one bad page must not take the listener down
            log.exception("error serving %s", path)
            return text(500, "internal error")

    def _authenticate(self, request: Request) -> Response | None:
        """None if the request may go on; else 401, 429 for an address guessing passwords, or
        503 while every bcrypt slot is taken."""
        if not self.auth.enabled:
            return None
        if self.pages.is_public(request.path):  # status_page.public: the page and its badges
            return None
        authorization = request.headers.get("authorization")
        wait = self.guesses.retry_after(request.client)
        if wait and not self.auth.known_good(authorization):
            self.guesses.refused.inc()
            return text(429, "too many wrong passwords from this address; try again later", [("Retry-After", str(wait))])
        try:
            if self.auth.check(authorization):
                return None
        except Busy:  # as many bcrypt checks as allowed are running: bounded work, not a wrong password
            return text(503, "too many password checks at once; try again shortly", [("Retry-After", str(BUSY_RETRY_S))])
        if parse_basic(authorization) is not None:  # no credentials at all is a browser's first try, not a guess
            self.guesses.failed(request.client)
        return Response(401, b"", TEXT, [("WWW-Authenticate", 'Basic realm="tocsin", charset="UTF-8"')])

    def _route(self, method: str, path: str, query: str = "") -> Response:
        is_api = path.startswith("/api/v1/")
        if path in _WRITE_PATHS:
            if method not in _WRITE_METHODS:
                return text(405, "only POST or PUT", [("Allow", ", ".join(_WRITE_METHODS))])
            ok, message = self.control.request_reload()
            return text(200 if ok else 500, message)
        page = self.pages.page(path, query) if not is_api and path not in _READ_PATHS else None
        if path not in _READ_PATHS and not is_api and page is None:
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
            value = self.pages.api(path.removeprefix("/api/v1/"), query)
            if value is None:
                return _json(404, {"status": "error", "error": f"no such endpoint {path}"})
            if isinstance(value, ApiError):
                return _json(value.status, {"status": "error", "error": value.message})
            return _json(200, {"status": "success", "data": value})
        assert page is not None
        return page
