"""The ICMP probe against the loopback addresses, over a real unprivileged ping socket.

Whether the kernel lets this process open a ping socket is a host setting
(`net.ipv4.ping_group_range`). As root the tests make that setting theirs: each probe runs
in a fresh network namespace (`unshare -n`) whose range the test sets, so the same test
checks both the echo (range open) and the refusal (range closed, systemd's opposite)
without touching the host's. Without root they use the host's range as it is.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import IN_CI, REPO

# Probe once, print the result and the target's /metrics lines as JSON.
_SCRIPT = """
import asyncio, json, sys
from tocsin import aio
from tocsin.config.schema import parse_config
from tocsin.metrics.probe_series import ProbeMetrics
from tocsin.probes import run_probe
target = parse_config({"targets": [json.loads(sys.argv[1])]}, "test").targets[0]
async def once():
    return await run_probe(target.probe, asyncio.get_running_loop().time() + target.timeout)
result = aio.run(once())
metrics = ProbeMetrics(); metrics.ensure(target); metrics.record(result)
print(json.dumps({"success": result.success, "reason": result.reason, "message": result.message,
                  "facts": result.facts, "phases": result.phases, "metrics": metrics.render()}))
"""

OPEN, CLOSED = "0 2147483647", "1 0"


def _host_allows_ping(family: int = socket.AF_INET) -> bool:
    try:
        socket.socket(family, socket.SOCK_DGRAM,
                      socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6).close()
        return True
    except OSError:
        return False


@functools.cache
def _can_use_namespaces() -> bool:
    """Root, with unshare and ip, in a place that lets it make a network namespace (some containers do not)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True,
                          timeout=30).returncode == 0


def _probe(icmp: dict, ping_range: str = OPEN, timeout: str = "2s") -> dict:
    target = json.dumps({"name": "ping", "timeout": timeout, "interval": "10s", "icmp": icmp})
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-c", _SCRIPT, target]
    if _can_use_namespaces():
        setup = f"ip link set lo up && echo '{ping_range}' > /proc/sys/net/ipv4/ping_group_range && exec \"$@\""
        command = ["unshare", "-n", "sh", "-c", setup, "sh", *command]
    elif ping_range != OPEN or not _host_allows_ping():
        message = "needs root (a network namespace) or net.ipv4.ping_group_range open to this group"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host,protocol", [("127.0.0.1", 4), ("::1", 6)])
def test_one_echo_reports_blackbox_families(host, protocol):
    if protocol == 6 and not _ipv6_loopback():
        if IN_CI:
            pytest.fail("::1 is not available")
        pytest.skip("::1 is not available on this machine")
    out = _probe({"host": host})
    assert out["success"], out
    assert out["facts"]["ip_protocol"] == protocol
    assert out["facts"]["icmp_reply_hop_limit"] == 64  # Linux's default TTL / hop limit, unchanged on loopback
    assert set(out["phases"]) == {"resolve", "setup", "rtt"} and 0 < out["phases"]["rtt"] < 1
    metrics = out["metrics"]
    for phase in ("resolve", "setup", "rtt"):
        assert f'probe_icmp_duration_seconds{{target="ping",phase="{phase}"}} ' in metrics
    assert 'probe_icmp_reply_hop_limit{target="ping"} 64\n' in metrics
    assert 'probe_success{target="ping"} 1\n' in metrics
    assert "probe_icmp_packets_sent" not in metrics  # one packet, as blackbox: no loss figures


def test_packets_report_loss_and_rtt_statistics():
    out = _probe({"host": "localhost", "packets": 3, "packet_interval": "20ms", "ip_protocol": "ip4"})
    assert out["success"], out
    facts = out["facts"]
    assert (facts["icmp_packets_sent"], facts["icmp_packets_received"], facts["icmp_packet_loss_ratio"]) == (3, 3, 0)
    assert 0 < facts["icmp_rtt_min_seconds"] <= facts["icmp_rtt_avg_seconds"] <= facts["icmp_rtt_max_seconds"]
    assert facts["icmp_rtt_stddev_seconds"] >= 0
    for stat in ("min", "avg", "max", "stddev"):
        assert f'probe_icmp_rtt_seconds{{target="ping",stat="{stat}"}} ' in out["metrics"]
    assert 'probe_icmp_packet_loss_ratio{target="ping"} 0\n' in out["metrics"]


