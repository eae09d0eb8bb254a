"""The HTTP(S) probe: one request, a fresh connection, redirects and body capped.

A small HTTP/1.1 client on asyncio streams rather than requests: the probe's total
deadline is then enforced by `asyncio.timeout_at` around everything (a server that drips
one byte a second cannot stretch it, unlike a per-read socket timeout), the body is
counted while it is read, and the per-probe cost stays low enough for thousands of
targets per process.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import random
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urljoin, urlsplit

import re2
from pydantic import AfterValidator, Field, SecretStr, field_validator

from .. import __version__
from ..fields import Model, Regexp, SecretFromFile, Size
from ..redaction import display_url, url_credentials
from .kind import ProbeKind
from .net import (
    CONNECTION_FACTS,
    CONNECTION_FAMILIES,
    TLS_FACTS,
    TLS_FAMILIES,
    TLS_INFO_GAUGES,
    ProbeFailure,
    TLSConfig,
    classify_read_error,
    connect,
    resolve,
    start_tls,
)
from .result import PATTERN_FAMILIES, Attempt


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    try:
        _ = parts.port  # a property that raises for a port out of range or not a number
    except ValueError:
        raise ValueError("invalid port in URL") from None
    return url


HTTPURL = Annotated[str, AfterValidator(_http_url)]


class BasicAuth(Model):
    username: str
    password: SecretStr | None = None
    password_file: SecretFromFile | None = None


class HTTPConfig(Model):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    valid_status_codes: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    follow_redirects: bool = True
    max_redirects: int = Field(default=5, ge=0, le=50)
    max_body_bytes: Size = 2**20
    fail_if_body_matches_regexp: list[Regexp] = Field(default_factory=list)
    fail_if_body_not_matches_regexp: list[Regexp] = Field(default_factory=list)
    tls: TLSConfig = TLSConfig()
    basic_auth: BasicAuth | None = None
    bearer_token: SecretStr | None = None
    bearer_token_file: SecretFromFile | None = None
    keep_alive: bool = False  # a health check should exercise connect and TLS every time

    @field_validator("headers")
    @classmethod
    def _no_hop_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if name.lower() in ("host", "content-length", "transfer-encoding"):
                raise ValueError(f"header {name!r} is set by tocsin itself")
        return headers


_DEFAULT_HTTP = HTTPConfig()


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    """What an HTTP probe takes: the target's URL and its `http:` options (or the defaults)."""

    url: str
    options: HTTPConfig


USER_AGENT = f"tocsin/{__version__}"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


def traceparent(correlation_id: str) -> str:
    """A W3C trace context header whose trace id is the probe's correlation id."""
    return f"00-{correlation_id}-{random.getrandbits(64) or 1:016x}-01"


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> "re2._Regexp":
    return re2.compile(pattern.encode())


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """What a URL means for a request; parsed once per URL, not once per probe."""

    host: str
    port: int
    tls: bool
    target: str  # path and query, as sent on the request line
    host_header: str


@functools.lru_cache(maxsize=65536)
def _endpoint(url: str) -> _Endpoint:
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    host = parts.hostname or ""
    host_header = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != (443 if tls else 80):
        host_header = f"{host_header}:{parts.port}"
    return _Endpoint(host, port, tls, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), host_header)


# (url, method, id(options)) -> (options, the request head without the per-probe lines).
# The options object is kept in the value, so an id is never reused for another object.
_heads: dict[tuple[str, str, int], tuple[HTTPConfig, str]] = {}


