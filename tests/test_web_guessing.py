"""Password guessing on the listener is slowed per client address, never locking out the user.

Each test talks to a real `WebServer` from several loopback source addresses (127.0.0.x),
so "another address" is a real other peer, not a header.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import pytest
from prometheus_client import CollectorRegistry

from conftest import scaled
from listener_harness import Listener, read_all, request
from tocsin.web.guessing import BURST, GuessLimiter, client_key

PASSWORD = "s3cret"


@pytest.fixture(scope="module")
def bcrypt_hash() -> str:
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=6)).decode()


@pytest.fixture
def web(bcrypt_hash):
    from tocsin.config import WebConfig

    registry = CollectorRegistry()
    listener = Listener(WebConfig(basic_auth_users={"prom": bcrypt_hash}), registry=registry)
    listener.registry = registry  # type: ignore[attr-defined]
    yield listener
    listener.stop()


def _get(web: Listener, source: str, password: str | None, path: str = "/metrics") -> tuple[int, dict[str, str]]:
    """One GET from `source` (a 127.0.0.x address); the status and the headers."""
    headers = {"Connection": "close"}
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"prom:{password}".encode()).decode()
    with socket.create_connection(("127.0.0.1", web.port), timeout=scaled(5), source_address=(source, 0)) as sock:
        sock.sendall(request("GET", path, headers, host=f"127.0.0.1:{web.port}"))
        raw = read_all(sock, scaled(5))
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    return int(head[0].split()[1]), {k.lower(): v for k, v in fields.items()}


def _refused(web: Listener) -> float:
    return web.registry.get_sample_value("tocsin_web_auth_refused_total") or 0.0  # type: ignore[attr-defined]


def test_an_address_guessing_passwords_gets_429_with_retry_after_and_others_are_untouched(web):
    for attempt in range(BURST):
        assert _get(web, "127.0.0.2", f"guess-{attempt}")[0] == 401
    status, headers = _get(web, "127.0.0.2", "guess-x")
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 60, (status, headers)
    # Not even the right password is checked from there: guessing is blocked, whatever the guess.
    assert _get(web, "127.0.0.2", PASSWORD)[0] == 429
    assert _refused(web) == 2
    # The legitimate user elsewhere: let in, and a typo there is a plain 401.
    assert _get(web, "127.0.0.3", PASSWORD)[0] == 200
    assert _get(web, "127.0.0.3", "typo")[0] == 401
    # Credentials verified once pass from the refused address too (a NAT shared with the
    # guesser), known at no bcrypt cost; guesses from there are still refused.
    assert _get(web, "127.0.0.2", PASSWORD)[0] == 200
    assert _get(web, "127.0.0.2", "guess-y")[0] == 429
    assert _refused(web) == 3


def test_requests_without_credentials_are_not_guesses(web):
    for _ in range(BURST * 2):
        status, headers = _get(web, "127.0.0.4", None)
        assert status == 401 and headers["www-authenticate"].startswith("Basic ")
    assert _get(web, "127.0.0.4", PASSWORD)[0] == 200
    assert _refused(web) == 0


def test_the_bucket_refills_as_retry_after_says(web):
    web.server.router.guesses.refill_s = 1.0
    for attempt in range(BURST):
        assert _get(web, "127.0.0.6", f"guess-{attempt}")[0] == 401
    status, headers = _get(web, "127.0.0.6", "guess")
    assert status == 429
    time.sleep(int(headers["retry-after"]) + 0.2)
    assert _get(web, "127.0.0.6", "guess")[0] == 401  # one more guess, then refused again
    assert _get(web, "127.0.0.6", "guess")[0] == 429


def test_buckets_are_by_address_ipv6_by_its_64_and_bounded():
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1:2") == "2001:db8::/64"
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1"
    now = [0.0]
    limiter = GuessLimiter(clock=lambda: now[0])
    for i in range(20_000):
        limiter.failed(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    assert len(limiter._buckets) <= 10_000
    now[0] += 3600  # every bucket refilled: failing ones forget them
    for i in range(2_000):
        limiter.failed(f"11.0.{i >> 8}.{i & 255}")
    assert len(limiter._buckets) <= 2_000 + 8


def test_bcrypt_checks_at_once_are_capped_over_all_addresses_and_verified_credentials_still_pass(
        bcrypt_hash, monkeypatch):
    from tocsin.config import WebConfig
    from tocsin.web import auth

    monkeypatch.setattr(auth, "MAX_BCRYPT", 1, raising=False)  # below the listener's 4 workers, whatever the machine
    running, peak, lock = [0], [0], threading.Lock()

    def slow_check(stored: str, password: bytes) -> bool:  # the real check, made long enough to overlap
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.2)
            return real_check(stored, password)
        finally:
            with lock:
                running[0] -= 1

    real_check = auth.check_password
    monkeypatch.setattr(auth, "check_password", slow_check)
    registry = CollectorRegistry()
    web = Listener(WebConfig(basic_auth_users={"prom": bcrypt_hash}), registry=registry)
    try:
        assert _get(web, "127.0.0.9", PASSWORD)[0] == 200  # a scraper, verified before the flood
        # 40 guessers, each from its own address with its own password, all at once; the scraper meanwhile.
        with ThreadPoolExecutor(48) as pool:
            guesses = [pool.submit(_get, web, f"127.0.1.{i}", f"guess-{i}") for i in range(1, 41)]
            scrapes = [pool.submit(_get, web, "127.0.0.9", PASSWORD) for _ in range(8)]
        answers = [g.result() for g in guesses]
        assert peak[0] == 1
        busy = [headers for status, headers in answers if status == 503]
        assert busy and all(headers["retry-after"] == "1" for headers in busy), answers
        assert {status for status, _ in answers} == {401, 503}
        assert registry.get_sample_value("tocsin_web_auth_busy_total") == len(busy)
        assert [s.result()[0] for s in scrapes] == [200] * 8
        # A new client after the flood is checked as ever.
        assert _get(web, "127.0.0.10", PASSWORD)[0] == 200
    finally:
        web.stop()
