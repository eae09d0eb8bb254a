"""One HTTP/1.1 connection: h11 parses and frames, this module bounds time and size.

h11 is a protocol state machine that frames every message by the standard's rules
(Content-Length or chunked, for every method), so a body is never read as the next
request: a GET's body and a POST's whole body are read and consumed; a bad or negative
Content-Length, a Transfer-Encoding other than chunked and an oversized head are
protocol errors answered with 400, 501 or 431. What h11 leaves to the server is done here:

- Content-Length *and* Transfer-Encoding together are refused (400) and the connection
  closed: two framings are how request smuggling through a proxy starts (RFC 9112 §6.1).
- A body larger than `Limits.max_body` is refused (413) and the connection closed.
- Time: a request (head and body) must arrive within `request_timeout` of its first byte
  (of the accept for a new connection), so a client that drips one header byte at a time
  is cut off; between requests a connection may stay idle for `idle_timeout`.

The page itself is computed by `handle` (in a worker thread, see `server.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import cast

import h11

from .routes import Request, Response, body_length, text

log = logging.getLogger("tocsin.web")

READ_SIZE = 65536
WRITE_SLICE = 1 << 20


@dataclass(frozen=True)
class Limits:
    request_timeout: float = 10.0  # the whole request, from its first byte
    idle_timeout: float = 120.0    # between requests; longer than common scrape intervals
    write_timeout: float = 120.0   # for the client to take the whole response
    max_head: int = 16384          # request line and header fields
    max_body: int = 1 << 20


class ConnectionState:
    """What the listener knows of a connection: is a request being served, since when idle."""

    __slots__ = ("busy", "waiting_since", "client")

    def __init__(self, client: str = "") -> None:
        self.client = client  # the peer's address, which auth failures are counted by
        self.busy = False
        self.waiting_since = time.monotonic()


class _Close(Exception):
    """The connection ends here, after an optional answer."""

    def __init__(self, response: Response | None = None) -> None:
        super().__init__()
        self.response = response


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 handle: Callable[[Request], Awaitable[Response]], limits: Limits, state: ConnectionState,
                 accepted_at: float) -> None:
        self.reader = reader
        self.writer = writer
        self.handle = handle
        self.limits = limits
        self.state = state
        self.accepted_at = accepted_at
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head)
        self.loop = asyncio.get_running_loop()
        self._method = ""  # of the request being answered: a HEAD's answer has no body

    async def serve(self) -> None:
        try:
            await self._serve()
        except _Close as close:
            if close.response is not None and self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await self._respond(close.response, keep_alive=False)
                await self._linger()
        except (ConnectionError, TimeoutError, OSError, h11.LocalProtocolError) as exc:
            log.debug("web connection ended: %r", exc)
        finally:
            self.writer.close()

    async def _serve(self) -> None:
        deadline = self.accepted_at + self.limits.request_timeout
        while True:
            self.state.busy, self.state.waiting_since = False, time.monotonic()
            request = await self._read_request(deadline)
            if request is None:
                return
            self.state.busy = True
            response = await self.handle(request)
            await self._respond(response, keep_alive=True)
            log.debug("%s %s %d %d bytes", request.method, request.path, response.status, body_length(response.body))
            del request, response  # a 25 MB /metrics body is not kept while the connection idles
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return
            self.h11.start_next_cycle()
            self.state.busy, self.state.waiting_since = False, time.monotonic()
            if not self.h11.trailing_data[0]:  # nothing pipelined: wait, idle, for the next request
                data = await self._read(self.loop.time() + self.limits.idle_timeout, idle=True)
                if not data:
                    return
                self.h11.receive_data(data)
            deadline = self.loop.time() + self.limits.request_timeout

    async def _read(self, deadline: float, idle: bool = False) -> bytes:
        try:
            async with asyncio.timeout_at(deadline):
                return await self.reader.read(READ_SIZE)
        except TimeoutError:
            if idle or self.h11.their_state is h11.IDLE and not self.h11.trailing_data[0]:
                raise _Close() from None  # nothing asked: nothing to answer
            raise _Close(text(408, "request not received in time")) from None

    async def _next_event(self, deadline: float) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise _Close(text(exc.error_status_hint, f"bad request: {exc}")) from None
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self._read(deadline))

    async def _read_request(self, deadline: float) -> Request | None:
        event = await self._next_event(deadline)
        if isinstance(event, h11.ConnectionClosed):
            return None
        if not isinstance(event, h11.Request):  # pragma: no cover - h11 gives a Request first
            raise _Close(text(400, "bad request"))
        self._method = event.method.decode("ascii")
        headers: dict[str, str] = {}
        hosts = 0
        for name, value in event.headers:
            key, decoded = name.decode("ascii"), value.decode("latin-1")
            hosts += key == "host"
            headers[key] = f"{headers[key]}, {decoded}" if key in headers else decoded
        if "content-length" in headers and "transfer-encoding" in headers:
            raise _Close(text(400, "bad request: both Content-Length and Transfer-Encoding"))
        if hosts > 1:
            raise _Close(text(400, "bad request: more than one Host"))
        if int(headers.get("content-length", "0")) > self.limits.max_body:
            raise _Close(text(413, f"request body larger than {self.limits.max_body} bytes"))
        if self.h11.they_are_waiting_for_100_continue:
            self._send(h11.InformationalResponse(status_code=100, headers=[]))
        body = bytearray()
        while True:
            part = await self._next_event(deadline)
            if isinstance(part, h11.EndOfMessage):
                break
            if isinstance(part, h11.ConnectionClosed):
                return None
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > self.limits.max_body:
                    raise _Close(text(413, f"request body larger than {self.limits.max_body} bytes"))
        return Request(self._method, event.target.decode("latin-1"), headers, bytes(body), self.state.client)

    def _send(self, event: h11.Event) -> None:
        for chunk in self.h11.send_with_data_passthrough(event) or ():
            self.writer.write(chunk)

    async def _respond(self, response: Response, keep_alive: bool) -> None:
        headers = [("Content-Type", response.content_type), ("Content-Length", str(body_length(response.body))),
                   ("Date", formatdate(usegmt=True)), ("Server", "tocsin"), *response.headers]
        if not keep_alive:
            headers.append(("Connection", "close"))
        self._send(h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status)))
        async with asyncio.timeout(self.limits.write_timeout):
            if response.body and self._method != "HEAD" and response.status not in (204, 304):
                # In slices, each drained: the transport then never copies the rest of a 25 MB
                # /metrics body into its own buffer, nor shifts that buffer on every send.
                for part in [response.body] if isinstance(response.body, bytes) else response.body:
                    body = memoryview(part)
                    for start in range(0, len(body), WRITE_SLICE):
                        # h11 passes data through untouched (send_with_data_passthrough): a slice will do
                        self._send(h11.Data(data=cast(bytes, body[start:start + WRITE_SLICE])))
                        await self.writer.drain()
            self._send(h11.EndOfMessage())
            await self.writer.drain()

    async def _linger(self) -> None:
        """After an error answer, let the client read it before the close.

        Closing a socket with unread request bytes in it makes the kernel send a reset,
        which can destroy the answer still in flight; so stop writing, then read and
        drop what the client still sends, for a short while.
        """
        try:
            if self.writer.can_write_eof():
                self.writer.write_eof()
            async with asyncio.timeout(1.0):
                dropped = 0
                while dropped < (1 << 20) and (data := await self.reader.read(READ_SIZE)):
                    dropped += len(data)
        except (TimeoutError, ConnectionError, OSError):
            pass



def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
