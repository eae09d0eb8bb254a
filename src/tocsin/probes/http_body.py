"""Reading an HTTP/1.1 response body whatever its framing, with the work a target can cause bounded.

A body is capped at `max_body_bytes`; what frames it is capped too: chunk-size lines,
chunk CRLFs and trailers may together exceed the body read so far by at most
FRAMING_ALLOWANCE bytes. Without that, a server sending endless trailers, or endless
one-byte chunks, kept the probe parsing tiny lines as fast as the loopback delivered
them (17 CPU-seconds a minute for one target), and since a read whose bytes are already
buffered never yields, the deadline could not interrupt it. The loop also yields every
YIELD_EVERY chunks, so the deadline is honoured even within the allowance.
"""

from __future__ import annotations

import asyncio
import re
import zlib

from .result import ProbeFailure

FRAMING_ALLOWANCE = 64 * 1024
YIELD_EVERY = 64
_READ = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")


def content_length(headers: dict[str, str]) -> int | None:
    """The Content-Length, None when absent; anything but one run of ASCII digits is malformed."""
    text = headers.get("content-length")
    if text is None:
        return None
    if not _CONTENT_LENGTH.fullmatch(text):
        raise ProbeFailure("bad_response", f"invalid Content-Length {text[:40]!r}")
    return int(text)


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str], limit: int, body: bytearray) -> None:
    """Read the body into `body`, failing as soon as it would exceed `limit`. What arrived
    stays in `body` whatever ends the read (the deadline included), to be reported."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader, limit, body)
    length = content_length(headers)
    if length is not None:
        if length > limit:
            raise ProbeFailure("body_too_large", f"Content-Length {length} exceeds max_body_bytes {limit}")
        while len(body) < length:
            chunk = await reader.read(min(length - len(body), _READ))
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(body), length)
            body += chunk
        return None
    while chunk := await reader.read(_READ):
        body += chunk
        if len(body) > limit:
            raise ProbeFailure("body_too_large", f"body exceeds max_body_bytes {limit}")
    return None


def _over_allowance(framing: int, body: bytearray) -> bool:
    return framing > FRAMING_ALLOWANCE + len(body)


async def _read_chunked(reader: asyncio.StreamReader, limit: int, body: bytearray) -> None:
    framing = chunks = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        framing += len(size_line)
        size_text = size_line[:-2].split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise ProbeFailure("bad_response", "invalid chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise ProbeFailure("body_too_large", f"body exceeds max_body_bytes {limit}")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise ProbeFailure("bad_response", "chunk not followed by CRLF")
        framing += 2
        chunks += 1
        if _over_allowance(framing, body):
            raise ProbeFailure("bad_response", f"chunk framing outweighs the body ({chunks} chunks, {len(body)} bytes)")
        if chunks % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    lines = 0
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        framing += len(line)
        lines += 1
        if _over_allowance(framing, body):
            raise ProbeFailure("bad_response", f"trailers too long ({lines} lines)")
        if lines % YIELD_EVERY == 0:
            await asyncio.sleep(0)


def decode(body: bytes, compression: str, limit: int) -> bytes:
    """The body decoded as `compression` asked (blackbox's `compression`: a body not so
    encoded fails), never past `limit` bytes decoded, whatever the ratio."""
    if compression == "identity":
        return body
    if compression == "br":
        return _unbrotli(body, limit)
    # gzip; "deflate" as the zlib format HTTP names, or the raw DEFLATE blackbox (Go's flate) reads
    attempts = (16 + zlib.MAX_WBITS,) if compression == "gzip" else (zlib.MAX_WBITS, -zlib.MAX_WBITS)
    for wbits in attempts:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            problem = str(exc)
            continue
        if len(out) > limit:
            raise ProbeFailure("body_too_large", f"decoded body exceeds max_body_bytes {limit}")
        return out
    raise ProbeFailure("bad_response", f"body is not {compression}-encoded: {problem}")


def _unbrotli(body: bytes, limit: int) -> bytes:
    """Brotli (RFC 7932), decoded with the output bounded: brotli's `output_buffer_limit` stops
    the decoder near `limit` however far the body would expand."""
    import brotli  # type: ignore[import-untyped]  # imported on the first br body; no type information

    decoder = brotli.Decompressor()
    try:
        out = decoder.process(body, output_buffer_limit=limit + 1)
    except brotli.error as exc:
        raise ProbeFailure("bad_response", f"body is not br-encoded: {exc}") from None
    if len(out) > limit:
        raise ProbeFailure("body_too_large", f"decoded body exceeds max_body_bytes {limit}")
    if not decoder.is_finished():
        raise ProbeFailure("bad_response", "body is not br-encoded: the stream ends before its last block")
    return out
