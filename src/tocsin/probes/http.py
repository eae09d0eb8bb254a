"""The HTTP(S) probe: one request, a fresh connection, redirects and body capped.

A small HTTP/1.1 client on asyncio streams rather than requests: the probe's total
deadline is then enforced by `asyncio.timeout_at` around everything (a server that drips
one byte a second cannot stretch it, unlike a per-read socket timeout), the body is
counted while it is read, and the per-probe cost stays low enough for thousands of
targets per process.

Redirects are followed as browsers and curl do with credentials: the probe's
`Authorization` (basic_auth, bearer_token, or an Authorization, Proxy-Authorization or
Cookie header) goes only to the target's own origin (scheme, host, port), and is dropped
for the rest of the chain once a redirect leaves it; a redirect from https to http is
refused unless `allow_insecure_redirects`.
"""

from __future__ import annotations

import base64
import random
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import quote, urljoin, urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from .. import __version__
from ..fields import Model, Regexp, SecretFromFile, Size
from ..redaction import display_url, url_credentials
from . import patterns
from .http_body import content_length, read_body
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

_REQUEST_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII but space
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _http_url(url: str) -> str:
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in url):
        raise ValueError("URL contains a space, a control or a non-ASCII character (percent-encode it;"
                         " an international host name in its xn-- form)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    try:
        _ = parts.port  # a property that raises for a port out of range or not a number
    except ValueError:
        raise ValueError("invalid port in URL") from None
    return url


HTTPURL = Annotated[str, AfterValidator(_http_url)]


def _header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as a header value (CR or LF would end the header and let
    the rest be read as headers or a request of its own), None if it can."""
    for char in value:
        if char in "\r\n":
            return "contains a line break (CR or LF)"
        if (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            return "contains a control character"
        if ord(char) > 0xFF:
            return "contains a character outside Latin-1"
    return None


class BasicAuth(Model):
    username: str
    password: SecretStr | None = None
    password_file: SecretFromFile | None = None

    @field_validator("username")
    @classmethod
    def _username_fits(cls, username: str) -> str:
        if ":" in username or any(ord(c) < 0x20 or ord(c) == 0x7F for c in username):
            raise ValueError("username may not contain ':' or control characters")
        return username


class HTTPConfig(Model):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    valid_status_codes: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    follow_redirects: bool = True
    max_redirects: int = Field(default=5, ge=0, le=50)
    allow_insecure_redirects: bool = False  # follow a redirect from https to http
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
    def _headers_fit_on_the_wire(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if name.lower() in ("host", "content-length", "transfer-encoding"):
                raise ValueError(f"header {name!r} is set by tocsin itself")
            if not name or not set(name) <= _TOKEN_CHARS:
                raise ValueError(f"invalid header name {name!r}")
            problem = _header_value_problem(value)
            if problem:
                raise ValueError(f"value of header {name!r} {problem}")
        return headers

    @model_validator(mode="after")
    def _bearer_token_fits(self) -> "HTTPConfig":
        problem = _header_value_problem(self.secret("bearer_token") or "")
        if problem:  # the token itself is never put in the message
            raise ValueError(f"bearer token {problem}")
        return self


_DEFAULT_HTTP = HTTPConfig()
USER_AGENT = f"tocsin/{__version__}"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECT_URL = 8190  # Apache's LimitRequestLine; nginx refuses a request line over 8 KiB too
# Request headers that carry credentials: sent to the target's origin only.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a URL means for a request."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent on the request line
    host_header: str

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host.lower(), self.port


def endpoint_of(url: str) -> Endpoint:
    """Parse `url` (the target's, or one a redirect named); a redirect's may be any text."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise ProbeFailure("redirects", "redirect to a URL with an invalid port") from None
    host = parts.hostname or ""
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ProbeFailure("redirects", "redirect to an invalid host name") from None
    host_header = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != (443 if tls else 80):
        host_header = f"{host_header}:{parts.port}"
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_REQUEST_TARGET_SAFE)
    return Endpoint(parts.scheme, host, port, target, host_header)


def _static_head(endpoint: Endpoint, method: str, options: HTTPConfig, credentials: bool,
                 userinfo: tuple[str, str] | None = None) -> str:
    """The request head without its per-probe lines; credentials only if `credentials`.

    `userinfo` is the target URL's `user:pass@`: Basic auth, as curl and blackbox send it,
    unless the options give credentials of their own."""
    lines = [f"{method} {endpoint.target} HTTP/1.1", f"Host: {endpoint.host_header}", f"User-Agent: {USER_AGENT}",
             "Accept-Encoding: identity"]
    if not options.keep_alive:
        lines.append("Connection: close")
    if credentials and options.basic_auth is not None:
        token = f"{options.basic_auth.username}:{options.basic_auth.secret('password') or ''}"
        lines.append("Authorization: Basic " + base64.b64encode(token.encode()).decode())
    bearer = options.secret("bearer_token") if credentials else None
    if bearer:
        lines.append(f"Authorization: Bearer {bearer}")
    if (credentials and userinfo and options.basic_auth is None and not bearer
            and not any(h.lower() == "authorization" for h in options.headers)):
        lines.append("Authorization: Basic " + base64.b64encode(":".join(userinfo).encode()).decode())
    lines += [f"{name}: {value}" for name, value in options.headers.items()
              if credentials or name.lower() not in _CREDENTIAL_HEADERS]
    return "\r\n".join(lines) + "\r\n"


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    """What an HTTP probe takes: the target's URL and its `http:` options (or the defaults).

    The endpoint and request head of the target's own URL are built once, with the target
    (and dropped with it on reload); those of a redirect's URL are built when followed, so
    no cache grows with the URLs a server names."""

    url: str
    options: HTTPConfig
    endpoint: Endpoint = field(init=False, compare=False, repr=False)
    head: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        endpoint = endpoint_of(self.url)
        object.__setattr__(self, "endpoint", endpoint)
        object.__setattr__(self, "head", _static_head(endpoint, self.options.method, self.options, True,
                                                      url_credentials(self.url)))


def traceparent(correlation_id: str) -> str:
    """A W3C trace context header whose trace id is the probe's correlation id."""
    return f"00-{correlation_id}-{random.getrandbits(64) or 1:016x}-01"


def _request_bytes(head: str, correlation_id: str, body: bytes | None) -> bytes:
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
            text, field_name = value.strip().decode("latin-1"), key.decode()
            headers[field_name] = f"{headers[field_name]}, {text}" if field_name in headers else text
    return int(code), (1.1 if status_line[7:8] == b"1" else 1.0), headers


async def _check_body(body: bytes, options: HTTPConfig) -> None:
    for pattern in options.fail_if_body_matches_regexp:
        if await patterns.search(pattern, body):
            raise ProbeFailure("body", f"body matched {pattern!r}")
    for pattern in options.fail_if_body_not_matches_regexp:
        if not await patterns.search(pattern, body):
            raise ProbeFailure("body", f"body did not match {pattern!r}")


def _status_ok(status: int, options: HTTPConfig) -> bool:
    if options.valid_status_codes:
        return status in options.valid_status_codes
    return 200 <= status < 300


def _content_length_fact(headers: dict[str, str]) -> float:
    try:
        length = content_length(headers)
    except ProbeFailure:  # reported when the body is read
        return -1.0
    return -1.0 if length is None else float(length)


async def _exchange(endpoint: Endpoint, head: str, method: str, body: bytes | None, options: HTTPConfig,
                    correlation_id: str, attempt: Attempt) -> tuple[int, dict[str, str], bytes | None]:
    """One request/response on a fresh connection. Returns the body only when it must be read."""
    address, _ = await resolve(endpoint.host, attempt)
    conn = await connect(address, endpoint.port, attempt)
    try:
        if endpoint.tls:
            await start_tls(conn, options.tls, endpoint.host, attempt)
        attempt.facts["http_ssl"] = 1.0 if endpoint.tls else 0.0
        started = time.monotonic()
        try:
            conn.writer.write(_request_bytes(head, correlation_id, body))
            response_head = await conn.reader.readuntil(b"\r\n\r\n")
        except Exception as exc:  # noqa: BLE001 - every read fault becomes a reason
            raise classify_read_error(exc) from None
        attempt.phases["processing"] = attempt.phases.get("processing", 0.0) + time.monotonic() - started
        status, version, headers = _parse_head(response_head[:-4])
        attempt.facts["http_status_code"] = float(status)
        attempt.facts["http_version"] = version
        attempt.facts["http_content_length"] = _content_length_fact(headers)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, headers, b""
        is_redirect = status in _REDIRECTS and options.follow_redirects and "location" in headers
        if is_redirect:
            return status, headers, None
        started = time.monotonic()
        try:
            payload = await read_body(conn.reader, headers, options.max_body_bytes)
        except Exception as exc:  # noqa: BLE001 - classify_read_error names whatever the read raised
            raise classify_read_error(exc) from None
        attempt.phases["transfer"] = attempt.phases.get("transfer", 0.0) + time.monotonic() - started
        attempt.facts["http_uncompressed_body_length"] = float(len(payload))
        return status, headers, payload
    finally:
        conn.close()


def _redirect(current: Endpoint, url: str, location: str, options: HTTPConfig) -> tuple[str, Endpoint]:
    """Where a redirect leads, refused if it leads off http(s) or from https down to http, or
    if its URL is longer than most servers accept on a request line (memory a server could
    otherwise fill: the standard library caches the URLs it parses)."""
    if len(location) > MAX_REDIRECT_URL:
        raise ProbeFailure("redirects", f"redirect to a URL longer than {MAX_REDIRECT_URL} bytes")
    url = urljoin(url, location)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeFailure("redirects", f"redirect to unsupported URL {url[:200]!r}")
    if current.tls and parts.scheme == "http" and not options.allow_insecure_redirects:
        raise ProbeFailure("redirects", "redirect from https to http refused (allow_insecure_redirects is off)")
    return url, endpoint_of(url)


async def attempt(request: HTTPRequest, _deadline: float, correlation_id: str) -> Attempt:
    """One try at the target's URL, following redirects up to `max_redirects`."""
    options = request.options
    result = Attempt(False)
    url, method, endpoint, head = request.url, options.method, request.endpoint, request.head
    origin, credentials = endpoint.origin, True
    body = options.body.encode() if options.body is not None else None
    redirects = 0
    try:
        while True:
            status, headers, payload = await _exchange(endpoint, head, method, body, options, correlation_id, result)
            if payload is None:  # a redirect to follow
                redirects += 1
                result.facts["http_redirects"] = float(redirects)
                if redirects > options.max_redirects:
                    raise ProbeFailure("redirects", f"more than {options.max_redirects} redirects")
                url, endpoint = _redirect(endpoint, url, headers["location"], options)
                credentials = credentials and endpoint.origin == origin  # once dropped, never sent again
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                head = _static_head(endpoint, method, options, credentials, url_credentials(request.url))
                continue
            result.facts.setdefault("http_redirects", float(redirects))
            if not _status_ok(status, options):
                raise ProbeFailure("status", f"HTTP status {status}")
            await _check_body(payload, options)
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
