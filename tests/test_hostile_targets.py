"""Hostile targets, one behaviour each: the probe ends by its deadline, costs little, and leaks nothing."""

from __future__ import annotations

import asyncio
import gc
import random
import socket
import threading
import time
import tracemalloc

import pytest
from test_probes import make_target, probe, tls_material, within_deadline  # noqa: F401 - tls_material is a fixture

import hostile
from conftest import scaled
from hostile import HostileServer
from tocsin import aio
from tocsin.config import parse_config
from tocsin.errors import ConfigError
from tocsin.probes import patterns, resolver, run_probe


def probe_cpu(target) -> tuple[object, float, float]:
    """Probe once; the result, the wall time and the CPU time of the event loop's thread."""
    cpu = time.thread_time()
    result, elapsed = probe(target)
    return result, elapsed, time.thread_time() - cpu


@pytest.mark.parametrize("behaviour", [hostile.endless_trailers(), hostile.endless_tiny_chunks()],
                         ids=["endless-trailers", "endless-one-byte-chunks"])
def test_endless_chunk_framing_is_refused_early_and_cheaply(behaviour):
    with HostileServer(behaviour) as server:
        target = make_target("1s", url=server.url())
        result, elapsed, cpu = probe_cpu(target)
    assert (result.success, result.reason) == (False, "bad_response"), result.message
    # Before: parsed at wire speed until the deadline (1 s of CPU, and past the deadline for
    # one-byte chunks, whose reads never yielded). The framing allowance is 64 KiB of lines.
    assert cpu < scaled(0.15), f"{cpu:.3f} s of CPU"
    assert within_deadline(elapsed, target.timeout), elapsed


@pytest.mark.parametrize("value", ["-1", "+5", "5, 6", "0x10", "²"])
def test_malformed_content_length_is_a_bad_response(value):
    with HostileServer(hostile.bad_content_length(value)) as server:
        result, _ = probe(make_target(url=server.url()))
    assert (result.success, result.reason) == (False, "bad_response"), result.message
    assert result.facts["http_content_length"] == -1


CREDENTIAL_LINES = ("authorization:", "cookie:", "proxy-authorization:")


def _sent_credentials(result_body: bytes) -> list[str]:
    return [line for line in result_body.decode("latin-1").lower().split("\r\n") if line.startswith(CREDENTIAL_LINES)]


def _probe_capturing(target) -> bytes:
    """Probe once; the last request an echoing server received (its body is the request)."""
    captured: list[bytes] = []

    async def once():
        from tocsin.probes import http

        original = http._check_body

        async def capture(body, options):
            captured.append(body)
            await original(body, options)

        http._check_body = capture
        try:
            return await run_probe(target.probe, asyncio.get_running_loop().time() + target.timeout)
        finally:
            http._check_body = original

    result = aio.run(once())
    assert result.success, result.message
    return captured[-1]


@pytest.mark.parametrize("auth", [
    {"bearer_token": "s3cret"},
    {"basic_auth": {"username": "u", "password": "s3cret"}},
    {"headers": {"Authorization": "Token s3cret", "Cookie": "session=s3cret"}},
], ids=["bearer", "basic", "headers"])
def test_credentials_are_not_sent_to_another_origin(auth):
    with HostileServer(hostile.echo_headers()) as elsewhere, \
            HostileServer(hostile.redirect_to(elsewhere.url("/landing"))) as origin, \
            HostileServer(hostile.echo_headers()) as same:
        cross = _probe_capturing(make_target(url=origin.url(), http=auth))
        direct = _probe_capturing(make_target(url=same.url(), http=auth))
    assert b"GET /landing" in cross
    assert _sent_credentials(cross) == []  # before: every credential line went to the other port
    assert _sent_credentials(direct)  # to the target itself they are sent


def test_credentials_follow_a_redirect_within_the_origin():
    def redirect_then_echo(conn, _stop):
        request = hostile._read_request(conn)
        if b"GET /final" in request:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(request) + request)
        else:
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: 0\r\n\r\n")

    with HostileServer(redirect_then_echo) as server:
        sent = _probe_capturing(make_target(url=server.url(), http={"bearer_token": "s3cret"}))
    assert b"GET /final" in sent and _sent_credentials(sent) == ["authorization: bearer s3cret"]


def test_https_to_http_redirect_is_refused_unless_allowed(tls_material):  # noqa: F811 - the fixture
    _, _, ca_file, server_context = tls_material
    with HostileServer(hostile.echo_headers()) as plain:
        with HostileServer(hostile.redirect_to(plain.url("/clear")), tls=server_context) as secure:
            options = {"tls": {"ca_file": ca_file}, "bearer_token": "s3cret"}
            refused, _ = probe(make_target(url=secure.url(scheme="https"), http=options))
            allowed = _probe_capturing(make_target(url=secure.url(scheme="https"),
                                                   http={**options, "allow_insecure_redirects": True}))
        assert (refused.success, refused.reason) == (False, "redirects"), refused.message
        assert b"GET /clear" in allowed and _sent_credentials(allowed) == []


def test_redirects_to_ever_new_long_urls_leave_nothing_behind():
    with HostileServer(hostile.redirect_to_new_long_urls()) as server:
        target = make_target("2s", url=server.url(), http={"max_redirects": 5})
        probe(target)  # warm up: imports, the target's own caches
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(10):
                result, _ = probe(target)
                assert result.reason == "redirects", result.message
            assert "longer than" in result.message
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    # Before: 50 redirects to 100 KiB URLs were followed, and two caches kept each URL (17 MiB).
    assert grown < 1 * 2**20, f"{grown / 2**20:.1f} MiB kept"


