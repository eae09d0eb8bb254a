"""The listener under hostile clients, over real sockets on 127.0.0.1: request desync, bad
Content-Length, Host names (DNS rebinding), plain HTTP to the TLS port, and slow clients
against the connection cap. Each test is bounded to seconds."""

from __future__ import annotations

import logging
import resource
import socket
import ssl
import threading
import time

import pytest
import requests
import trustme

from conftest import scaled, wait_for
from listener_harness import Listener, exchange, read_all, request, statuses
from tocsin.config import WebConfig

SMUGGLED = request("POST", "/-/reload", {"Content-Length": "0"})


# ------------------------------------------------------------------------------ desync


def test_a_gets_body_is_consumed_not_read_as_a_second_request(listen):
    web = listen()
    first = request("GET", "/-/healthy", {"Content-Length": str(len(SMUGGLED))}, SMUGGLED)
    raw = exchange(web.port, first + request("GET", "/-/ready", {"Connection": "close"}))
    assert statuses(raw) == [200, 200] and b"tocsin is ready." in raw
    assert web.control.reloads == 0


def test_a_post_body_past_64_kib_is_body_not_a_request(listen):
    web = listen()
    body = b"x" * 65536 + SMUGGLED  # the smuggled request starts where a 64 KiB read would stop
    raw = exchange(web.port, request("POST", "/-/reload", {"Content-Length": str(len(body))}, body)
                   + request("GET", "/-/healthy", {"Connection": "close"}))
    assert statuses(raw) == [200, 200]
    assert web.control.reloads == 1


def test_a_body_over_the_limit_is_refused_and_the_connection_closed(listen):
    web = listen()
    body = b"x" * (1 << 20 | 1)
    raw = exchange(web.port, request("POST", "/-/reload", {"Content-Length": str(len(body))}, body) + SMUGGLED)
    assert statuses(raw) == [413]
    assert web.control.reloads == 0


def test_content_length_with_transfer_encoding_is_refused_and_closed(listen):
    web = listen()
    smuggle = request("POST", "/-/reload", {"Content-Length": "4", "Transfer-Encoding": "chunked"},
                      b"0\r\n\r\n") + SMUGGLED
    raw = exchange(web.port, smuggle)
    assert statuses(raw) == [400] and b"Transfer-Encoding" in raw
    assert web.control.reloads == 0


def test_a_chunked_body_is_framed_by_its_chunks(listen):
    web = listen()
    chunked = request("POST", "/-/reload", {"Transfer-Encoding": "chunked"}, b"5\r\nhello\r\n0\r\n\r\n")
    raw = exchange(web.port, chunked + request("GET", "/-/healthy", {"Connection": "close"}))
    assert statuses(raw) == [200, 200]
    assert web.control.reloads == 1


# ------------------------------------------------------------------------------ bad Content-Length


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "0x10", "5, 6"])
def test_a_bad_content_length_gets_400_at_once(listen, value):
    web = listen()
    start = time.monotonic()
    raw = exchange(web.port, request("POST", "/-/reload", {"Content-Length": value}), timeout=scaled(3))
    assert statuses(raw) == [400]
    assert time.monotonic() - start < scaled(2)  # answered, not held until a read times out
    assert web.control.reloads == 0


def test_the_listener_keeps_serving_after_protocol_errors(listen):
    web = listen()
    for garbage in (b"\x00\xff garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /\r\n\r\n"):
        exchange(web.port, garbage, timeout=scaled(2))
    assert requests.get(web.url + "/-/healthy", timeout=scaled(2)).status_code == 200


# ------------------------------------------------------------------------------ Host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:{port}", "localhost:{port}", "LOCALHOST",
                                  "[::1]:{port}", "10.1.2.3:80", "app.localhost"])
def test_the_listeners_own_host_names_are_answered(listen, host):
    web = listen()
    raw = exchange(web.port, request("GET", "/api/v1/targets", {"Connection": "close"},
                                     host=host.format(port=web.port)))
    assert statuses(raw) == [200]


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.attacker.example",
                                  "localhost.attacker.example", ""])
