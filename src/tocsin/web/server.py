"""The daemon's HTTP listener: its own thread and event loop, a cap on connections, TLS.

Apart from the probe event loop: rendering /metrics for ten thousand targets must not
hold up probes, and a slow scraper must not hold up anything. One event loop holds every
connection (a thousand idle or dripping clients cost a thousand small objects, not a
thousand threads); whole requests go to a few worker threads, where bcrypt, rendering and
a reload's wait happen. The connections are capped at `web.max_connections`: at the cap a
new connection displaces the one that has waited longest without a request in progress,
so clients that send a request at once are served while slow ones churn.

On a TLS port the first byte tells a TLS client (a handshake record, 0x16) from one that
speaks plain HTTP; the latter gets a plain 400 saying so, as Go's servers answer, instead
of a handshake error. The listener knows nothing of probes or rules: it asks its `Pages`
what to show and its `Control` whether the daemon is ready and to reload (`routes.py`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from ..config import WebConfig
from .auth import Authenticator
from .connection import Connection, ConnectionState, Limits
from .guessing import GuessLimiter
from .origin import HostPolicy
from .routes import CONTENT_TYPE_METRICS, Control, Handler, Pages, Request, Response, Router, text

__all__ = ["CONTENT_TYPE_METRICS", "Control", "Pages", "WebServer"]

log = logging.getLogger("tocsin.web")

WORKERS = 4  # concurrent requests being computed; more queue, they do not spawn threads
TLS_HANDSHAKE_RECORD = 0x16
PLAIN_HTTP_TO_TLS = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"


class _Workers:
    """A fixed number of daemon threads running requests: none outlives the process's exit
    (an in-flight reload must not hold it), and none is started per connection."""

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[Any, BaseException | None], None]] | None] \
            = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, name=f"web-{i}", daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            work, done = job
            del job  # an idle worker holds nothing: its last answer may be a 25 MB /metrics body
            try:
                done(work(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting connection
                done(None, exc)
            del work, done

    async def run(self, work: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any, exc: BaseException | None) -> None:
            if not future.done():
                future.set_exception(exc) if exc is not None else future.set_result(result)

        def done(result: Any, exc: BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(settle, result, exc)
            except RuntimeError:  # the listener stopped meanwhile: nobody waits for this answer
                pass

        self._jobs.put((work, done))
        return await future

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


def ssl_context(web: WebConfig) -> ssl.SSLContext | None:
    if not web.tls_cert_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(web.tls_cert_file, web.tls_key_file, password=_no_key_password)
    return context


def _no_key_password() -> bytes:
    raise ssl.SSLError("the TLS key file is encrypted; give an unencrypted key")


class WebServer:
    def __init__(self, address: str, pages: Pages, control: Control, web_config: WebConfig,
                 limits: Limits | None = None, handlers: Sequence[Handler] = (),
                 registry: CollectorRegistry | None = None) -> None:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        self.web_config = web_config
        self.limits = limits or Limits()
        self.router = Router(pages, control, Authenticator(web_config.basic_auth_users, registry),
                             HostPolicy(host, web_config.allowed_hosts), handlers, GuessLimiter(registry))
        self.tls = ssl_context(web_config)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Binds here: a taken port fails start-up.
        self.socket = socket.create_server((host, int(port)), family=family, backlog=128)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self._connections: dict[asyncio.Task[None], ConnectionState] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._workers: _Workers | None = None
        self._accepting: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._workers = _Workers(WORKERS)
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name="web", daemon=True)
        self._thread.start()
        started.wait()

    def _run(self, started: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_quiet_exception_handler)
        self._accepting = loop.create_task(self._accept())
        loop.call_soon(started.set)
        try:
            loop.run_until_complete(self._accepting)
        except asyncio.CancelledError:
            pass
        finally:
            for task in list(self._connections):
                task.cancel()
            loop.run_until_complete(asyncio.gather(*self._connections, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        if self._thread is not None and self._loop is not None and self._accepting is not None:
            self._loop.call_soon_threadsafe(self._accepting.cancel)
            self._thread.join(5.0)
            self._thread = None
        if self._workers is not None:
            self._workers.stop()
            self._workers = None
        self.socket.close()

    # ------------------------------------------------------------------ connections

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peer = await loop.sock_accept(self.socket)
            except OSError as exc:  # out of descriptors, or the peer gone before accept: go on
                log.warning("web listener cannot accept: %s", exc)
                await asyncio.sleep(0.1)
                continue
            if not self._make_room():
                _refuse(sock)
                continue
            state = ConnectionState(str(peer[0]) if isinstance(peer, tuple) else "")
            task = loop.create_task(self._connection(sock, state, time.monotonic()))
            self._connections[task] = state
            task.add_done_callback(lambda done: self._connections.pop(done, None))

    def _make_room(self) -> bool:
        """At the cap, end the connection waiting longest with no request in progress."""
        if len(self._connections) < self.web_config.max_connections:
            return True
        waiting = [(state.waiting_since, task) for task, state in self._connections.items() if not state.busy]
        if not waiting:
            return False
        _, oldest = min(waiting, key=lambda pair: pair[0])
        oldest.cancel()
        del self._connections[oldest]
        return True

    async def _connection(self, sock: socket.socket, state: ConnectionState, accepted_at: float) -> None:
        loop = asyncio.get_running_loop()
        accepted_at_loop = loop.time() - (time.monotonic() - accepted_at)
        try:
            if self.tls is not None and not await self._speaks_tls(sock, accepted_at_loop):
                sock.close()
                return
            reader = asyncio.StreamReader(limit=self.limits.max_head, loop=loop)
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, sock, ssl=self.tls,
                ssl_handshake_timeout=self.limits.request_timeout if self.tls else None)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.debug("web connection failed before its first request: %r", exc)
            sock.close()
            return
        except BaseException:  # cancelled (evicted at the cap, or the listener stops)
            sock.close()
            raise
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await Connection(reader, writer, self._handle, self.limits, state, accepted_at_loop).serve()

    async def _speaks_tls(self, sock: socket.socket, accepted_at: float) -> bool:
        """Wait for the first byte; answer a plain-HTTP client and tell the caller to stop."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(sock.fileno(), wake)
        try:
            async with asyncio.timeout_at(accepted_at + self.limits.request_timeout):
                await readable
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(sock.fileno())
        first = sock.recv(1, socket.MSG_PEEK)
        if first and first[0] == TLS_HANDSHAKE_RECORD:
            return True
        if first:
            try:
                sock.send(PLAIN_HTTP_TO_TLS)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return False

    async def _handle(self, request: Request) -> Response:
        assert self._workers is not None
        try:
            response: Response = await self._workers.run(lambda: self.router.handle(request))
        except Exception:  # noqa: BLE001 - Router.handle catches the pages' errors; this is a last resort
            log.exception("error serving %s", request.path)
            return text(500, "internal error")
        return response


def _refuse(sock: socket.socket) -> None:
    """Every connection is serving a request: say so and close, rather than queue unboundedly."""
    try:
        sock.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    sock.close()


def _quiet_exception_handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A client's broken TLS or reset is its own business: one debug line, no traceback."""
    exc = context.get("exception")
    if exc is None or isinstance(exc, OSError):  # ssl.SSLError and ConnectionError are OSErrors
        log.debug("web listener: %s %r", context.get("message"), exc)
    else:
        log.error("web listener: %s", context.get("message"), exc_info=exc)
