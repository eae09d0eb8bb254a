"""Probes against real servers on 127.0.0.1: hostile ones end at their deadline with the right reason."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import time

import pytest
import trustme

import hostile
from hostile import HostileServer
from tocsin import aio
from tocsin.config import parse_config
from tocsin.probes import ProbeResult, run_probe

SLACK = 0.1  # the issue's bound: every probe ends within its deadline + 100 ms (on an idle machine)


def within_deadline(elapsed: float, timeout: float) -> bool:
    """Whether a probe given `timeout` ended in time: by its deadline plus SLACK, the slack
    stretched by how loaded the machine is (a hang or an ignored deadline is still far past it)."""
    from conftest import slowdown

    return elapsed <= timeout + SLACK * slowdown()


def make_target(timeout: str = "1s", **fields):
    spec = {"name": "t", "timeout": timeout, "interval": "30s", **fields}
    return parse_config({"targets": [spec]}, "test").targets[0]


def probe(target) -> tuple[ProbeResult, float]:
    async def once():
        return await run_probe(target.probe, asyncio.get_running_loop().time() + target.timeout)

    started = time.monotonic()
    result = aio.run(once())
    return result, time.monotonic() - started


@pytest.mark.parametrize("behaviour, reason", [
    (hostile.slow_drip(), "timeout"),
    (hostile.accept_and_hang(), "timeout"),
    (hostile.endless_body(), "body_too_large"),
    (hostile.endless_body(chunked=True), "body_too_large"),
    (hostile.huge_content_length(), "body_too_large"),
    (hostile.redirect_loop(), "redirects"),
    (hostile.reset(), "reset"),
    (hostile.garbage(), "bad_response"),
    (hostile.status(503), "status"),
], ids=["slow-drip", "accept-hang", "endless-body", "endless-chunked", "huge-content-length",
        "redirect-loop", "reset", "garbage", "status-503"])
def test_hostile_http_server_ends_within_deadline(behaviour, reason):
    with HostileServer(behaviour) as server:
        target = make_target("1s", url=server.url(), http={"max_body_bytes": "256KiB"})
        result, elapsed = probe(target)
    assert not result.success
    assert result.reason == reason, result.message
    assert within_deadline(elapsed, target.timeout), f"{elapsed:.3f}s for a {target.timeout}s deadline"


def test_endless_body_without_limit_hits_the_deadline():
    with HostileServer(hostile.endless_body()) as server:
        target = make_target("700ms", url=server.url(), http={"max_body_bytes": "10GiB"})
        result, elapsed = probe(target)
    assert (result.success, result.reason) == (False, "timeout")
    assert within_deadline(elapsed, target.timeout), elapsed


def test_closed_port_is_a_connect_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        result, elapsed = probe(make_target("10s", url=f"http://127.0.0.1:{port}/"))
    assert (result.success, result.reason) == (False, "connect")
    from conftest import scaled

    assert elapsed < scaled(1.0), elapsed  # at once, not at the deadline (MAX_SLOWDOWN s < 10 s)


def test_unresolvable_name_is_a_dns_failure():
    result, elapsed = probe(make_target("2s", url="http://name-that-does-not-exist.invalid/health"))
    assert (result.success, result.reason) == (False, "dns")
    assert within_deadline(elapsed, 2.0), elapsed


def test_success_reports_status_length_and_phases():
    with HostileServer(hostile.ok(b'{"status": "ok"}')) as server:
        result, _ = probe(make_target(url=server.url(), http={"fail_if_body_not_matches_regexp": ['"status": *"ok"']}))
    assert result.success, result.message
    assert result.facts["http_status_code"] == 200
    assert result.facts["http_content_length"] == 16
    assert result.facts["http_redirects"] == 0
    assert result.facts["failed_due_to_regex"] == 0
    assert set(result.phases) >= {"resolve", "connect", "processing", "transfer"}


def test_body_regexps_fail_with_reason_body():
    with HostileServer(hostile.ok(b'{"status": "degraded"}')) as server:
        not_matching, _ = probe(make_target(url=server.url(), http={"fail_if_body_not_matches_regexp": ['"ok"']}))
        matching, _ = probe(make_target(url=server.url(), http={"fail_if_body_matches_regexp": ["degraded"]}))
    for result in (not_matching, matching):
        assert (result.success, result.reason) == (False, "body")
        assert result.facts["failed_due_to_regex"] == 1


def test_valid_status_codes_and_redirect_following():
    def redirect_then_ok(conn, _stop):
        request = hostile._read_request(conn)
        if b"GET /final" in request:
            conn.sendall(b"HTTP/1.1 418 Teapot\r\nContent-Length: 2\r\n\r\nok")
        else:
            conn.sendall(b"HTTP/1.1 301 Moved\r\nLocation: /final\r\nContent-Length: 0\r\n\r\n")

    with HostileServer(redirect_then_ok) as server:
        result, _ = probe(make_target(url=server.url(), http={"valid_status_codes": [418]}))
        no_follow, _ = probe(make_target(url=server.url(), http={"follow_redirects": False, "valid_status_codes": [301]}))
        assert server.connections == 3  # a fresh connection for every request, redirects included
    assert result.success and result.facts["http_redirects"] == 1 and result.facts["http_status_code"] == 418
    assert no_follow.success and no_follow.facts["http_status_code"] == 301


def test_probe_sends_traceparent_and_correlation_id():
    correlation_id = "0af7651916cd43dd8448eb211c80319c"
    expected = [rf"traceparent: 00-{correlation_id}-[0-9a-f]{{16}}-01\r\n",
                rf"X-Correlation-ID: {correlation_id}\r\n", r"Connection: close\r\n", r"User-Agent: tocsin/"]
    with HostileServer(hostile.echo_headers()) as server:  # the body is the request the probe sent
        target = make_target(url=server.url(), http={"fail_if_body_not_matches_regexp": expected})

        async def once():
            return await run_probe(target.probe, asyncio.get_running_loop().time() + 1, correlation_id)

        result = aio.run(once())
    assert result.success, result.message
    assert result.correlation_id == correlation_id


def test_retries_use_backoff_inside_the_deadline():
    attempts = {"n": 0}

    def fail_twice(conn, _stop):
        hostile._read_request(conn)
        attempts["n"] += 1
        code = b"500 Error" if attempts["n"] < 3 else b"200 OK"
        conn.sendall(b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\n\r\n")

    with HostileServer(fail_twice) as server:
        target = make_target("3s", url=server.url(),
                             retry={"attempts": 4, "initial_backoff": "50ms", "max_backoff": "200ms"})
        result, _ = probe(target)
    assert result.success and result.attempts == 3 and not result.first_attempt_success


def test_retries_stop_at_the_deadline():
    with HostileServer(hostile.status(500)) as server:
        target = make_target("600ms", url=server.url(),
                             retry={"attempts": 20, "initial_backoff": "100ms", "max_backoff": "100ms"})
        result, elapsed = probe(target)
    assert not result.success
    # The last attempt either got its 500 or, started with less time left than an attempt
    # takes (the more likely the more loaded the machine), was cut by the deadline: then
    # the probe ran right up to it.
    assert result.reason == "status" or (result.reason == "timeout" and result.duration >= result.timeout - 0.01), \
        (result.reason, result.duration)
    assert 2 <= result.attempts < 20
    assert within_deadline(elapsed, target.timeout), elapsed


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1",
                         not_after=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=20))
    directory = tmp_path_factory.mktemp("tls")
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    return ca, cert, str(ca_file), server_context


def test_self_signed_tls_fails_with_reason_tls(tls_material):
    _, _, _, server_context = tls_material
    with HostileServer(hostile.ok(), tls=server_context) as server:
        result, elapsed = probe(make_target(url=server.url(scheme="https")))
    assert (result.success, result.reason) == (False, "tls")
    assert "certificate" in result.message


def test_tls_with_ca_reports_leaf_and_chain_expiry(tls_material):
    ca, cert, ca_file, server_context = tls_material
    with HostileServer(hostile.ok(), tls=server_context) as server:
        result, _ = probe(make_target(url=server.url(scheme="https"), http={"tls": {"ca_file": ca_file}}))
        skip, _ = probe(make_target(url=server.url(scheme="https"), http={"tls": {"insecure_skip_verify": True}}))
    assert result.success, result.message
    assert result.facts["http_ssl"] == 1
    leaf, earliest = result.facts["ssl_leaf_cert_expiry"], result.facts["ssl_earliest_cert_expiry"]
    days = (leaf - time.time()) / 86400
    assert 19 < days < 21  # the leaf was issued for 20 days; trustme's CA lives far longer
    assert earliest == leaf
    assert result.info["tls_version"].startswith("TLS")
    assert skip.success and skip.facts["ssl_leaf_cert_expiry"] == leaf


def test_tls_handshake_against_plain_server_is_tls_failure():
    with HostileServer(hostile.accept_and_hang()) as server:
        result, elapsed = probe(make_target("800ms", url=server.url(scheme="https")))
    assert (result.success, result.reason) == (False, "timeout")
    assert within_deadline(elapsed, 0.8), elapsed


def test_tcp_probe_connect_send_expect():
    def banner(conn, _stop):
        conn.sendall(b"220 smtp ready\r\n")
        data = conn.recv(100)
        conn.sendall(b"250 " + data)

    with HostileServer(banner) as server:
        ok, _ = probe(make_target(tcp={"address": f"127.0.0.1:{server.port}", "send": "HELO x\\r\\n", "expect": "^250 HELO"}))
        silent, _ = probe(make_target("500ms", tcp={"address": f"127.0.0.1:{server.port}", "expect": "^SSH-2.0"}))
    with HostileServer(lambda conn, _stop: conn.sendall(b"220 smtp ready\r\n")) as server:
        wrong, _ = probe(make_target("500ms", tcp={"address": f"127.0.0.1:{server.port}", "expect": "^SSH-2.0"}))
    assert ok.success, ok.message
    assert (silent.success, silent.reason) == (False, "timeout")  # still waiting for a match at the deadline
    assert (wrong.success, wrong.reason) == (False, "expect")  # the server closed without sending one


def test_tcp_probe_closed_port_and_hang():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused, _ = probe(make_target(tcp={"address": f"127.0.0.1:{s.getsockname()[1]}"}))
    assert (refused.success, refused.reason) == (False, "connect")
    with HostileServer(hostile.accept_and_hang()) as server:
        hang, elapsed = probe(make_target("500ms", tcp={"address": f"127.0.0.1:{server.port}", "expect": "x"}))
    assert (hang.success, hang.reason) == (False, "timeout")
    assert within_deadline(elapsed, 0.5), elapsed


def test_tcp_probe_with_tls(tls_material):
    _, _, ca_file, server_context = tls_material
    with HostileServer(lambda conn, _stop: conn.sendall(b"hello\n"), tls=server_context) as server:
        result, _ = probe(make_target(tcp={"address": f"127.0.0.1:{server.port}", "tls": True, "expect": "^hello",
                                           "tls_config": {"ca_file": ca_file, "server_name": "localhost"}}))
    assert result.success, result.message
    assert result.facts["ssl_leaf_cert_expiry"] > time.time()


def test_dns_probe_answer_nxdomain_and_silence():
    with hostile.DNSServer({"db.internal": "10.0.0.7"}) as server:
        address = f"127.0.0.1:{server.port}"
        found, _ = probe(make_target(dns={"query": "db.internal", "server": address}))
        missing, _ = probe(make_target(dns={"query": "nope.internal", "server": address}))
    assert found.success, found.message
    assert found.facts["dns_answer_rrs"] == 1 and found.facts["dns_query_succeeded"] == 1
    assert (missing.success, missing.reason) == (False, "rcode")
    with hostile.DNSServer({}, silent=True) as server:
        silent, elapsed = probe(make_target("500ms", dns={"query": "x.internal", "server": f"127.0.0.1:{server.port}"}))
    assert (silent.success, silent.reason) == (False, "timeout")
    assert within_deadline(elapsed, 0.5), elapsed
