"""Real misbehaving servers on 127.0.0.1, one behaviour each, for the probe tests.

Every server runs in daemon threads and stops when the test's `stop` event is set, so a
hanging handler never outlives the test session.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import struct
import threading
import time
from typing import Callable

Behaviour = Callable[[socket.socket, threading.Event], None]


def _read_request(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _sleep_until_stopped(stop: threading.Event, seconds: float = 60.0) -> None:
    stop.wait(seconds)


def ok(body: bytes = b'{"status": "ok"}', status: str = "200 OK", extra: str = "") -> Behaviour:
    def handle(conn: socket.socket, _stop: threading.Event) -> None:
        _read_request(conn)
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n".encode() + body)
    return handle


def echo_headers() -> Behaviour:
    """Reply with the request head as the body, so a test can read what the probe sent."""
    def handle(conn: socket.socket, _stop: threading.Event) -> None:
        request = _read_request(conn)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(request)}\r\n\r\n".encode() + request)
    return handle


def slow_drip(interval: float = 0.2) -> Behaviour:
    """A valid response, one byte at a time, never finishing: defeats per-read timeouts."""
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        _read_request(conn)
        payload = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 100_000
        for byte in payload:
            if stop.wait(interval):
                return
            try:
                conn.send(bytes([byte]))
            except OSError:
                return
    return handle


def accept_and_hang() -> Behaviour:
    def handle(_conn: socket.socket, stop: threading.Event) -> None:
        _sleep_until_stopped(stop)
    return handle


def endless_body(chunked: bool = False) -> Behaviour:
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        _read_request(conn)
        head = "Transfer-Encoding: chunked\r\n" if chunked else ""
        conn.sendall(f"HTTP/1.1 200 OK\r\n{head}\r\n".encode())
        block = b"x" * 8192
        frame = (b"2000\r\n" + block + b"\r\n") if chunked else block
        while not stop.is_set():
            try:
                conn.sendall(frame)
            except OSError:
                return
            time.sleep(0.001)
    return handle


def huge_content_length(size: int = 50 * 2**20) -> Behaviour:
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        _read_request(conn)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + b"x" * 1024)
        _sleep_until_stopped(stop, 10)
    return handle


def redirect_loop() -> Behaviour:
    def handle(conn: socket.socket, _stop: threading.Event) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    return handle


def reset() -> Behaviour:
    """Read the request, then close with SO_LINGER 0: the client sees a TCP RST."""
    def handle(conn: socket.socket, _stop: threading.Event) -> None:
        _read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    return handle


def garbage() -> Behaviour:
    def handle(conn: socket.socket, _stop: threading.Event) -> None:
        _read_request(conn)
        conn.sendall(b"\x00\xff\xfeSSH-2.0-not-http\r\n\x01\x02garbage\r\n\r\n")
    return handle


def status(code: int) -> Behaviour:
    return ok(b"nope", f"{code} Whatever")


def _stream_forever(conn: socket.socket, stop: threading.Event, head: bytes, block: bytes) -> None:
    """Send `head`, then `block` again and again as fast as the client takes it, until stopped."""
    _read_request(conn)
    try:
        conn.sendall(head)
        while not stop.is_set():
            conn.sendall(block)
    except OSError:
        return


def endless_trailers() -> Behaviour:
    """A chunked body that ends at once, then trailer lines that never end."""
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        _stream_forever(conn, stop, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
                        b"X-Trailer: t\r\n" * 4096)
    return handle


def endless_tiny_chunks() -> Behaviour:
    """A chunked body of one-byte chunks that never ends: six bytes of framing per byte of body."""
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        _stream_forever(conn, stop, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n" * 8192)
    return handle


def bad_content_length(value: str) -> Behaviour:
    def handle(conn: socket.socket, _stop: threading.Event) -> None:
        _read_request(conn)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {value}\r\nConnection: close\r\n\r\nok".encode())
    return handle


def redirect_to(location: str, code: int = 302) -> Behaviour:
    def handle(conn: socket.socket, _stop: threading.Event) -> None:
        _read_request(conn)
        conn.sendall(f"HTTP/1.1 {code} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode())
    return handle


def redirect_to_new_long_urls(length: int = 100 * 1024) -> Behaviour:
    """Redirect every request to a URL never seen before, `length` bytes long."""
    counter = iter(range(10**12))

    def handle(conn: socket.socket, _stop: threading.Event) -> None:
        _read_request(conn)
        path = f"/{next(counter)}/" + "p" * length
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode())
    return handle


class HostileServer:
    """A TCP (optionally TLS) server on 127.0.0.1 running one behaviour per connection."""

    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> None:
        self.stop = threading.Event()
        self.connections = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.connections += 1
                conn = self.request
                if tls is not None:
                    try:
                        conn = tls.wrap_socket(conn, server_side=True)
                    except (ssl.SSLError, OSError):
                        return
                try:
                    behaviour(conn, outer.stop)
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "HostileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/health", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


class DNSServer:
    """A UDP DNS server on 127.0.0.1 answering from a dict of name -> A address (NXDOMAIN otherwise)."""

    def __init__(self, records: dict[str, str], silent: bool = False) -> None:
        import dns.message
        import dns.rcode
        import dns.rrset

        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]

        def serve() -> None:
            while not self.stop.is_set():
                try:
                    data, peer = self.sock.recvfrom(4096)
                except OSError:
                    continue
                if silent:
                    continue
                query = dns.message.from_wire(data)
                response = dns.message.make_response(query)
                name = query.question[0].name.to_text().rstrip(".")
                if name in records:
                    response.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "A", records[name]))
                else:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                self.sock.sendto(response.to_wire(), peer)

        self.thread = threading.Thread(target=serve, daemon=True)

    def __enter__(self) -> "DNSServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()
