"""Options blackbox_exporter users paste, each against a real loopback server: header
regexps, compression, an HTTP proxy, ip_protocol and the any/all address policy,
`tls_config`/`tls` spelled either way, TCP query_response with STARTTLS, 1xx responses."""

from __future__ import annotations

import asyncio

import parity_servers as ps
import pytest

from conftest import free_port
from tocsin import aio
from tocsin.config import parse_config
from tocsin.errors import ConfigError
from tocsin.probes import ProbeResult, resolver, run_probe
from tocsin.probes.http_cookies import CookieJar
from tocsin.probes.http_request import endpoint_of


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    chain = ps.Chain(str(tmp_path_factory.mktemp("options")))
    behaviours = ps.HTTPBehaviours(dead_port=free_port())
    http, https = ps.HTTPServer(behaviours), ps.HTTPServer(behaviours, chain.context)
    v6 = ps.HTTPServer(behaviours, host="::1")
    banner = ps.BannerServer(chain.context)
    proxy, dns_server = ps.Proxy(), ps.DNSServer()
    yield {"http": http, "https": https, "v6": v6, "banner": banner, "proxy": proxy, "dns": dns_server,
           "chain": chain}
    for server in (http, https, v6, banner, proxy, dns_server):
        server.close()


@pytest.fixture
def zone(servers, monkeypatch):
    """Names resolve through the test's DNS server (parity.test: rr, dual, ok)."""
    monkeypatch.setenv("TOCSIN_NAMESERVERS", f"127.0.0.1:{servers['dns'].port}")
    resolver._conf.value = None
    yield
    resolver._conf.value = None  # the next lookup builds a resolver from the real environment


def run(timeout: str = "2s", **fields) -> ProbeResult:
    target = parse_config({"targets": [{"name": "t", "timeout": timeout, "interval": "30s", **fields}]},
                          "test").targets[0]

    async def once():
        return await run_probe(target.probe, asyncio.get_running_loop().time() + target.timeout)

    return aio.run(once())


def test_header_regexps(servers):
    url = f"http://127.0.0.1:{servers['http'].port}/headers"
    # X-Env is sent twice (staging, production): `matches` fails if any value matches,
    # `not_matches` only if none does.
    assert not run(url=url, http={"fail_if_header_matches": [{"header": "x-env", "regexp": "^prod"}]}).success
    assert run(url=url, http={"fail_if_header_not_matches": [{"header": "X-Env", "regexp": "^prod"}]}).success
    failed = run(url=url, http={"fail_if_header_not_matches": [{"header": "X-Env", "regexp": "^dev"}]})
    assert (failed.success, failed.reason, failed.facts["failed_due_to_regex"]) == (False, "body", 1.0)
    missing = {"header": "X-Missing", "regexp": "."}
    assert not run(url=url, http={"fail_if_header_not_matches": [missing]}).success
    assert run(url=url, http={"fail_if_header_not_matches": [{**missing, "allow_missing": True}]}).success


def test_compression_decodes_and_bounds_the_decoded_body(servers):
    base = f"http://127.0.0.1:{servers['http'].port}"
    gz = run(url=f"{base}/gzip", http={"compression": "gzip"})
    assert gz.success and gz.facts["http_uncompressed_body_length"] == 13 * 20, gz.message
    for path in ("/deflate", "/raw-deflate"):
        result = run(url=base + path, http={"compression": "deflate"})
        assert result.success and result.facts["http_uncompressed_body_length"] == 260, (path, result.message)
    plain = run(url=f"{base}/plain", http={"compression": "gzip"})
    assert (plain.success, plain.reason) == (False, "bad_response")
    bomb = run(url=f"{base}/bomb", http={"compression": "gzip", "max_body_bytes": "1MiB"})
    assert (bomb.success, bomb.reason) == (False, "body_too_large")
    with pytest.raises(ConfigError, match="compression"):
        run(url=f"{base}/gzip", http={"compression": "zstd"})


def test_http_proxy_plain_and_connect(servers):
    proxy = f"http://127.0.0.1:{servers['proxy'].port}"
    plain = run(url=f"http://127.0.0.1:{servers['http'].port}/plain", http={"proxy_url": proxy})
    assert plain.success, plain.message
    assert servers["proxy"].request_lines[-1] == f"GET http://127.0.0.1:{servers['http'].port}/plain HTTP/1.1".encode()
    tls = run(url=f"https://127.0.0.1:{servers['https'].port}/plain",
              http={"proxy_url": proxy, "tls_config": {"ca_file": servers["chain"].ca_file}})
    assert tls.success and tls.facts["http_ssl"] == 1.0, tls.message
    assert servers["proxy"].request_lines[-1] == f"CONNECT 127.0.0.1:{servers['https'].port} HTTP/1.1".encode()
    dead = run(url=f"http://127.0.0.1:{servers['http'].port}/plain", http={"proxy_url": f"http://127.0.0.1:{free_port()}"})
    assert (dead.success, dead.reason) == (False, "connect")


