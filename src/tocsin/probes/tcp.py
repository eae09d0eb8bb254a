"""The TCP probe: connect, optionally upgrade to TLS, optionally send and expect.

`expect` is an RE2 pattern searched, line-anchored, in what the server sends (a banner
such as `^SSH-2.0-` or a reply to `send`); reading stops at the first match, at
`_MAX_READ` bytes, or at the deadline.
"""

from __future__ import annotations

import asyncio

from ..fields import HostPort, Model, Regexp
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
from .patterns import search
from .result import PATTERN_FAMILIES, Attempt

_MAX_READ = 64 * 1024


class TCPConfig(Model):
    address: HostPort
    tls: bool = False
    tls_config: TLSConfig = TLSConfig()
    send: str | None = None
    expect: Regexp | None = None


def _unescape(text: str) -> bytes:
    """`send: "PING\\r\\n"` in YAML means the control characters, as in blackbox's query_response."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")


async def attempt(options: TCPConfig, _deadline: float, _correlation_id: str) -> Attempt:
    result = Attempt(False)
    host, _, port_text = options.address.rpartition(":")
    host, port = host.strip("[]"), int(port_text)
    try:
        address, _ = await resolve(host, result)
        conn = await connect(address, port, result)
        try:
            if options.tls:
                await start_tls(conn, options.tls_config, host, result)
            if options.send is not None:
                conn.writer.write(_unescape(options.send))
            if options.expect is not None:
                await _expect(conn.reader, options.expect)
                result.facts["failed_due_to_regex"] = 0.0
        finally:
            conn.close()
    except ProbeFailure as failure:
        result.reason, result.message = failure.reason, failure.message
        if failure.reason == "expect":
            result.facts["failed_due_to_regex"] = 1.0
        return result
    result.success = True
    return result


async def _expect(reader: asyncio.StreamReader, pattern: str) -> None:
    received = bytearray()
    while len(received) < _MAX_READ:
        try:
            chunk = await reader.read(4096)
        except Exception as exc:  # noqa: BLE001 - classify_read_error names whatever the read raised
            raise classify_read_error(exc) from None
        if not chunk:
            break
        received += chunk
        if await search(pattern, bytes(received), multiline=True):
            return
    raise ProbeFailure("expect", f"did not receive a match for {pattern!r} ({len(received)} bytes read)")


KIND = ProbeKind(
    name="tcp", key="tcp", key_text="tcp", target_fields={"tcp": (TCPConfig | None, None)},
    settings=lambda get: get("tcp"), attempt=attempt, endpoint=lambda options: options.address,
    target_keys=lambda endpoint: {"tcp": {"address": endpoint}},
    families={**CONNECTION_FAMILIES, **PATTERN_FAMILIES, **TLS_FAMILIES},
    facts=CONNECTION_FACTS, optional_facts=(*TLS_FACTS, "failed_due_to_regex"), info_gauges=TLS_INFO_GAUGES,
)
