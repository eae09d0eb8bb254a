"""The TCP probe: connect, optionally upgrade to TLS, then a dialogue with the server.

Two ways to write the dialogue. `send`/`expect`: one message, then an RE2 pattern searched,
line-anchored, in what the server sends (reading stops at the first match, at `_MAX_READ`
bytes, or at the deadline). `query_response`: blackbox_exporter's list of steps, each an
`expect` (read lines until one matches), a `send` (the text and a newline; `${1}` is
the expect's group) and/or a
`starttls` (upgrade the connection mid-dialogue, as SMTP, IMAP or XMPP do), run in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import re2
from pydantic import Field, model_validator

from ..fields import HostPort, Model, Regexp
from ..gofmt import expand
from .addresses import IPOptions, over_addresses
from .kind import ProbeKind
from .net import (
    CONNECTION_FACTS,
    CONNECTION_FAMILIES,
    TLS_FACTS,
    TLS_FAMILIES,
    TLS_INFO_GAUGES,
    Connection,
    ProbeFailure,
    TLSConfig,
    classify_read_error,
    connect,
    record_address,
    resolve_all,
    start_tls,
)
from .patterns import search
from .resolver import Address
from .result import PATTERN_FAMILIES, Attempt, in_progress

_MAX_READ = 64 * 1024


class QueryStep(Model):
    """One step of blackbox's `query_response`; its parts run in this order: expect, send, starttls."""

    expect: Regexp | None = None
    send: str | None = None
    starttls: bool = False


class TCPConfig(IPOptions):
    address: HostPort
    tls: bool = False
    tls_config: TLSConfig = TLSConfig()
    send: str | None = None
    expect: Regexp | None = None
    query_response: list[QueryStep] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _tls_may_be_the_options(cls, data: Any) -> Any:
        """`tls: {ca_file: …}` (HTTP's spelling) means TLS with those options."""
        if isinstance(data, dict) and isinstance(data.get("tls"), dict):
            if "tls_config" in data:
                raise ValueError("give the TLS options as tls or as tls_config, not both")
            data = {**data, "tls": True, "tls_config": data["tls"]}
        return data

    @model_validator(mode="after")
    def _one_dialogue(self) -> "TCPConfig":
        if self.query_response and (self.send is not None or self.expect is not None):
            raise ValueError("give query_response or send/expect, not both")
        return self


def _unescape(text: str) -> bytes:
    """`send: "PING\\r\\n"` in YAML means the control characters, as in blackbox's query_response."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")


async def _dialogue(conn: Connection, options: TCPConfig, host: str, result: Attempt) -> None:
    if options.send is not None:
        conn.writer.write(_unescape(options.send))
    if options.expect is not None:
        await _expect(conn.reader, options.expect)
    for step in options.query_response:
        send = step.send
        if step.expect is not None:
            line = await _expect_line(conn.reader, step.expect)
            if send is not None and "$" in send:  # `${1}`: the line's groups, as blackbox expands them
                match = re2.search(step.expect, line.decode("latin-1"))
                send = expand(send, match) if match is not None else send
        if send is not None:
            conn.writer.write(send.encode("utf-8") + b"\n")
        if step.starttls:
            await start_tls(conn, options.tls_config, host, result)


async def _attempt_at(options: TCPConfig, host: str, port: int, address: Address) -> Attempt:
    result = in_progress(Attempt(False))
    assert result is not None
    result.facts["failed_due_to_regex"] = 0.0
    record_address(address[1], address[0], result)
    try:
        conn = await connect(address[1], port, result)
        try:
            if options.tls:
                await start_tls(conn, options.tls_config, host, result)
            await _dialogue(conn, options, host, result)
        finally:
            conn.close()
    except ProbeFailure as failure:
        result.reason, result.message = failure.reason, failure.message
        if failure.reason == "expect":
            result.facts["failed_due_to_regex"] = 1.0
        return result
    result.success = True
    return result


async def attempt(options: TCPConfig, _deadline: float, _correlation_id: str) -> Attempt:
    host, _, port_text = options.address.rpartition(":")
    host, port = host.strip("[]"), int(port_text)
    resolved = in_progress(Attempt(False))
    assert resolved is not None
    resolved.facts["failed_due_to_regex"] = 0.0
    try:
        found = await resolve_all(host, resolved, options)
    except ProbeFailure as failure:
        resolved.reason, resolved.message = failure.reason, failure.message
        return resolved

    async def probe_one(address: Address) -> Attempt:
        outcome = await _attempt_at(options, host, port, address)
        for fact in ("dns_lookup_time_seconds",):
            outcome.facts[fact] = resolved.facts[fact]
        outcome.phases["resolve"] = resolved.phases["resolve"]
        return outcome

    if options.addresses == "first":
        return await probe_one(found[0])
    return await over_addresses(found, options.addresses, probe_one)


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


async def _expect_line(reader: asyncio.StreamReader, pattern: str) -> bytes:
    """Read lines until one matches `pattern` (its newline, and a CR before it, removed);
    return that line."""
    read = 0
    while read < _MAX_READ:
        try:
            line = await reader.readline()
        except Exception as exc:  # noqa: BLE001 - as above
            raise classify_read_error(exc) from None
        if not line:
            break
        read += len(line)
        line = line.rstrip(b"\n").removesuffix(b"\r")
        if await search(pattern, line):
            return line
    raise ProbeFailure("expect", f"no line matched {pattern!r} ({read} bytes read)")


KIND = ProbeKind(
    name="tcp", key="tcp", key_text="tcp", target_fields={"tcp": (TCPConfig | None, None)},
    settings=lambda get: get("tcp"), attempt=attempt, endpoint=lambda options: options.address,
    target_keys=lambda endpoint: {"tcp": {"address": endpoint}},
    families={**CONNECTION_FAMILIES, **PATTERN_FAMILIES, **TLS_FAMILIES},
    facts=(*CONNECTION_FACTS, "failed_due_to_regex"), optional_facts=TLS_FACTS, info_gauges=TLS_INFO_GAUGES,
)
