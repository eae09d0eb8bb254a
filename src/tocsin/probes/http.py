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

import email.utils
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..redaction import display_url, url_credentials
from . import patterns
from .addresses import over_addresses
from .http_body import content_length, decode, read_body
from .http_cookies import CookieJar
from .http_options import _DEFAULT_HTTP, HTTPURL, HTTPConfig
from .http_request import (
    _REDIRECTS,
    MAX_REDIRECT_URL,
    Endpoint,
    HTTPRequest,
    ResponseHead,
    basic,
    endpoint_of,
    parse_head,
    request_bytes,
    static_head,
)
from .kind import ProbeKind
from .net import (
    CONNECTION_FACTS,
    CONNECTION_FAMILIES,
    TLS_FACTS,
    TLS_FAMILIES,
    TLS_INFO_GAUGES,
    Connection,
    ProbeFailure,
    classify_read_error,
    connect,
    record_address,
    resolve_all,
    start_tls,
)
from .resolver import Address
from .result import PATTERN_FAMILIES, Attempt, in_progress

MAX_INTERIM = 16  # 1xx responses before the final one; more is a server stuck in a loop


async def _check_body(body: bytes, options: HTTPConfig) -> None:
    for pattern in options.fail_if_body_matches_regexp:
        if await patterns.search(pattern, body):
            raise ProbeFailure("body", f"body matched {pattern!r}")
    for pattern in options.fail_if_body_not_matches_regexp:
        if not await patterns.search(pattern, body):
            raise ProbeFailure("body", f"body did not match {pattern!r}")


async def _check_headers(head: ResponseHead, options: HTTPConfig) -> None:
    """blackbox's header regexps: a missing header fails unless `allow_missing`; `matches`
    fails if any value matches, `not_matches` if none does."""
    for rule in options.fail_if_header_matches:
        values = head.values.get(rule.header.lower(), [])
        if not values and not rule.allow_missing:
            raise ProbeFailure("body", f"header {rule.header} missing")
        for value in values:
            if await patterns.search(rule.regexp, value.encode("latin-1")):
                raise ProbeFailure("body", f"header {rule.header} matched {rule.regexp!r}")
    for rule in options.fail_if_header_not_matches:
        values = head.values.get(rule.header.lower(), [])
        if not values:
            if rule.allow_missing:
                continue
            raise ProbeFailure("body", f"header {rule.header} missing")
        if not any([await patterns.search(rule.regexp, value.encode("latin-1")) for value in values]):
            raise ProbeFailure("body", f"header {rule.header} did not match {rule.regexp!r}")


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


def _last_modified(headers: dict[str, str], attempt: Attempt) -> None:
    text = headers.get("last-modified")
    if text:
        try:
            attempt.facts["http_last_modified_timestamp_seconds"] = email.utils.parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError, IndexError):
            pass  # blackbox ignores a date it cannot parse too


async def _open(endpoint: Endpoint, address: Address | None, options: HTTPConfig, attempt: Attempt) -> Connection:
    """A connection to `address`, or through the proxy (a CONNECT tunnel for HTTPS), which
    resolves the target's name itself: the address facts are then the proxy's."""
    if not options.proxy_url:
        assert address is not None
        return await connect(address[1], endpoint.port, attempt)
    proxy = endpoint_of(options.proxy_url)
    _, proxy_address = (await resolve_all(proxy.host, attempt, options))[0]
    conn = await connect(proxy_address, proxy.port, attempt)
    if endpoint.tls:
        authority = f"{f'[{endpoint.host}]' if ':' in endpoint.host else endpoint.host}:{endpoint.port}"
        credentials = url_credentials(options.proxy_url)
        auth = f"Proxy-Authorization: {basic(credentials)}\r\n" if credentials else ""
        conn.writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n".encode("latin-1"))
        try:
            reply = parse_head((await conn.reader.readuntil(b"\r\n\r\n"))[:-4])
        except Exception as exc:  # noqa: BLE001 - every read fault becomes a reason
            conn.close()
            raise classify_read_error(exc) from None
        if reply.status != 200:
            conn.close()
            raise ProbeFailure("connect", f"proxy refused CONNECT: HTTP status {reply.status}")
    return conn


