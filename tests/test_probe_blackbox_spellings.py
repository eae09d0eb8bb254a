"""More options blackbox_exporter users paste, each against a real loopback server: HTTP
`compression: br` (a server that answers in brotli, a bomb, a body that is not brotli),
blackbox's `preferred_ip_protocol` for tocsin's `ip_protocol` in every kind, and gRPC's
`ip_protocol` (a grpcio server listening on ::1 only, behind a name with both families)."""

from __future__ import annotations

import asyncio
import socket
from concurrent import futures

import brotli
import grpc
import parity_servers as ps
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from conftest import IN_CI, free_port
from tocsin import aio
from tocsin.config import parse_config
from tocsin.errors import ConfigError
from tocsin.probes import ProbeResult, resolver, run_probe

TEXT = b"hello brotli\n" * 40
BODIES = {"/br": brotli.compress(TEXT), "/br-bomb": brotli.compress(b"\0" * 5_000_000, quality=1),
          "/br-plain": TEXT, "/br-cut": brotli.compress(TEXT)[:-4]}


class BrotliRoutes(ps.HTTPBehaviours):
    """/br answers in brotli when asked to (406 otherwise), /br-bomb expands 5 MB of zeros,
    /br-plain claims br and sends plain text; the parity routes otherwise."""

    def respond(self, path, head, stop, conn) -> None:
        packed = BODIES.get(path)
        if packed is None:
            return super().respond(path, head, stop, conn)
        if b"accept-encoding: br" not in head.lower():
            conn.sendall(b"HTTP/1.1 406 Not Acceptable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return None
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(packed), packed))
        return None


@pytest.fixture(scope="module")
def servers():
    http = ps.HTTPServer(BrotliRoutes(dead_port=free_port()))
    v6 = ps.HTTPServer(BrotliRoutes(dead_port=free_port()), host="::1")
    dns_server = ps.DNSServer()
    yield {"http": http, "v6": v6, "dns": dns_server}
    for server in (http, v6, dns_server):
        server.close()


@pytest.fixture
def zone(servers, monkeypatch):
    """Names resolve through the test's DNS server (dual.parity.test: 127.0.0.1 and ::1; v4.parity.test)."""
    monkeypatch.setenv("TOCSIN_NAMESERVERS", f"127.0.0.1:{servers['dns'].port}")
    resolver._conf.value = None
    yield
    resolver._conf.value = None


def run(timeout: str = "2s", **fields) -> ProbeResult:
    target = parse_config({"targets": [{"name": "t", "timeout": timeout, "interval": "30s", **fields}]},
                          "test").targets[0]

    async def once():
        return await run_probe(target.probe, asyncio.get_running_loop().time() + target.timeout)

    return aio.run(once())


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        if IN_CI:
            pytest.fail("::1 is not available")
        pytest.skip("::1 is not available on this machine")


def test_brotli_body_is_asked_for_decoded_and_bounded(servers):
    base = f"http://127.0.0.1:{servers['http'].port}"
    br = run(url=f"{base}/br", http={"compression": "br"})
    assert br.success and br.facts["http_uncompressed_body_length"] == len(TEXT), br.message
    assert run(url=f"{base}/br", http={"compression": "br", "fail_if_body_not_matches_regexp": ["hello brotli"]}).success
    bomb = run(url=f"{base}/br-bomb", http={"compression": "br", "max_body_bytes": "1MiB"})
    assert (bomb.success, bomb.reason) == (False, "body_too_large"), bomb.message
    for path in ("/br-plain", "/br-cut"):
        bad = run(url=base + path, http={"compression": "br"})
        assert (bad.success, bad.reason) == (False, "bad_response"), (path, bad.message)
        assert "not br-encoded" in bad.message
    # a gzip body asked for as br fails as not br (the decoder does not guess)
    assert not run(url=f"{base}/gzip", http={"compression": "br"}).success


@pytest.mark.usefixtures("zone")
def test_preferred_ip_protocol_is_ip_protocol_in_http_tcp_and_dns(servers):
    _ipv6_loopback()
    port = servers["v6"].port  # listens on ::1 only
    url = f"http://dual.parity.test:{port}/plain"
    assert run(url=url, http={"preferred_ip_protocol": "ip6"}).facts["ip_protocol"] == 6
    assert not run(url=url).success  # ip4 first: 127.0.0.1, where nothing listens on that port
    tcp = run(tcp={"address": f"dual.parity.test:{port}", "preferred_ip_protocol": "ip6"})
    assert tcp.success and tcp.facts["ip_protocol"] == 6, tcp.message
    strict = run(tcp={"address": f"v4.parity.test:{port}", "preferred_ip_protocol": "ip6",
                      "ip_protocol_fallback": False})
    assert (strict.success, strict.reason) == (False, "dns")
    dns = run("500ms", dns={"query": "ok.parity.test", "server": f"dual.parity.test:{servers['dns'].port}",
                            "preferred_ip_protocol": "ip6"})
    assert dns.facts["ip_protocol"] == 6
    with pytest.raises(ConfigError, match="not both"):
        run(url=url, http={"preferred_ip_protocol": "ip6", "ip_protocol": "ip4"})
    with pytest.raises(ConfigError, match="ip4"):
        run(url=url, http={"preferred_ip_protocol": "ipv6"})


class HealthServerOnIPv6:
    """A grpcio health server listening on [::1] only."""

    def __init__(self) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, self.server)
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        self.port = free_port()
        self.server.add_insecure_port(f"[::1]:{self.port}")
        self.server.start()

    def close(self) -> None:
        self.server.stop(0).wait(5)


@pytest.mark.usefixtures("zone")
def test_grpc_ip_protocol_picks_the_family():
    _ipv6_loopback()
    server = HealthServerOnIPv6()
    try:
        address = f"dual.parity.test:{server.port}"
        v6 = run("3s", grpc={"address": address, "ip_protocol": "ip6"})
        assert v6.success and v6.facts["ip_protocol"] == 6, v6.message
        assert run("3s", grpc={"address": address, "preferred_ip_protocol": "ip6"}).success
        v4 = run("3s", grpc={"address": address})  # IPv4 first, as for the other kinds: nothing there
        assert (v4.success, v4.reason, v4.facts["ip_protocol"]) == (False, "connect", 4), v4.message
        strict = run("3s", grpc={"address": f"v4.parity.test:{server.port}", "ip_protocol": "ip6",
                                 "ip_protocol_fallback": False})
        assert (strict.success, strict.reason) == (False, "dns")
    finally:
        server.close()
