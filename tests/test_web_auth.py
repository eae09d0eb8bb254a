"""Who may do what on the listener: cross-site writes refused, writes behind auth when auth is
configured, bcrypt hashes that work, a rejection that takes as long for an unknown user as
for a known one, and `check config` refusing what could never let anyone in."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import bcrypt
import pytest
import requests
import trustme

from conftest import scaled
from listener_harness import Listener, exchange, request, statuses
from tocsin.config import parse_config
from tocsin.errors import ConfigError

PASSWORD = b"s3cret"


@pytest.fixture(scope="module")
def bcrypt_hash() -> str:
    return bcrypt.hashpw(PASSWORD, bcrypt.gensalt(rounds=6)).decode()


def _reload(web: Listener, headers: dict[str, str], body: bytes = b"") -> int:
    headers = {**headers, "Content-Length": str(len(body)), "Connection": "close"}
    codes = statuses(exchange(web.port, request("POST", "/-/reload", headers, body, host=f"127.0.0.1:{web.port}")))
    assert len(codes) == 1
    return codes[0]


# ------------------------------------------------------------------------------ cross-site writes


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/x-www-form-urlencoded"},                 # <form method=post>, no Origin
    {"Content-Type": "multipart/form-data; boundary=x"},
    {"Content-Type": "text/plain"},                                         # <form enctype=text/plain>
    {"Origin": "http://attacker.example", "Content-Type": "application/x-www-form-urlencoded"},
    {"Origin": "http://attacker.example"},                                  # fetch(…, {mode: "no-cors"})
    {"Origin": "null"},                                                     # from a sandboxed frame
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
])
def test_a_cross_site_write_is_refused(listen, headers):
    web = listen()
    assert _reload(web, headers, b"a=1" if "Content-Type" in headers else b"") in (403, 415)
    assert web.control.reloads == 0


def test_a_cross_site_write_is_refused_even_with_credentials(listen, bcrypt_hash):
    web = listen(basic_auth_users={"prom": bcrypt_hash})
    auth = requests.auth._basic_auth_str("prom", PASSWORD.decode())  # what a browser remembers and adds
    for headers in ({"Origin": "http://attacker.example", "Authorization": auth},
                    {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}):
        assert _reload(web, headers) in (403, 415)
    assert web.control.reloads == 0


def test_writes_from_tools_and_the_same_origin_are_taken(listen):
    web = listen()
    assert requests.post(web.url + "/-/reload", timeout=scaled(5)).status_code == 200  # curl -X POST
    assert requests.put(web.url + "/-/reload", json={}, timeout=scaled(5)).status_code == 200
    assert _reload(web, {"Origin": f"http://127.0.0.1:{web.port}"}) == 200
    assert _reload(web, {"Sec-Fetch-Site": "same-origin", "Origin": f"http://127.0.0.1:{web.port}"}) == 200
    assert _reload(web, {"Sec-Fetch-Site": "none"}) == 200  # typed in the address bar
    assert web.control.reloads == 5


def test_reads_are_not_refused_for_their_origin(listen):
    web = listen()
    response = requests.get(web.url + "/api/v1/targets", headers={"Origin": "http://attacker.example",
                                                                  "Sec-Fetch-Site": "cross-site"}, timeout=scaled(5))
    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response.headers


def test_writes_need_auth_when_auth_is_configured(listen, bcrypt_hash):
    web = listen(basic_auth_users={"prom": bcrypt_hash})
    assert requests.post(web.url + "/-/reload", timeout=scaled(5)).status_code == 401
    assert requests.post(web.url + "/-/reload", auth=("prom", "wrong"), timeout=scaled(5)).status_code == 401
    assert web.control.reloads == 0
    assert requests.post(web.url + "/-/reload", auth=("prom", "s3cret"), timeout=scaled(5)).status_code == 200
    assert web.control.reloads == 1
    assert requests.get(web.url + "/-/reload", auth=("prom", "s3cret"), timeout=scaled(5)).status_code == 405


# ------------------------------------------------------------------------------ bcrypt


@pytest.mark.parametrize("prefix", ["$2b$", "$2a$", "$2y$"])  # htpasswd -B writes $2y$
def test_bcrypt_hashes_let_the_right_password_in(listen, bcrypt_hash, prefix):
    web = listen(basic_auth_users={"prom": prefix + bcrypt_hash[4:]})
    assert requests.get(web.url + "/metrics", auth=("prom", "s3cret"), timeout=scaled(5)).status_code == 200
    assert requests.get(web.url + "/metrics", auth=("prom", "S3cret"), timeout=scaled(5)).status_code == 401
    assert requests.get(web.url + "/metrics", timeout=scaled(5)).headers["WWW-Authenticate"].startswith("Basic ")


def test_an_unknown_user_takes_as_long_to_refuse_as_a_known_one(listen):
    """With bcrypt at cost 10 a check takes tens of ms: a name that is not configured must cost the same."""
    web = listen(basic_auth_users={"prom": bcrypt.hashpw(PASSWORD, bcrypt.gensalt(rounds=10)).decode()})
    web.server.router.guesses.burst = 100  # twelve guesses: not refused here (test_web_guessing.py)
    session = requests.Session()

    def refuse(user: str, attempt: int) -> float:
        start = time.perf_counter()
        status = session.get(web.url + "/-/healthy", auth=(user, f"guess-{attempt}"), timeout=scaled(10)).status_code
        assert status == 401
        return time.perf_counter() - start

    known, unknown = [], []
    for attempt in range(6):  # interleaved, so load on the machine falls on both alike
        known.append(refuse("prom", attempt))
        unknown.append(refuse("nobody", attempt))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.6 < ratio < 1.7, (known, unknown)


def test_a_scraper_pays_for_bcrypt_once():
    from tocsin.web.auth import Authenticator

    auth = Authenticator({"prom": bcrypt.hashpw(PASSWORD, bcrypt.gensalt(rounds=10)).decode()})
    header = requests.auth._basic_auth_str("prom", PASSWORD.decode())
    start = time.perf_counter()
    assert auth.check(header)
    first = time.perf_counter() - start
    start = time.perf_counter()
    assert auth.check(header) and not auth.check(requests.auth._basic_auth_str("prom", "other"))
    again = time.perf_counter() - start
    assert again < first * 3  # one bcrypt for the new password, none for the cached one


# ------------------------------------------------------------------------------ check config


def _web(users: dict[str, str] | None = None, **web) -> dict:
    return {"global": {"web": {"basic_auth_users": users or {}, **web}}}


@pytest.mark.parametrize("users, reason", [
    ({"prom": "s3cret"}, "not a password hash"),                   # a password where its hash belongs
    ({"prom": "$2b$10$short"}, "not a password hash"),
    ({"prom": "sha256:abc"}, "not a password hash"),
    ({"a:b": "sha256:" + "0" * 64}, "has no ':'"),
])
def test_check_config_refuses_what_can_never_let_anyone_in(users, reason):
    with pytest.raises(ConfigError) as caught:
        parse_config(_web(users), "tocsin.yml")
    message = str(caught.value)
    assert "global.web.basic_auth_users" in message and reason in message
    assert "s3cret" not in message  # the value is never echoed


def test_check_config_refuses_a_certificate_and_key_that_do_not_pair(tmp_path):
    ca = trustme.CA()
    one, other = ca.issue_cert("127.0.0.1"), ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    one.cert_chain_pems[0].write_to_path(str(cert_file))
    other.private_key_pem.write_to_path(str(key_file))
    with pytest.raises(ConfigError, match="do not load as a pair"):
        parse_config(_web(tls_cert_file=str(cert_file), tls_key_file=str(key_file)), "tocsin.yml")


def test_check_config_takes_bcrypt_and_sha256_hashes_and_allowed_hosts(tmp_path, bcrypt_hash):
    config = tmp_path / "tocsin.yml"
    config.write_text("global:\n  web:\n    allowed_hosts: [metrics.example.com, '*.internal.example']\n"
                      f"    basic_auth_users: {{prom: '{bcrypt_hash}', other: 'sha256:{'ab' * 32}'}}\n")
    done = subprocess.run([sys.executable, "-m", "tocsin.cli", "check", "config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    config.write_text("global:\n  web:\n    basic_auth_users: {prom: hunter2}\n")
    done = subprocess.run([sys.executable, "-m", "tocsin.cli", "check", "config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "not a password hash" in done.stdout + done.stderr
    assert "hunter2" not in done.stdout + done.stderr