async def _exchange(endpoint: Endpoint, address: Address | None, head: str, method: str, body: bytes | None,
                    request: HTTPRequest, correlation_id: str, attempt: Attempt,
                    jar: CookieJar) -> tuple[ResponseHead, bytes | None]:
    """One request/response on a fresh connection. Returns the body only when it must be read."""
    options = request.options
    conn = await _open(endpoint, address, options, attempt)
    try:
        if endpoint.tls:
            await start_tls(conn, options.tls, endpoint.host, attempt)
        attempt.facts["http_ssl"] = 1.0 if endpoint.tls else 0.0
        started = time.monotonic()
        try:
            conn.writer.write(request_bytes(head, correlation_id, body, jar.header(endpoint)))
            for _ in range(MAX_INTERIM):
                response = parse_head((await conn.reader.readuntil(b"\r\n\r\n"))[:-4], request.header_names)
                if not 100 <= response.status < 200 or response.status == 101:
                    break  # 1xx but 101 are interim: the final response follows on the same connection
            else:
                raise ProbeFailure("bad_response", f"more than {MAX_INTERIM} informational responses")
        except Exception as exc:  # noqa: BLE001 - every read fault becomes a reason
            raise classify_read_error(exc) from None
        attempt.phases["processing"] = attempt.phases.get("processing", 0.0) + time.monotonic() - started
        status, headers = response.status, response.headers
        attempt.facts["http_status_code"] = float(status)
        attempt.facts["http_version"] = response.version
        attempt.facts["http_content_length"] = _content_length_fact(headers)
        if "set-cookie" in response.values:
            jar.store(endpoint, response.values["set-cookie"])
        if method == "HEAD" or status in (101, 204, 304):
            return response, b""
        if status in _REDIRECTS and options.follow_redirects and "location" in headers:
            return response, None
        started = time.monotonic()
        payload = bytearray()
        try:
            await read_body(conn.reader, headers, options.max_body_bytes, payload)
        except Exception as exc:  # noqa: BLE001 - classify_read_error names whatever the read raised
            raise classify_read_error(exc) from None
        finally:  # what arrived is reported, also when the deadline ends the read
            attempt.facts["http_uncompressed_body_length"] = float(len(payload))
        attempt.phases["transfer"] = attempt.phases.get("transfer", 0.0) + time.monotonic() - started
        if options.compression is None:
            return response, bytes(payload)
        decoded = decode(bytes(payload), options.compression, options.max_body_bytes)
        attempt.facts["http_uncompressed_body_length"] = float(len(decoded))
        return response, decoded
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


# What a hop's response told, forgotten when a redirect is followed: a next hop that gives
# no response (a dead port) reports none, as blackbox does, not the redirect's status.
_PER_RESPONSE = ("http_status_code", "http_version", "http_content_length", "http_last_modified_timestamp_seconds")


async def _follow(request: HTTPRequest, result: Attempt, correlation_id: str, first: Address | None) -> None:
    """The request and its redirects, up to `max_redirects`; raises ProbeFailure on failure.
    `first` is the address to use for the target's own host (None: resolve it)."""
    options = request.options
    url, method, endpoint, head = request.url, options.method, request.endpoint, request.head
    origin, credentials = endpoint.origin, True
    body = options.body.encode() if options.body is not None else None
    jar = CookieJar()
    redirects = 0
    while True:
        address: Address | None = None
        if first is not None and endpoint is request.endpoint:
            address = first
            record_address(address[1], address[0], result)
        elif not options.proxy_url:
            address = (await resolve_all(endpoint.host, result, options))[0]
        response, payload = await _exchange(endpoint, address, head, method, body, request, correlation_id, result, jar)
        if payload is None:  # a redirect to follow
            redirects += 1
            result.facts["http_redirects"] = float(redirects)
            if redirects > options.max_redirects:
                raise ProbeFailure("redirects", f"more than {options.max_redirects} redirects")
            url, endpoint = _redirect(endpoint, url, response.headers["location"], options)
            credentials = credentials and endpoint.origin == origin  # once dropped, never sent again
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            head = static_head(endpoint, method, options, credentials, url_credentials(request.url))
            for fact in _PER_RESPONSE:
                result.facts.pop(fact, None)
            continue
        result.facts.setdefault("http_redirects", float(redirects))
        _last_modified(response.headers, result)
        if not _status_ok(response.status, options):
            raise ProbeFailure("status", f"HTTP status {response.status}")
        await _check_body(payload, options)
        if request.header_names:
            await _check_headers(response, options)
        return


async def _attempt_at(request: HTTPRequest, correlation_id: str, address: Address | None) -> Attempt:
    result = in_progress(Attempt(False))
    assert result is not None
    result.facts["failed_due_to_regex"] = 0.0
    try:
        await _follow(request, result, correlation_id, address)
    except ProbeFailure as failure:
        result.reason, result.message = failure.reason, failure.message
        result.facts["failed_due_to_regex"] = 1.0 if failure.reason == "body" else 0.0
        return result
    result.success = True
    return result


async def attempt(request: HTTPRequest, _deadline: float, correlation_id: str) -> Attempt:
    """One try at the target's URL (at each of its addresses with `addresses: any|all`)."""
    options = request.options
    if options.addresses == "first" or options.proxy_url:
        return await _attempt_at(request, correlation_id, None)
    probe = Attempt(False)
    try:
        found = await resolve_all(request.endpoint.host, probe, options)
    except ProbeFailure as failure:
        probe.reason, probe.message = failure.reason, failure.message
        return probe
    return await over_addresses(found, options.addresses,
                                lambda address: _attempt_at(request, correlation_id, address))


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
        "probe_http_last_modified_timestamp_seconds": ("gauge", "Last-Modified of the final response (unix time)."),
        **PATTERN_FAMILIES,
        **TLS_FAMILIES,
    },
    facts=(*CONNECTION_FACTS, "http_status_code", "http_content_length", "http_uncompressed_body_length",
           "http_redirects", "http_ssl", "http_version", "failed_due_to_regex"),
    optional_facts=(*TLS_FACTS, "http_last_modified_timestamp_seconds"),
    phase_family="probe_http_duration_seconds", phases=("resolve", "connect", "tls", "processing", "transfer"),
    info_gauges=TLS_INFO_GAUGES,
)
