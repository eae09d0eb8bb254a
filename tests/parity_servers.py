"""Loopback servers both blackbox_exporter and tocsin probe in the differential test.

One HTTP server (plain and TLS) routes by path to the behaviours blackbox users meet:
chunked bodies, redirects, 103 Early Hints, a login that sets a cookie, a redirect to a
dead port, headers then silence. A TCP banner server speaks a tiny line protocol with a
STARTTLS step; a DNS server answers one zone. All run in daemon threads until closed.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import socket
import socketserver
import ssl
import threading
import zlib

import dns.message
import dns.rcode
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"  # 1445412480
LAST_MODIFIED_UNIX = 1445412480.0
ZONE = "parity.test."
SERIAL = 2024061501


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class HTTPBehaviours:
    """The routes, as functions of (path, request head) -> bytes to send (None: hang)."""

    def __init__(self, dead_port: int) -> None:
        self.dead_port = dead_port

    def respond(self, path: str, head: bytes, stop: threading.Event, conn: socket.socket) -> None:
        body = b"hello parity\n"
        lower = head.lower()
        if path == "/plain":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nLast-Modified: %s\r\nX-Env: production\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(body), LAST_MODIFIED.encode(), body))
        elif path == "/chunked":
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                         b"6\r\nhello \r\n7\r\nparity\n\r\n0\r\n\r\n")
        elif path == "/redirect":
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        elif path == "/hints":
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        elif path == "/login":
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /private\r\nSet-Cookie: session=s3cr3t; Path=/\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
        elif path == "/private":
            if b"cookie: session=s3cr3t" in lower:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nwelcome")
            else:
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        elif path == "/dead":
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n" % self.dead_port)
        elif path == "/hang":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\npartial")
            stop.wait(30)
        elif path == "/missing":
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")
        elif path == "/headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Env: staging\r\nX-Env: production\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
        elif path == "/hints-forever":
            try:
                while not stop.is_set():
                    conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            except OSError:
                pass
        elif path in ("/deflate", "/raw-deflate", "/bomb"):
            if path == "/bomb":
                packed = gzip.compress(b"\0" * 5_000_000, compresslevel=1, mtime=0)
            else:
                packer = zlib.compressobj(wbits=zlib.MAX_WBITS if path == "/deflate" else -zlib.MAX_WBITS)
                packed = packer.compress(body * 20) + packer.flush()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(packed), packed))
        elif path == "/gzip":
            packed = gzip.compress(body * 20, mtime=0)
            if b"accept-encoding: gzip" in lower:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (len(packed), packed))
            else:
                conn.sendall(b"HTTP/1.1 406 Not Acceptable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        elif path == "/proxied":
            # What a forward proxy receives: the absolute URL on the request line.
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nproxied")
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class _Threaded(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Threaded6(_Threaded):
    address_family = socket.AF_INET6


class HTTPServer:
    """The routes above on 127.0.0.1, over TLS when `context` is given."""

    def __init__(self, behaviours: HTTPBehaviours, context: ssl.SSLContext | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(10)
                try:
                    if context is not None:
                        conn = context.wrap_socket(conn, server_side=True)
                    head = _read_head(conn)
                    outer.requests.append(head)
                    parts = head.split(b" ", 2)
                    path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
                    if path.startswith("http://"):
                        path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
                    behaviours.respond(path.split("?")[0], head, outer.stop, conn)
                except (OSError, ssl.SSLError):
                    pass

        self.server = (_Threaded6 if ":" in host else _Threaded)((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    """A forward proxy: CONNECT tunnels, and absolute-form requests passed on as they came.
    `request_lines` keeps the first line of each request it received."""

    def __init__(self) -> None:
        self.request_lines: list[bytes] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(10)
                try:
                    head = _read_head(conn)
                    line = head.split(b"\r\n", 1)[0]
                    outer.request_lines.append(line)
                    method, target, _ = line.split(b" ", 2)
                    if method == b"CONNECT":
                        host, _, port = target.decode().rpartition(":")
                        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
                        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    else:
                        authority = target.decode().split("/", 3)[2]
                        host, _, port = authority.rpartition(":")
                        upstream = socket.create_connection((host, int(port or 80)), timeout=10)
                        upstream.sendall(head)
                    _pipe(conn, upstream)
                except (OSError, ValueError):
                    pass

        self.server = _Threaded(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    def copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    other = threading.Thread(target=copy, args=(b, a), daemon=True)
    other.start()
    copy(a, b)
    other.join(10)
    b.close()


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
                 issuer_key: ec.EllipticCurvePrivateKey, not_after: datetime.datetime, ca: bool,
                 sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tocsin parity"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_after - datetime.timedelta(days=365)).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Chain:
    """A root CA, an intermediate and a leaf for 127.0.0.1, each expiring on a known second
    and in the order that tells the expiries apart: the root first (the verified chain's
    earliest), then the intermediate (the presented chain's earliest), then the leaf."""

    def __init__(self, tmp_dir: str) -> None:
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        self.root_not_after = now + datetime.timedelta(days=40)
        self.intermediate_not_after = now + datetime.timedelta(days=50)
        self.leaf_not_after = now + datetime.timedelta(days=60)
        root_key, intermediate_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        root = _certificate("Parity Root", root_key, None, root_key, self.root_not_after, ca=True)
        intermediate = _certificate("Parity Intermediate", intermediate_key, root.subject, root_key,
                                    self.intermediate_not_after, ca=True)
        leaf = _certificate("127.0.0.1", leaf_key, intermediate.subject, intermediate_key, self.leaf_not_after,
                            ca=False, sans=[x509.DNSName("localhost"),
                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        pem = serialization.Encoding.PEM
        self.ca_file = f"{tmp_dir}/ca.pem"
        with open(self.ca_file, "wb") as file:
            file.write(root.public_bytes(pem))
        chain_file, key_file = f"{tmp_dir}/chain.pem", f"{tmp_dir}/leaf.key"
        with open(chain_file, "wb") as file:
            file.write(leaf.public_bytes(pem) + intermediate.public_bytes(pem))
        with open(key_file, "wb") as file:
            file.write(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(chain_file, key_file)


class BannerServer:
    """`SSH-2.0-parity` on connect; answers `STARTTLS` with `220 ready` and upgrades,
    `PING` with `PONG`, `ECHO x` with `GOT x`, `QUIT` with `BYE` and closes."""

    def __init__(self, context: ssl.SSLContext | None = None, banner: bytes = b"SSH-2.0-parity\r\n") -> None:
        self.stop = threading.Event()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(5)
                try:
                    conn.sendall(banner)
                    buffer = b""
                    while True:
                        while b"\n" not in buffer:
                            chunk = conn.recv(1024)
                            if not chunk:
                                return
                            buffer += chunk
                        line, _, buffer = buffer.partition(b"\n")
                        command = line.strip()
                        if command == b"STARTTLS" and context is not None:
                            conn.sendall(b"220 ready\r\n")
                            conn = context.wrap_socket(conn, server_side=True)
                        elif command.startswith(b"ECHO "):
                            conn.sendall(b"GOT " + command[5:] + b"\r\n")
                        elif command == b"PING":
                            conn.sendall(b"PONG\r\n")
                        elif command == b"QUIT":
                            conn.sendall(b"BYE\r\n")
                            return
                except (OSError, ssl.SSLError):
                    pass

        self.server = _Threaded(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def _answer(query: dns.message.Message) -> dns.message.Message:
    response = dns.message.make_response(query)
    question = query.question[0]
    name, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
    soa = dns.rrset.from_text(ZONE, 300, "IN", "SOA", f"ns.{ZONE} admin.{ZONE} {SERIAL} 3600 600 86400 60")
    if name == f"ok.{ZONE}" and rdtype == "A":
        response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "127.0.0.1", "127.0.0.2"))
        response.authority.append(dns.rrset.from_text(ZONE, 60, "IN", "NS", f"ns.{ZONE}"))
        response.additional.append(dns.rrset.from_text(f"ns.{ZONE}", 60, "IN", "A", "127.0.0.53"))
    elif name == f"rr.{ZONE}" and rdtype == "A":  # the first address has nothing listening
        response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "127.0.0.2"))
        response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "127.0.0.1"))
    elif name == f"dual.{ZONE}" and rdtype in ("A", "AAAA"):
        response.answer.append(dns.rrset.from_text(name, 60, "IN", rdtype, "127.0.0.1" if rdtype == "A" else "::1"))
    elif name == f"v4.{ZONE}" and rdtype == "A":
        response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "127.0.0.1"))
    elif name in (f"rr.{ZONE}", f"dual.{ZONE}", f"v4.{ZONE}"):
        response.authority.append(soa)
    elif name == ZONE and rdtype == "SOA":
        response.answer.append(soa)
    elif name in (f"ok.{ZONE}", f"ns.{ZONE}", ZONE):
        response.authority.append(soa)  # NOERROR, no data
    else:
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(soa)
    return response


class DNSServer:
    """One zone over UDP and TCP on the same port."""

    def __init__(self) -> None:
        for _ in range(50):  # the UDP port's number may be taken for TCP: try another
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket()
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        self.tcp.listen(16)
        self.closed = False
        threading.Thread(target=self._serve_udp, daemon=True).start()
        threading.Thread(target=self._serve_tcp, daemon=True).start()

    def _serve_udp(self) -> None:
        while not self.closed:
            try:
                data, peer = self.udp.recvfrom(4096)
                self.udp.sendto(_answer(dns.message.from_wire(data)).to_wire(), peer)
            except Exception:  # noqa: BLE001 - a test server: a bad packet or the close ends nothing
                if self.closed:
                    return

    def _serve_tcp(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(5)
                    length = int.from_bytes(conn.recv(2), "big")
                    data = b""
                    while len(data) < length:
                        data += conn.recv(length - len(data))
                    wire = _answer(dns.message.from_wire(data)).to_wire()
                    conn.sendall(len(wire).to_bytes(2, "big") + wire)
                except Exception:  # noqa: BLE001 - as above
                    pass

    def close(self) -> None:
        self.closed = True
        self.udp.close()
        self.tcp.close()
