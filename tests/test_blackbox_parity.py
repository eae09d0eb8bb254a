"""Differential test: the real blackbox_exporter and tocsin probe the same loopback servers,
and every metric both export must agree — name, label set and value (durations: presence
and labels only). The few places where blackbox is plainly wrong are listed in DELIBERATE,
each with its reason, and the README says the same ("Differs from blackbox_exporter").
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import parity_servers as ps
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port, require_tool, scaled, wait_for
from tocsin import aio
from tocsin.config import parse_config
from tocsin.errors import ConfigError
from tocsin.metrics.probe_series import ProbeMetrics
from tocsin.probes import run_probe

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
TIMEOUT = 1.5  # seconds, for both probers: the "hang" case waits this long on each side

# Values that depend on time taken, compared by presence and label set only.
TIMING = frozenset({"probe_duration_seconds", "probe_dns_lookup_time_seconds", "probe_http_duration_seconds",
                    "probe_dns_duration_seconds"})

Sample = tuple[str, frozenset[tuple[str, str]]]


@dataclass
class Case:
    name: str
    module: dict  # blackbox module
    bb_target: str
    tocsin: dict  # target keys
    # metric name -> why tocsin keeps a different value (or leaves the series out) here
    deliberate: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    http: ps.HTTPServer
    http6: ps.HTTPServer
    https: ps.HTTPServer
    banner: ps.BannerServer
    banner_tls: ps.BannerServer
    dns: ps.DNSServer
    chain: ps.Chain
    silent_udp: socket.socket  # bound, never read: a DNS server that does not answer


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("parity")
    chain = ps.Chain(str(tmp))
    behaviours = ps.HTTPBehaviours(dead_port=free_port())
    servers = World(ps.HTTPServer(behaviours), ps.HTTPServer(behaviours, host="::1"),
                    ps.HTTPServer(behaviours, chain.context),
                    ps.BannerServer(), ps.BannerServer(chain.context), ps.DNSServer(), chain,
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    servers.silent_udp.bind(("127.0.0.1", 0))
    yield servers
    servers.silent_udp.close()
    for server in (servers.http, servers.http6, servers.https, servers.banner, servers.banner_tls, servers.dns):
        server.close()


def _cases(w: World) -> list[Case]:
    http, https = f"http://127.0.0.1:{w.http.port}", f"https://127.0.0.1:{w.https.port}"
    trusted = {"tls_config": {"ca_file": w.chain.ca_file}}
    dns_server = f"127.0.0.1:{w.dns.port}"
    redirect_not_followed = ("blackbox counts a redirect it was told not to follow; tocsin counts "
                             "redirects followed")
    cases = [
        Case("plain", {"prober": "http"}, f"{http}/plain", {"url": f"{http}/plain"}),
        Case("ipv6", {"prober": "http"}, f"http://[::1]:{w.http6.port}/plain",
             {"url": f"http://[::1]:{w.http6.port}/plain"}),
        Case("head", {"prober": "http", "http": {"method": "HEAD"}}, f"{http}/plain",
             {"url": f"{http}/plain", "http": {"method": "HEAD"}}),
        Case("chunked", {"prober": "http"}, f"{http}/chunked", {"url": f"{http}/chunked"}),
        Case("redirect", {"prober": "http"}, f"{http}/redirect", {"url": f"{http}/redirect"}),
        Case("redirect-not-followed", {"prober": "http", "http": {"follow_redirects": False,
                                                                  "valid_status_codes": [302]}},
             f"{http}/redirect", {"url": f"{http}/redirect",
                                  "http": {"follow_redirects": False, "valid_status_codes": [302]}},
             {"probe_http_redirects": redirect_not_followed}),
        Case("early-hints", {"prober": "http"}, f"{http}/hints", {"url": f"{http}/hints"}),
        Case("cookies", {"prober": "http"}, f"{http}/login", {"url": f"{http}/login"}),
        Case("dead-redirect", {"prober": "http"}, f"{http}/dead", {"url": f"{http}/dead"}),
        Case("headers-then-hang", {"prober": "http"}, f"{http}/hang", {"url": f"{http}/hang"}),
        Case("status-404", {"prober": "http"}, f"{http}/missing", {"url": f"{http}/missing"}),
        Case("body-regexp", {"prober": "http", "http": {"fail_if_body_matches_regexp": ["hello"]}},
             f"{http}/plain", {"url": f"{http}/plain", "http": {"fail_if_body_matches_regexp": ["hello"]}}),
        Case("header-matches", {"prober": "http", "http": {"fail_if_header_matches": [
            {"header": "X-Env", "regexp": "prod.*"}]}},
             f"{http}/plain", {"url": f"{http}/plain", "http": {"fail_if_header_matches": [
                 {"header": "X-Env", "regexp": "prod.*"}]}}),
        Case("header-not-matches", {"prober": "http", "http": {"fail_if_header_not_matches": [
            {"header": "X-Env", "regexp": "prod.*"}]}},
             f"{http}/plain", {"url": f"{http}/plain", "http": {"fail_if_header_not_matches": [
                 {"header": "X-Env", "regexp": "prod.*"}]}}),
        # blackbox decodes but does not ask: its users set the header (tocsin asks when they do not)
        Case("gzip", {"prober": "http", "http": {"compression": "gzip", "headers": {"Accept-Encoding": "gzip"}}},
             f"{http}/gzip", {"url": f"{http}/gzip", "http": {"compression": "gzip"}}),
        Case("https-chain", {"prober": "http", "http": {**trusted}}, f"{https}/plain",
             {"url": f"{https}/plain", "http": {**trusted}}),
        Case("https-insecure", {"prober": "http", "http": {"tls_config": {"insecure_skip_verify": True}}},
             f"{https}/plain", {"url": f"{https}/plain", "http": {"tls_config": {"insecure_skip_verify": True}}},
             {"probe_ssl_last_chain_expiry_timestamp_seconds":
              "no chain is verified: blackbox reports year 1 (-62135596800), tocsin leaves the series out",
              "probe_ssl_last_chain_info": "no chain is verified, so there is no last chain to describe"}),
        Case("https-untrusted", {"prober": "http"}, f"{https}/plain", {"url": f"{https}/plain"}),
        Case("tcp-tls", {"prober": "tcp", "tcp": {"tls": True, **trusted}}, f"127.0.0.1:{w.https.port}",
             {"tcp": {"address": f"127.0.0.1:{w.https.port}", "tls": True, **trusted}}),
        Case("tcp-connect", {"prober": "tcp"}, f"127.0.0.1:{w.banner.port}",
             {"tcp": {"address": f"127.0.0.1:{w.banner.port}"}}),
        Case("tcp-banner", {"prober": "tcp", "tcp": {"query_response": [
            {"expect": "^SSH-2.0-"}, {"send": "PING"}, {"expect": "^PONG"}, {"send": "QUIT"}]}},
             f"127.0.0.1:{w.banner.port}",
             {"tcp": {"address": f"127.0.0.1:{w.banner.port}", "query_response": [
                 {"expect": "^SSH-2.0-"}, {"send": "PING"}, {"expect": "^PONG"}, {"send": "QUIT"}]}}),
        Case("tcp-expand", {"prober": "tcp", "tcp": {"query_response": [
            {"expect": "^SSH-2.0-(\\w+)", "send": "ECHO ${1}"}, {"expect": "^GOT parity$"}]}},
             f"127.0.0.1:{w.banner.port}",
             {"tcp": {"address": f"127.0.0.1:{w.banner.port}", "query_response": [
                 {"expect": "^SSH-2.0-(\\w+)", "send": "ECHO ${1}"}, {"expect": "^GOT parity$"}]}}),
        Case("tcp-silent-after-banner", {"prober": "tcp", "tcp": {"query_response": [{"expect": "^NEVER"}]}},
             f"127.0.0.1:{w.banner.port}",
             {"tcp": {"address": f"127.0.0.1:{w.banner.port}", "query_response": [{"expect": "^NEVER"}]}}),
        Case("tcp-banner-mismatch", {"prober": "tcp", "tcp": {"query_response": [  # then the server closes
            {"send": "QUIT"}, {"expect": "^SMTP"}]}},
             f"127.0.0.1:{w.banner.port}",
             {"tcp": {"address": f"127.0.0.1:{w.banner.port}", "query_response": [
                 {"send": "QUIT"}, {"expect": "^SMTP"}]}}),
        Case("tcp-starttls", {"prober": "tcp", "tcp": {"query_response": [
            {"expect": "^SSH"}, {"send": "STARTTLS"}, {"expect": "^220"}, {"starttls": True},
            {"send": "PING"}, {"expect": "^PONG"}], **trusted}},
             f"127.0.0.1:{w.banner_tls.port}",
             {"tcp": {"address": f"127.0.0.1:{w.banner_tls.port}", "query_response": [
                 {"expect": "^SSH"}, {"send": "STARTTLS"}, {"expect": "^220"}, {"starttls": True},
                 {"send": "PING"}, {"expect": "^PONG"}], **trusted}}),
        Case("dns-a", {"prober": "dns", "dns": {"query_name": "ok.parity.test", "transport_protocol": "udp"}},
             dns_server, {"dns": {"query": "ok.parity.test", "server": dns_server}}),
        Case("dns-server-by-name", {"prober": "dns", "dns": {"query_name": "ok.parity.test"}},
             f"localhost:{w.dns.port}", {"dns": {"query": "ok.parity.test", "server": f"localhost:{w.dns.port}"}}),
        Case("dns-silent", {"prober": "dns", "dns": {"query_name": "ok.parity.test"}},
             f"127.0.0.1:{w.silent_udp.getsockname()[1]}",
             {"dns": {"query": "ok.parity.test", "server": f"127.0.0.1:{w.silent_udp.getsockname()[1]}"}}),
        Case("dns-tcp", {"prober": "dns", "dns": {"query_name": "ok.parity.test", "transport_protocol": "tcp"}},
             dns_server, {"dns": {"query": "ok.parity.test", "server": dns_server, "transport": "tcp"}}),
        Case("dns-soa", {"prober": "dns", "dns": {"query_name": "parity.test", "query_type": "SOA"}},
             dns_server, {"dns": {"query": "parity.test", "type": "SOA", "server": dns_server}}),
        Case("dns-nxdomain", {"prober": "dns", "dns": {"query_name": "nope.parity.test"}},
             dns_server, {"dns": {"query": "nope.parity.test", "server": dns_server}}),
        # blackbox's default is not to fail on an empty answer; tocsin's is to (fail_if_no_answer)
        Case("dns-no-data", {"prober": "dns", "dns": {"query_name": "ok.parity.test", "query_type": "MX"}},
             dns_server, {"dns": {"query": "ok.parity.test", "type": "MX", "server": dns_server,
                                  "fail_if_no_answer": False}}),
    ]
    for case in cases:
        if case.module["prober"] == "dns":
            case.module["dns"].setdefault("preferred_ip_protocol", "ip4")
            case.module["dns"].setdefault("query_type", "A")  # blackbox's default is ANY
            case.module["dns"]["valid_rcodes"] = ["NOERROR"]
    return cases


class Blackbox:
    def __init__(self, tmp_path: Path, modules: dict[str, dict]) -> None:
        config = tmp_path / "blackbox.yml"
        config.write_text(yaml.safe_dump({"modules": {
            name: {"timeout": f"{TIMEOUT}s", **module} for name, module in modules.items()}}))
        self.port = free_port()
        self.process = subprocess.Popen(
            [BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(self._ready, timeout=scaled(10), what="blackbox_exporter listening")

    def _ready(self) -> bool:
        assert self.process.poll() is None, self.process.stderr.read().decode() if self.process.stderr else ""
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/-/healthy", timeout=1).ok
        except requests.RequestException:
            return False

    def probe(self, module: str, target: str) -> str:
        query = urllib.parse.urlencode({"module": module, "target": target})
        return requests.get(f"http://127.0.0.1:{self.port}/probe?{query}", timeout=TIMEOUT + 10).text

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _tocsin_text(case: Case) -> str:
    spec = {"name": case.name, "interval": "30s", "timeout": f"{int(TIMEOUT * 1000)}ms", **case.tocsin}
    target = parse_config({"targets": [spec]}, "test").targets[0]

    async def once():
        return await run_probe(target.probe, asyncio.get_running_loop().time() + target.timeout)

    metrics = ProbeMetrics()
    metrics.ensure(target)
    metrics.record(aio.run(once()))
    return metrics.render()


def samples(text: str, drop_labels: frozenset[str] = frozenset()) -> dict[Sample, float]:
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("probe_"):
                continue
            labels = frozenset((k, v) for k, v in sample.labels.items() if k not in drop_labels)
            out[(sample.name, labels)] = sample.value
    return out


def compare(case: Case, theirs: dict[Sample, float], ours: dict[Sample, float]) -> tuple[list[str], int, int]:
    """The differences that are not deliberate, and how many metrics (names) and series
    (name and labels) were compared."""
    problems: list[str] = []
    their_names = {name for name, _ in theirs}
    our_names = {name for name, _ in ours}
    compared = series = 0
    for name in sorted(their_names | our_names):
        mine = {labels: value for (n, labels), value in ours.items() if n == name}
        other = {labels: value for (n, labels), value in theirs.items() if n == name}
        if name in case.deliberate:
            if mine == other:  # the list stays honest: a difference that went away is removed from it
                problems.append(f"{name}: listed as a deliberate difference, but both say {sorted(mine.items())}")
            else:
                print(f"  deliberate: {case.name}: {name}: blackbox {sorted(other.values())}, "
                      f"tocsin {sorted(mine.values())} ({case.deliberate[name]})")
            continue
        if name not in our_names or name not in their_names:
            if name in their_names or name in _BLACKBOX_FAMILIES:
                problems.append(f"{name}: blackbox {sorted(other.items())}, tocsin {sorted(mine.items())}")
            continue
        compared += 1
        series += len(other)
        if set(mine) != set(other):
            problems.append(f"{name}: label sets differ: blackbox {sorted(map(sorted, other))}, "
                            f"tocsin {sorted(map(sorted, mine))}")
            continue
        if name in TIMING:
            continue
        for labels, value in other.items():
            if mine[labels] != value:
                problems.append(f"{name}{dict(labels)}: blackbox {value!r}, tocsin {mine[labels]!r}")
    return problems, compared, series


_FAILING = frozenset({"dead-redirect", "headers-then-hang", "status-404", "body-regexp", "header-matches",
                      "https-untrusted", "tcp-banner-mismatch", "dns-nxdomain", "dns-silent",
                      "tcp-silent-after-banner"})

# Families blackbox 0.23 can export for the kinds both have: a series tocsin alone exports
# under one of these names is a difference too (blackbox would not have it for that server).
_BLACKBOX_FAMILIES = frozenset({
    "probe_success", "probe_duration_seconds", "probe_dns_lookup_time_seconds", "probe_ip_protocol",
    "probe_ip_addr_hash", "probe_http_duration_seconds", "probe_http_status_code", "probe_http_content_length",
    "probe_http_uncompressed_body_length", "probe_http_redirects", "probe_http_ssl", "probe_http_version",
    "probe_http_last_modified_timestamp_seconds", "probe_failed_due_to_regex", "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_expiry_timestamp_seconds", "probe_ssl_last_chain_info", "probe_tls_version_info",
    "probe_dns_duration_seconds", "probe_dns_answer_rrs", "probe_dns_authority_rrs", "probe_dns_additional_rrs",
    "probe_dns_query_succeeded", "probe_dns_serial",
})


@pytest.mark.timeout(60)
def test_every_shared_metric_equals_blackbox_exporter(world, tmp_path):
    if not Path(BLACKBOX).exists():
        require_tool("prometheus-blackbox-exporter")
    cases = _cases(world)
    blackbox = Blackbox(tmp_path, {case.name: case.module for case in cases})
    started = time.monotonic()
    problems: list[str] = []
    total = total_series = 0
    try:
        for case in cases:
            theirs = samples(blackbox.probe(case.name, case.bb_target))
            # the servers behave as meant: a comparison where both fail for a broken server proves little
            wanted = 0.0 if case.name in _FAILING else 1.0
            if theirs.get(("probe_success", frozenset())) != wanted:
                problems.append(f"{case.name}: blackbox's probe_success is not {wanted}: the test server is off")
            if case.name == "https-chain":  # three expiries, told apart: root < intermediate < leaf
                chain = world.chain
                assert theirs[("probe_ssl_earliest_cert_expiry", frozenset())] == chain.intermediate_not_after.timestamp()
                assert theirs[("probe_ssl_last_chain_expiry_timestamp_seconds", frozenset())] == \
                    chain.root_not_after.timestamp()
            try:
                ours = samples(_tocsin_text(case), drop_labels=frozenset({"target"}))
            except ConfigError as exc:
                problems.append(f"{case.name}: tocsin refuses the target: {exc.errors}")
                continue
            found, compared, series = compare(case, theirs, ours)
            total += compared
            total_series += series
            problems += [f"{case.name}: {problem}" for problem in found]
    finally:
        blackbox.close()
    print(f"{total} metrics ({total_series} series) compared over {len(cases)} servers "
          f"in {time.monotonic() - started:.1f} s")
    assert not problems, "\n".join(problems)
    assert total >= 10 * len(cases) // 2  # most cases share many metrics; a broken parse would share none