def _static_head(endpoint: _Endpoint, url: str, method: str, options: HTTPConfig) -> str:
    key = (url, method, id(options))
    cached = _heads.get(key)
    if cached is not None and cached[0] is options:
        return cached[1]
    lines = [f"{method} {endpoint.target} HTTP/1.1", f"Host: {endpoint.host_header}", f"User-Agent: {USER_AGENT}",
             "Accept-Encoding: identity"]
    if not options.keep_alive:
        lines.append("Connection: close")
    if options.basic_auth is not None:
        token = f"{options.basic_auth.username}:{options.basic_auth.secret('password') or ''}"
        lines.append("Authorization: Basic " + base64.b64encode(token.encode()).decode())
    bearer = options.secret("bearer_token")
    if bearer:
        lines.append(f"Authorization: Bearer {bearer}")
    userinfo = url_credentials(url)
    if userinfo and not (options.basic_auth or bearer or any(h.lower() == "authorization" for h in options.headers)):
        # `user:pass@host` is Basic auth, as curl and blackbox send it; explicit credentials win.
        lines.append("Authorization: Basic " + base64.b64encode(":".join(userinfo).encode()).decode())
    lines += [f"{name}: {value}" for name, value in options.headers.items()]
    head = "\r\n".join(lines) + "\r\n"
    if len(_heads) > 65536:  # reloads leave old option objects behind; start afresh
        _heads.clear()
    _heads[key] = (options, head)
    return head


def _request_bytes(endpoint: _Endpoint, url: str, method: str, options: HTTPConfig, correlation_id: str,
                   body: bytes | None) -> bytes:
    head = _static_head(endpoint, url, method, options)
    head += f"traceparent: {traceparent(correlation_id)}\r\nX-Correlation-ID: {correlation_id}\r\n"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode("latin-1") + (body or b"")


# The only response headers the probe acts on; the rest are checked for form, not kept.
_WANTED_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"location"})


def _parse_head(head: bytes) -> tuple[int, float, dict[str, str]]:
    status_line, *header_lines = head.split(b"\r\n")
    code = status_line[9:12]
    if (not status_line.startswith(b"HTTP/1.") or status_line[8:9] != b" " or not code.isdigit()
            or status_line[12:13] not in (b"", b" ")):
        raise ProbeFailure("bad_response", "not an HTTP response")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProbeFailure("bad_response", "malformed response header")
        key = name.strip().lower()
        if key in _WANTED_HEADERS:
            text, field = value.strip().decode("latin-1"), key.decode()
            headers[field] = f"{headers[field]}, {text}" if field in headers else text
    return int(code), (1.1 if status_line[7:8] == b"1" else 1.0), headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], limit: int) -> bytes:
    """Read the body whatever its framing, failing as soon as it would exceed `limit`."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader, limit)
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProbeFailure("bad_response", "invalid Content-Length") from None
        if length > limit:
            raise ProbeFailure("body_too_large", f"Content-Length {length} exceeds max_body_bytes {limit}")
        return await reader.readexactly(length)
    body = bytearray()
    while chunk := await reader.read(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise ProbeFailure("body_too_large", f"body exceeds max_body_bytes {limit}")
    return bytes(body)


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProbeFailure("bad_response", "invalid chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        if len(body) + size > limit:
            raise ProbeFailure("body_too_large", f"body exceeds max_body_bytes {limit}")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def _check_body(body: bytes, options: HTTPConfig) -> None:
    for pattern in options.fail_if_body_matches_regexp:
        if _compiled(pattern).search(body):
            raise ProbeFailure("body", f"body matched {pattern!r}")
    for pattern in options.fail_if_body_not_matches_regexp:
        if not _compiled(pattern).search(body):
            raise ProbeFailure("body", f"body did not match {pattern!r}")


def _status_ok(status: int, options: HTTPConfig) -> bool:
    if options.valid_status_codes:
        return status in options.valid_status_codes
    return 200 <= status < 300


async def _exchange(url: str, method: str, body: bytes | None, options: HTTPConfig,
                    correlation_id: str, attempt: Attempt) -> tuple[int, dict[str, str], bytes | None]:
    """One request/response on a fresh connection. Returns the body only when it must be read."""
    endpoint = _endpoint(url)
    address, _ = await resolve(endpoint.host, endpoint.port, attempt)
    conn = await connect(address, endpoint.port, attempt)
    try:
        if endpoint.tls:
            await start_tls(conn, options.tls, endpoint.host, attempt)
        attempt.facts["http_ssl"] = 1.0 if endpoint.tls else 0.0
        started = time.monotonic()
        try:
            conn.writer.write(_request_bytes(endpoint, url, method, options, correlation_id, body))
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except Exception as exc:  # noqa: BLE001 - every read fault becomes a reason
            raise classify_read_error(exc) from None
        attempt.phases["processing"] = attempt.phases.get("processing", 0.0) + time.monotonic() - started
        status, version, headers = _parse_head(head[:-4])
        attempt.facts["http_status_code"] = float(status)
        attempt.facts["http_version"] = version
        if "content-length" in headers and headers["content-length"].isdigit():
            attempt.facts["http_content_length"] = float(headers["content-length"])
        else:
            attempt.facts["http_content_length"] = -1.0
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, headers, b""
        is_redirect = status in _REDIRECTS and options.follow_redirects and "location" in headers
        if is_redirect:
            return status, headers, None
        started = time.monotonic()
        try:
            payload = await _read_body(conn.reader, headers, options.max_body_bytes)
        except Exception as exc:  # noqa: BLE001 - classify_read_error names whatever the read raised
            raise classify_read_error(exc) from None
        attempt.phases["transfer"] = attempt.phases.get("transfer", 0.0) + time.monotonic() - started
        attempt.facts["http_uncompressed_body_length"] = float(len(payload))
        return status, headers, payload
    finally:
        conn.close()


async def attempt(request: HTTPRequest, _deadline: float, correlation_id: str) -> Attempt:
    """One try at the target's URL, following redirects up to `max_redirects`."""
    options = request.options
    result = Attempt(False)
    url, method = request.url, options.method
    body = options.body.encode() if options.body is not None else None
    redirects = 0
    try:
        while True:
            status, headers, payload = await _exchange(url, method, body, options, correlation_id, result)
            if payload is None:  # a redirect to follow
                redirects += 1
                result.facts["http_redirects"] = float(redirects)
                if redirects > options.max_redirects:
                    raise ProbeFailure("redirects", f"more than {options.max_redirects} redirects")
                url = urljoin(url, headers["location"])
                if urlsplit(url).scheme not in ("http", "https"):
                    raise ProbeFailure("redirects", f"redirect to unsupported URL {url!r}")
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                continue
            result.facts.setdefault("http_redirects", float(redirects))
            if not _status_ok(status, options):
                raise ProbeFailure("status", f"HTTP status {status}")
            _check_body(payload, options)
            result.facts["failed_due_to_regex"] = 0.0
            result.success = True
            return result
    except ProbeFailure as failure:
        result.reason, result.message = failure.reason, failure.message
        result.facts["failed_due_to_regex"] = 1.0 if failure.reason == "body" else 0.0
        return result