def test_a_foreign_host_name_is_refused_on_every_path(listen, host):
    web = listen()
    for path in ("/api/v1/targets", "/metrics", "/"):
        raw = exchange(web.port, request("GET", path, {"Connection": "close"}, host=host.format(port=web.port)))
        assert statuses(raw) in ([421], [400]), (path, raw[:200])


def test_configured_host_names_and_the_wildcard(listen):
    web = listen(allowed_hosts=["metrics.example.com", "*.internal.example"])
    for host, status in (("metrics.example.com:9469", 200), ("a.internal.example", 200),
                         ("internal.example.evil", 421), ("evil.example", 421)):
        raw = exchange(web.port, request("GET", "/metrics", {"Connection": "close"}, host=host))
        assert statuses(raw) == [status], host
    anything = listen(allowed_hosts=["*"])
    assert statuses(exchange(anything.port, request("GET", "/metrics", {"Connection": "close"},
                                                    host="evil.example"))) == [200]


def test_two_host_fields_are_refused(listen):
    web = listen()
    raw = exchange(web.port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n")
    assert statuses(raw) == [400]


# ------------------------------------------------------------------------------ TLS


def test_plain_http_to_the_tls_port_gets_a_plain_400_and_no_traceback(listen, tmp_path, caplog, capsys):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    caplog.set_level(logging.DEBUG, logger="tocsin.web")
    web = listen(tls_cert_file=str(cert_file), tls_key_file=str(key_file))
    for _ in range(3):
        raw = exchange(web.port, request("GET", "/-/healthy"), timeout=scaled(3))
        assert raw.startswith(b"HTTP/1.0 400") and b"HTTPS" in raw
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with socket.create_connection(("127.0.0.1", web.port), timeout=scaled(3)) as raw_sock, \
            context.wrap_socket(raw_sock, server_hostname="127.0.0.1") as tls:
        tls.sendall(request("GET", "/-/healthy", {"Connection": "close"}))
        assert statuses(read_all(tls, scaled(3))) == [200]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------------------ slow clients


def _thread_count() -> int:
    return threading.active_count()


@pytest.fixture
def many_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        if hard != resource.RLIM_INFINITY and hard < 4096:
            pytest.skip("needs 4096 file descriptors")
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("many_descriptors")
def test_a_thousand_slowloris_connections_take_no_threads_and_leave_room(listen):
    web = listen(max_connections=100)
    threads_before = _thread_count()
    clients = []
    try:
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", web.port), timeout=scaled(5))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")  # a head that never ends
            clients.append(sock)
        assert _thread_count() - threads_before <= 2
        # A client that sends a whole request is served, displacing the slow ones at the cap.
        response = requests.get(web.url + "/-/healthy", timeout=scaled(5))
        assert response.status_code == 200

        def closed_by_server() -> int:
            count = 0
            for sock in clients:
                sock.setblocking(False)
                try:
                    count += sock.recv(1) == b""
                except BlockingIOError:
                    pass
                except OSError:
                    count += 1
            return count

        wait_for(lambda: closed_by_server() >= 900, timeout=5, what="the server to hold at most the cap")
    finally:
        for sock in clients:
            sock.close()


def test_a_dripping_client_is_cut_off_at_the_request_deadline():
    from tocsin.web.connection import Limits

    web = Listener(WebConfig(), limits=Limits(request_timeout=1.0))
    try:
        sock = socket.create_connection(("127.0.0.1", web.port), timeout=scaled(5))
        start = time.monotonic()
        cut = False
        for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: " + b"a" * 200:
            try:
                sock.send(bytes([byte]))
            except OSError:
                cut = True
                break
            time.sleep(0.1)
            if time.monotonic() - start > 1.0 + scaled(2):
                break
        raw = read_all(sock, scaled(2))
        assert cut or statuses(raw) == [408] or raw == b""
        assert time.monotonic() - start < 1.0 + scaled(3)
        sock.close()
    finally:
        web.stop()