def test_ip_protocol_preference_and_fallback():
    # An IPv4 literal under an ip6 preference: used with the fallback (blackbox's default), refused without.
    out = _probe({"host": "127.0.0.1", "ip_protocol": "ip6"})
    assert out["success"] and out["facts"]["ip_protocol"] == 4, out
    out = _probe({"host": "127.0.0.1", "ip_protocol": "ip6", "ip_protocol_fallback": False})
    assert not out["success"] and out["reason"] == "dns", out
    assert "127.0.0.1 has no ip6 address" in out["message"]


def test_source_address():
    out = _probe({"host": "127.0.0.1", "source_ip_address": "127.0.0.1"})
    assert out["success"], out
    out = _probe({"host": "127.0.0.1", "source_ip_address": "192.0.2.77"})  # not an address of this host
    assert not out["success"] and out["reason"] == "connect", out
    assert "cannot send from 192.0.2.77" in out["message"]


@pytest.mark.skipif(not _can_use_namespaces(), reason="silencing echo replies needs a network namespace of our own")
def test_unanswered_echoes_are_full_loss_before_the_deadline():
    # A host that ignores echo requests: every packet lost, reported (not a bare timeout).
    target = json.dumps({"name": "ping", "timeout": "1s", "interval": "10s",
                         "icmp": {"host": "127.0.0.1", "packets": 2, "packet_interval": "50ms"}})
    setup = (f"ip link set lo up && echo '{OPEN}' > /proc/sys/net/ipv4/ping_group_range && "
             "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all && exec \"$@\"")
    proc = subprocess.run(["unshare", "-n", "sh", "-c", setup, "sh", sys.executable, "-c", _SCRIPT, target],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                          timeout=60)
    out = json.loads(proc.stdout)
    assert not out["success"] and out["reason"] == "timeout", out
    assert "no echo reply from 127.0.0.1 (2 sent)" in out["message"]
    facts = out["facts"]
    assert (facts["icmp_packets_sent"], facts["icmp_packets_received"], facts["icmp_packet_loss_ratio"]) == (2, 0, 1)
    assert "icmp_rtt_avg_seconds" not in facts


def test_blackbox_spelling_of_ip_protocol():
    out = _probe({"host": "127.0.0.1", "preferred_ip_protocol": "ip6", "ip_protocol_fallback": False})
    assert not out["success"] and "127.0.0.1 has no ip6 address" in out["message"], out


@pytest.mark.skipif(not _can_use_namespaces(), reason="a small MTU on lo needs a network namespace of our own")
def test_dont_fragment_refuses_what_would_need_fragments():
    # lo's MTU at 1000 in a namespace: a 1400-byte echo needs fragments. Without dont_fragment
    # the kernel fragments it and the reply comes back; with it the request is refused.
    setup = (f"ip link set lo up && ip link set lo mtu 1000 && echo '{OPEN}' > /proc/sys/net/ipv4/ping_group_range"
             " && exec \"$@\"")

    def probe(icmp: dict) -> dict:
        target = json.dumps({"name": "ping", "timeout": "1s", "interval": "10s", "icmp": icmp})
        proc = subprocess.run(["unshare", "-n", "sh", "-c", setup, "sh", sys.executable, "-c", _SCRIPT, target],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    assert probe({"host": "127.0.0.1", "payload_size": 1400})["success"]
    assert probe({"host": "127.0.0.1", "payload_size": 900, "dont_fragment": True})["success"]
    refused = probe({"host": "127.0.0.1", "payload_size": 1400, "dont_fragment": True})
    assert (refused["success"], refused["reason"]) == (False, "connect"), refused
    assert "Message too long" in refused["message"]


@pytest.mark.skipif(not _can_use_namespaces(), reason="closing ping_group_range needs a network namespace")
def test_refused_socket_is_a_clear_error():
    out = _probe({"host": "127.0.0.1"}, ping_range=CLOSED)
    assert not out["success"] and out["reason"] == "error", out
    assert "net.ipv4.ping_group_range = 1 0" in out["message"]
    assert "sysctl -w net.ipv4.ping_group_range=" in out["message"]


def test_tocsin_probe_command_pings():
    command = [sys.executable, "-m", "tocsin.cli", "probe", "--kind", "icmp", "127.0.0.1", "--set", "packets=2",
               "--set", "packet_interval=10ms"]
    if _can_use_namespaces():
        setup = f"ip link set lo up && echo '{OPEN}' > /proc/sys/net/ipv4/ping_group_range && exec \"$@\""
        command = ["unshare", "-n", "sh", "-c", setup, "sh", *command]
    elif not _host_allows_ping():
        pytest.skip("needs root (a network namespace) or net.ipv4.ping_group_range open to this group")
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "icmp probe of 127.0.0.1: success" in proc.stdout
    assert "icmp_packets_received          2" in proc.stdout
