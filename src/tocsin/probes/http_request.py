"""What an HTTP probe sends and how it reads the response head.

The request head of the target's own URL is built once per target; only the per-probe
lines (trace context, cookies from this probe's redirects) are added per request. The
response head is checked for form, and only the headers the probe acts on are kept.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from .. import __version__
from ..redaction import url_credentials
from .http_options import HTTPConfig
from .result import ProbeFailure

_REQUEST_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII but space
USER_AGENT = f"tocsin/{__version__}"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECT_URL = 8190  # Apache's LimitRequestLine; nginx refuses a request line over 8 KiB too
# Request headers that carry credentials: sent to the target's origin only.
_NO_HEADER_NAMES: frozenset[bytes] = frozenset()
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


def basic(userinfo: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(userinfo).encode()).decode()


def static_head(endpoint: Endpoint, method: str, options: HTTPConfig, credentials: bool,
                userinfo: tuple[str, str] | None = None) -> str:
    """The request head without its per-probe lines; credentials only if `credentials`.

    `userinfo` is the target URL's `user:pass@`: Basic auth, as curl and blackbox send it,
    unless the options give credentials of their own. Through a proxy, a plain-HTTP
    request names the whole URL (the proxy's credentials go with it); an HTTPS one goes
    through a CONNECT tunnel and looks as it would without the proxy."""
    target = endpoint.target
    proxy_credentials = None
    if options.proxy_url and not endpoint.tls:
        target = f"http://{endpoint.host_header}{target}"
        proxy_credentials = url_credentials(options.proxy_url)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {endpoint.host_header}", f"User-Agent: {USER_AGENT}"]
    if not any(name.lower() == "accept-encoding" for name in options.headers):
        lines.append(f"Accept-Encoding: {options.compression or 'identity'}")
    if proxy_credentials:
        lines.append(f"Proxy-Authorization: {basic(proxy_credentials)}")
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
        lines.append(f"Authorization: {basic(userinfo)}")
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
    # The lower-cased names of the headers the regexps read: the only others a response keeps.
    header_names: frozenset[bytes] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        endpoint = endpoint_of(self.url)
        object.__setattr__(self, "endpoint", endpoint)
        object.__setattr__(self, "head", static_head(endpoint, self.options.method, self.options, True,
                                                     url_credentials(self.url)))
        rules = (*self.options.fail_if_header_matches, *self.options.fail_if_header_not_matches)
        names = frozenset(rule.header.lower().encode("latin-1") for rule in rules)
        object.__setattr__(self, "header_names", names or _NO_HEADER_NAMES)  # one empty set for all targets


def traceparent(correlation_id: str) -> str:
    """A W3C trace context header whose trace id is the probe's correlation id."""
    return f"00-{correlation_id}-{random.getrandbits(64) or 1:016x}-01"


def request_bytes(head: str, correlation_id: str, body: bytes | None, cookie: str = "") -> bytes:
    head += f"traceparent: {traceparent(correlation_id)}\r\nX-Correlation-ID: {correlation_id}\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode("latin-1") + (body or b"")


# The response headers the probe acts on; the rest are checked for form, not kept.
_WANTED_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"location", b"last-modified",
                             b"content-encoding"})


@dataclass(slots=True)
class ResponseHead:
    status: int
    version: float
    headers: dict[str, str]  # the wanted ones, repeated values joined by ", "
    # Set-Cookie and the headers `extra` named, every value apart (Set-Cookie values hold
    # commas; a header regexp is tried on each value, as blackbox does).
    values: dict[str, list[str]]


def parse_head(head: bytes, extra: frozenset[bytes] = frozenset()) -> ResponseHead:
    status_line, *header_lines = head.split(b"\r\n")
    code = status_line[9:12]
    if (not status_line.startswith(b"HTTP/1.") or status_line[8:9] != b" " or not code.isdigit()
            or status_line[12:13] not in (b"", b" ")):
        raise ProbeFailure("bad_response", "not an HTTP response")
    headers: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProbeFailure("bad_response", "malformed response header")
        key = name.strip().lower()
        if key in _WANTED_HEADERS:
            text, field_name = value.strip().decode("latin-1"), key.decode()
            headers[field_name] = f"{headers[field_name]}, {text}" if field_name in headers else text
        elif key == b"set-cookie" or key in extra:
            values.setdefault(key.decode(), []).append(value.strip().decode("latin-1"))
    return ResponseHead(int(code), 1.1 if status_line[7:8] == b"1" else 1.0, headers, values)
