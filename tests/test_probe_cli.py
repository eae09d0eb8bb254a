"""`tocsin probe` with --insecure and --ca-file, and expiries printed as dates."""

from __future__ import annotations

import subprocess
import sys

import parity_servers as ps
import pytest

from conftest import free_port
from tocsin.probes.report import when


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    chain = ps.Chain(str(tmp_path_factory.mktemp("cli")))
    server = ps.HTTPServer(ps.HTTPBehaviours(dead_port=free_port()), chain.context)
    yield server, chain
    server.close()


def probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tocsin.cli", "probe", *args, "--timeout", "5"],
                          capture_output=True, text=True, timeout=30)


def test_ca_file_insecure_and_expiry_dates(tls_server):
    server, chain = tls_server
    url = f"https://127.0.0.1:{server.port}/plain"
    untrusted = probe(url)
    assert untrusted.returncode == 1 and "failure (tls" in untrusted.stdout, untrusted.stdout
    insecure = probe(url, "--insecure")
    assert insecure.returncode == 0, insecure.stdout + insecure.stderr
    trusted = probe(url, "--ca-file", chain.ca_file)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    expiry = chain.leaf_not_after.strftime("%Y-%m-%d %H:%M:%S UTC")
    leaf_line = next(line for line in trusted.stdout.splitlines() if "ssl_leaf_cert_expiry" in line)
    assert expiry in leaf_line and ("in 59 days" in leaf_line or "in 60 days" in leaf_line), leaf_line
    assert "Wed, 21 Oct 2015" not in trusted.stdout and "2015-10-21 07:28:00 UTC (" in trusted.stdout
    # TCP: the TLS flags imply TLS
    tcp = probe(f"127.0.0.1:{server.port}", "--ca-file", chain.ca_file)
    assert tcp.returncode == 0 and "TLS 1." in tcp.stdout, tcp.stdout + tcp.stderr
    dns = probe("example.test", "--kind", "dns", "--insecure")
    assert dns.returncode == 2 and "apply to http and tcp" in dns.stderr


def test_when_reads_as_a_person_would():
    now = 1_800_000_000.0
    assert when(now + 30 * 86400 + 5, now) == "2027-02-14 08:00:05 UTC (in 30 days)"
    assert when(now - 86400 * 1.5, now).endswith("(1 day ago)")
    assert when(now + 3600, now).endswith("(in less than a day)")