@pytest.fixture
def silent_resolver(monkeypatch):
    """A resolver that never answers, for names under .hang.test, in both ways a probe may ask:
    DNS queries (to a silent server) and the system's getaddrinfo (blocking for 3 s)."""
    real_getaddrinfo = socket.getaddrinfo

    def hanging_getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".hang.test"):
            time.sleep(3)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    with hostile.DNSServer({}, silent=True) as server:
        monkeypatch.setattr(socket, "getaddrinfo", hanging_getaddrinfo)
        monkeypatch.setenv("TOCSIN_NAMESERVERS", f"127.0.0.1:{server.port}")
        monkeypatch.setattr(resolver, "_conf", resolver._Cached(resolver.RESOLV_CONF))
        yield
    resolver._conf = resolver._Cached(resolver.RESOLV_CONF)


@pytest.mark.usefixtures("silent_resolver")
def test_a_resolver_that_never_answers_delays_no_other_name():
    threads_before = threading.active_count()
    with HostileServer(hostile.ok()) as healthy:
        hung = [make_target("500ms", url=f"http://t{i}.hang.test:{healthy.port}/") for i in range(12)]
        local = make_target("2s", url=f"http://localhost:{healthy.port}/health")

        async def together():
            loop = asyncio.get_running_loop()
            stuck = [asyncio.create_task(run_probe(t.probe, loop.time() + t.timeout)) for t in hung]
            await asyncio.sleep(0.05)  # the hung lookups are under way
            started = time.monotonic()
            result = await run_probe(local.probe, loop.time() + local.timeout)
            return result, time.monotonic() - started, await asyncio.gather(*stuck), threading.active_count()

        started = time.monotonic()
        local_result, local_elapsed, stuck_results, threads_during = aio.run(together())
        elapsed = time.monotonic() - started
    assert local_result.success, local_result.message  # before: waited behind the pool's threads
    assert local_elapsed < scaled(0.2), local_elapsed
    assert all((r.success, r.reason) == (False, "timeout") for r in stuck_results)
    assert within_deadline(elapsed - 0.05, 0.5), elapsed
    assert threads_during <= threads_before + 2  # the servers' own: no resolver threads left behind


def test_a_costly_body_pattern_runs_off_the_loop_within_the_deadline():
    rng = random.Random(1)
    adversarial = bytes(rng.choice(b"ax") for _ in range(2**20))  # keeps RE2's DFA out of memory
    with HostileServer(hostile.ok(adversarial)) as costly, HostileServer(hostile.ok()) as healthy:
        slow = make_target("500ms", url=costly.url(), http={"fail_if_body_matches_regexp": ["a[ax]{200}b"]})
        quick = make_target("2s", url=healthy.url())

        async def together():
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            slow_task = asyncio.create_task(run_probe(slow.probe, loop.time() + slow.timeout))
            await asyncio.sleep(0.2)  # the body has arrived, the search is running
            quick_started = time.monotonic()
            quick_result = await run_probe(quick.probe, loop.time() + quick.timeout)
            quick_elapsed = time.monotonic() - quick_started
            slow_result = await slow_task
            return slow_result, time.monotonic() - started, quick_result, quick_elapsed

        slow_result, slow_elapsed, quick_result, quick_elapsed = aio.run(together())
        patterns._executor().submit(lambda: None).result(timeout=scaled(10))  # the search ran to its end
    assert (slow_result.success, slow_result.reason) == (False, "timeout"), slow_result.message
    assert within_deadline(slow_elapsed, slow.timeout), slow_elapsed  # before: 1.6 s on the loop
    assert quick_result.success and quick_elapsed < scaled(0.2), quick_elapsed


def test_a_pattern_with_groups_is_searched_without_captures():
    with HostileServer(hostile.ok(b"xa" * 2**19)) as server:
        target = make_target("2s", url=server.url(), http={"fail_if_body_not_matches_regexp": ["(.*a){20}"]})
        result, elapsed = probe(target)
    assert result.success, result.message
    assert elapsed < scaled(0.3), elapsed  # before: 0.8 s extracting groups no one reads


@pytest.mark.parametrize("http, message", [
    ({"headers": {"X-Evil": "a\r\nInjected: yes"}}, "line break"),
    ({"headers": {"X-Evil": "a\nb"}}, "line break"),
    ({"headers": {"Bad Name": "x"}}, "invalid header name"),
    ({"headers": {"X-Nul": "a\x00b"}}, "control character"),
    ({"bearer_token": "tok\r\nInjected: yes"}, "bearer token contains a line break"),
    ({"basic_auth": {"username": "a:b", "password": "p"}}, "username"),
], ids=["crlf", "lf", "name", "nul", "bearer", "username"])
def test_header_values_that_would_break_the_request_are_refused_at_load(http, message):
    spec = {"name": "t", "url": "http://127.0.0.1:1/", "http": http}
    with pytest.raises(ConfigError) as raised:
        parse_config({"targets": [spec]}, "tocsin.yml")
    text = str(raised.value)
    assert message in text and "targets" in text, text
    assert "Injected" not in text  # the value (possibly a secret) is not echoed


def test_url_with_a_space_or_line_break_is_refused_at_load():
    for url in ("http://127.0.0.1:1/a b", "http://127.0.0.1:1/a\r\nX: y"):
        with pytest.raises(ConfigError, match="percent-encode"):
            parse_config({"targets": [{"name": "t", "url": url}]}, "tocsin.yml")