@pytest.mark.usefixtures("zone")
def test_every_address_with_any_and_all(servers):
    # (dnspython shuffles the records of one set on the wire: each address is a set of its own)
    # rr.parity.test is 127.0.0.2 (nothing listens) then 127.0.0.1 (the server)
    url = f"http://rr.parity.test:{servers['http'].port}/plain"
    first = run(url=url)
    assert (first.success, first.reason) == (False, "connect")
    assert run(url=url, http={"addresses": "any"}).success
    every = run(url=url, http={"addresses": "all"})
    assert (every.success, every.reason) == (False, "connect") and "127.0.0.2" in every.message
    tcp_any = run(tcp={"address": f"rr.parity.test:{servers['http'].port}", "addresses": "any"})
    assert tcp_any.success, tcp_any.message


@pytest.mark.usefixtures("zone")
def test_ip_protocol_and_fallback(servers):
    # dual.parity.test has 127.0.0.1 and ::1; the v6 server listens on ::1 only
    url = f"http://dual.parity.test:{servers['v6'].port}/plain"
    assert run(url=url, http={"ip_protocol": "ip6"}).facts["ip_protocol"] == 6
    v4_only = run(url=f"http://v4.parity.test:{servers['http'].port}/plain", http={"ip_protocol": "ip6"})
    assert v4_only.success and v4_only.facts["ip_protocol"] == 4, v4_only.message  # fell back
    strict = run(url=f"http://v4.parity.test:{servers['http'].port}/plain",
                 http={"ip_protocol": "ip6", "ip_protocol_fallback": False})
    assert (strict.success, strict.reason) == (False, "dns")
    # the DNS probe resolves its server's name by the same rule (the server listens on IPv4 only)
    server = f"dual.parity.test:{servers['dns'].port}"
    assert run(dns={"query": "ok.parity.test", "server": server}).facts["dns_query_succeeded"] == 1.0
    assert run("500ms", dns={"query": "ok.parity.test", "server": server, "ip_protocol": "ip6"}).facts["ip_protocol"] == 6


def test_tls_options_under_either_name(servers):
    ca = {"ca_file": servers["chain"].ca_file}
    https = f"https://127.0.0.1:{servers['https'].port}/plain"
    assert run(url=https, http={"tls": ca}).success
    assert run(url=https, http={"tls_config": ca}).success
    with pytest.raises(ConfigError, match="not both"):
        run(url=https, http={"tls": ca, "tls_config": ca})
    address = f"127.0.0.1:{servers['banner'].port}"
    steps = [{"expect": "^SSH"}, {"send": "STARTTLS"}, {"expect": "^220"}, {"starttls": True}, {"send": "PING"},
             {"expect": "^PONG"}]
    assert run(tcp={"address": address, "query_response": steps, "tls_config": ca}).success
    # the TLS step verifies: without the CA it fails at the upgrade
    untrusted = run(tcp={"address": address, "query_response": steps})
    assert (untrusted.success, untrusted.reason) == (False, "tls")


def test_query_response_expect_fails_with_regex_fact(servers):
    address = f"127.0.0.1:{servers['banner'].port}"
    result = run(timeout="1s", tcp={"address": address, "query_response": [{"expect": "^SSH"}, {"send": "QUIT"},
                                                                             {"expect": "^NEVER"}]})
    assert (result.success, result.reason, result.facts["failed_due_to_regex"]) == (False, "expect", 1.0)
    with pytest.raises(ConfigError, match="not both"):
        run(tcp={"address": address, "expect": "x", "query_response": [{"send": "PING"}]})


def test_endless_informational_responses_are_a_bad_response(servers):
    result = run(url=f"http://127.0.0.1:{servers['http'].port}/hints-forever")
    assert (result.success, result.reason) == (False, "bad_response")


def test_cookie_jar_keeps_cookies_to_their_site():
    jar = CookieJar()
    login = endpoint_of("http://app.example:8080/login")
    jar.store(login, ["sid=1; Path=/", "other=2; Domain=evil.example", "gone=3; Max-Age=0",
                      "scoped=4; Path=/admin", "tls=5; Secure"])
    assert jar.header(endpoint_of("http://app.example:8080/home")) == "sid=1"
    assert jar.header(endpoint_of("http://app.example:8080/admin/x")) == "scoped=4; sid=1"
    assert jar.header(endpoint_of("https://app.example/")) == "sid=1; tls=5"
    assert jar.header(endpoint_of("http://evil.example/")) == ""


@pytest.mark.usefixtures("zone")
def test_the_proxy_resolves_the_target(servers):
    # nowhere.parity.test does not resolve here; the proxy is asked for it and answers (it
    # cannot resolve it either, so the tunnel fails: a connect failure, not a dns one)
    result = run(url="http://nowhere.parity.test/plain", http={"proxy_url": f"http://127.0.0.1:{servers['proxy'].port}"})
    assert result.reason != "dns", result.message
    assert servers["proxy"].request_lines[-1] == b"GET http://nowhere.parity.test/plain HTTP/1.1"