def _settings(get: Any) -> HTTPRequest:
    return HTTPRequest(get("url"), get("http") or _DEFAULT_HTTP)


KIND = ProbeKind(
    name="http", key="url", key_text="url (HTTP)",
    target_fields={"url": (HTTPURL | None, None), "http": (HTTPConfig | None, None)},
    settings=_settings, attempt=attempt, endpoint=lambda request: display_url(request.url),
    target_keys=lambda endpoint: {"url": endpoint},
    families={
        **CONNECTION_FAMILIES,
        "probe_http_duration_seconds": ("gauge", "Duration of each HTTP phase, summed over redirects."),
        "probe_http_status_code": ("gauge", "HTTP status code of the final response (0 if none)."),
        "probe_http_content_length": ("gauge", "Content-Length of the final response (-1 if absent)."),
        "probe_http_uncompressed_body_length": ("gauge", "Bytes of body read from the final response."),
        "probe_http_redirects": ("gauge", "Number of redirects followed."),
        "probe_http_ssl": ("gauge", "Whether the final response came over TLS."),
        "probe_http_version": ("gauge", "HTTP version of the final response."),
        **PATTERN_FAMILIES,
        **TLS_FAMILIES,
    },
    facts=(*CONNECTION_FACTS, "http_status_code", "http_content_length", "http_uncompressed_body_length",
           "http_redirects", "http_ssl", "http_version", "failed_due_to_regex"),
    optional_facts=TLS_FACTS,
    phase_family="probe_http_duration_seconds", phases=("resolve", "connect", "tls", "processing", "transfer"),
    info_gauges=TLS_INFO_GAUGES,
)
