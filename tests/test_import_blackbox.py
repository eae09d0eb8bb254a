"""`tocsin import blackbox` on the example configurations Debian's packages ship."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import IN_CI, REPO
from tocsin.importers.blackbox import convert

EXAMPLES = Path("/usr/share/doc/prometheus-blackbox-exporter/examples")
DEBIAN_BLACKBOX = (EXAMPLES / "example.yml", EXAMPLES / "blackbox.yml")
DEBIAN_PROMETHEUS = Path("/usr/share/doc/prometheus/examples/prometheus.yml")
ADDRESSES = {"http": "http://127.0.0.1:8080/health", "tcp": "127.0.0.1:995", "dns": "127.0.0.1",
             "icmp": "127.0.0.1", "grpc": "127.0.0.1:50051"}
USUAL_RELABEL = [  # blackbox_exporter's README pattern
    {"source_labels": ["__address__"], "target_label": "__param_target"},
    {"source_labels": ["__param_target"], "target_label": "instance"},
    {"target_label": "__address__", "replacement": "127.0.0.1:9115"},
]


def _debian(path: Path) -> Path:
    if not path.exists():
        message = f"{path} is missing (Debian's prometheus and prometheus-blackbox-exporter packages ship it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def _tocsin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tocsin.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})


def _prometheus_with_a_job_per_module(blackbox: Path, tmp_path: Path) -> Path:
    """Debian's prometheus.yml plus one blackbox job per module, each probing a loopback address."""
    config = yaml.safe_load(_debian(DEBIAN_PROMETHEUS).read_text())
    for name, module in yaml.safe_load(blackbox.read_text())["modules"].items():
        config["scrape_configs"].append({
            "job_name": f"bb_{name}", "metrics_path": "/probe", "params": {"module": [name]},
            "static_configs": [{"targets": [ADDRESSES[module["prober"]]], "labels": {"site": "lab"}}],
            "relabel_configs": USUAL_RELABEL})
    path = tmp_path / f"prometheus-{blackbox.stem}.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("blackbox", DEBIAN_BLACKBOX, ids=lambda p: p.name)
def test_debian_examples_convert_to_a_configuration_that_loads(blackbox, tmp_path):
    blackbox = _debian(blackbox)
    prometheus = _prometheus_with_a_job_per_module(blackbox, tmp_path)
    proc = _tocsin("import", "blackbox", "--blackbox-config", str(blackbox), "--prometheus-config", str(prometheus))
    assert proc.returncode == 0, proc.stderr
    output = tmp_path / "tocsin.yml"
    output.write_text(proc.stdout)
    check = _tocsin("check", "config", str(output))
    assert check.returncode == 0, check.stderr + proc.stdout

    header = [line for line in proc.stdout.splitlines() if line.startswith("#")]
    converted = yaml.safe_load(proc.stdout)["targets"]
    assert "#   - job prometheus: not a blackbox job (metrics_path /metrics, no module parameter); not converted" in header
    # Every module is accounted for: probed by a target, or named in the list of what was not converted
    # (a target that does not load here is listed there by its name, and written commented out).
    names = " ".join(t["name"] for t in converted)
    for module in yaml.safe_load(blackbox.read_text())["modules"]:
        assert f"(bb_{module})" in names or any(f"module {module}" in line or f"(bb_{module}): does not load" in line
                                                for line in header), module
    assert all(t["labels"] == {"site": "lab"} for t in converted)
    assert f"{len(converted)} targets converted" in proc.stderr


def test_what_each_prober_becomes():
    blackbox = yaml.safe_load(_debian(DEBIAN_BLACKBOX[1]).read_text())
    blackbox["modules"].update(yaml.safe_load(_debian(DEBIAN_BLACKBOX[0]).read_text())["modules"])
    jobs = [{"job_name": name, "metrics_path": "/probe", "params": {"module": [name]}, "scrape_interval": "30s",
             "scrape_timeout": "20s", "static_configs": [{"targets": [ADDRESSES[module["prober"]]]}],
             "relabel_configs": USUAL_RELABEL} for name, module in blackbox["modules"].items()]
    out = convert(blackbox, {"scrape_configs": jobs})
    by_job = {t["name"].split(" (")[1].rstrip(")'"): t for t in out.targets}
    notes = "\n".join(out.notes)

    assert by_job["ssh_banner"]["tcp"] == {"address": "127.0.0.1:995", "ip_protocol": "ip6", "query_response": [
        {"expect": "^SSH-2.0-"}, {"send": "SSH-2.0-blackbox-ssh-check"}]}
    assert by_job["pop3s_banner"]["tcp"] == {"address": "127.0.0.1:995", "tls": True, "ip_protocol": "ip6",
                                             "query_response": [{"expect": "^+OK"}]}
    assert by_job["icmp"]["icmp"] == {"host": "127.0.0.1", "ip_protocol": "ip6"}  # blackbox prefers IPv6
    assert by_job["icmp_ttl5"]["icmp"]["ttl"] == 5 and by_job["icmp_ttl5"]["timeout"] == "5s"
    assert by_job["icmp_example"]["icmp"]["ip_protocol"] == "ip4"
    assert by_job["icmp_example"]["icmp"]["source_ip_address"] == "127.0.0.1"
    assert by_job["grpc_plain"]["grpc"] == {"address": "127.0.0.1:50051", "service": "service1", "ip_protocol": "ip6"}
    assert by_job["grpc"]["grpc"] == {"address": "127.0.0.1:50051", "tls": True, "ip_protocol": "ip4"}
    assert by_job["dns_soa"]["dns"] == {"query": "prometheus.io", "type": "SOA", "server": "127.0.0.1:53",
                                        "fail_if_no_answer": False, "ip_protocol": "ip6"}
    assert "dns_tcp_example: dns.query_type ANY" in notes  # blackbox's default type; tocsin has no ANY
    assert by_job["http_basic_auth_example"]["http"]["basic_auth"] == {"username": "username", "password": "mysecret"}
    assert "http_basic_auth_example: http.headers.Host: tocsin sets this header itself" in notes
    # blackbox options tocsin has: converted as written there.
    assert by_job["http_with_proxy"]["http"]["proxy_url"] == blackbox["modules"]["http_with_proxy"]["http"]["proxy_url"]
    assert by_job["http_gzip"]["http"]["compression"] == "gzip" and by_job["http_2xx"]["http"]["ip_protocol"] == "ip6"
    assert "http_with_proxy: http.proxy_url" not in notes and "http_gzip: http.compression" not in notes
    assert (by_job["http_2xx"]["interval"], by_job["http_2xx"]["timeout"]) == ("30s", "20s")
    assert by_job["http_post_2xx"]["timeout"] == "5s"  # the module's timeout, shorter than the scrape's
    unloadable = {target["name"]: errors for target, errors in out.unloadable}
    assert any("ca_file: cannot read file '/certs/my_cert.crt'" in " ".join(e) for e in unloadable.values())


def test_brotli_dont_fragment_and_grpc_ip_protocol_are_converted():
    blackbox = {"modules": {
        "br": {"prober": "http", "http": {"compression": "br"}},
        "df": {"prober": "icmp", "icmp": {"dont_fragment": True, "payload_size": 1400}},
        "g6": {"prober": "grpc", "grpc": {"preferred_ip_protocol": "ip6", "ip_protocol_fallback": False}}}}
    jobs = [{"job_name": name, "metrics_path": "/probe", "params": {"module": [name]},
             "static_configs": [{"targets": [target]}],
             "relabel_configs": [{"source_labels": ["__address__"], "target_label": "__param_target"},
                                 {"target_label": "__address__", "replacement": "127.0.0.1:9115"}]}
            for name, target in (("br", "http://127.0.0.1/"), ("df", "127.0.0.1"), ("g6", "127.0.0.1:50051"))]
    out = convert(blackbox, {"scrape_configs": jobs})
    assert not out.notes and not out.unloadable, (out.notes, out.unloadable)
    by_kind = {next(k for k in ("url", "icmp", "grpc") if k in t): t for t in out.targets}
    assert by_kind["url"]["http"]["compression"] == "br"
    assert by_kind["icmp"]["icmp"]["dont_fragment"] is True
    assert by_kind["grpc"]["grpc"] == {"address": "127.0.0.1:50051", "ip_protocol": "ip6", "ip_protocol_fallback": False}


def test_relabelling_variants_and_what_cannot_be_applied():
    blackbox = {"modules": {"web": {"prober": "http"}, "ws": {"prober": "websocket"}}}
    relabel_module = [
        {"source_labels": ["__address__"], "regex": "(.*)@(.*)", "target_label": "__param_target", "replacement": "$2"},
        {"source_labels": ["__address__"], "regex": "(.*)@(.*)", "target_label": "__param_module", "replacement": "$1"},
        {"source_labels": ["__param_target"], "regex": ".*skip.*", "action": "drop"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"regex": "__meta_(.+)|env", "action": "labelmap", "replacement": "copied_$1"},
    ]
    prometheus = {"global": {"scrape_interval": "1m"}, "scrape_configs": [
        {"job_name": "mixed", "metrics_path": "/probe", "relabel_configs": relabel_module,
         "static_configs": [{"targets": ["web@https://a.example/", "web@https://skip.example/", "ws@ws://b/"],
                             "labels": {"env": "prod", "le": "x"}}]},
        {"job_name": "hashed", "metrics_path": "/probe", "params": {"module": ["web"], "debug": ["true"]},
         "relabel_configs": [{"action": "hashmod", "source_labels": ["__address__"], "modulus": 2,
                              "target_label": "shard"}], "static_configs": [{"targets": ["x"]}]},
        {"job_name": "discovered", "metrics_path": "/probe", "file_sd_configs": [{"files": ["a.yml"]}]},
    ]}
    out = convert(blackbox, prometheus)
    assert [t["name"] for t in out.targets] == ["https://a.example/"]
    assert out.targets[0]["labels"] == {"env": "prod", "copied_": "prod"}
    notes = "\n".join(out.notes)
    assert "job mixed, module ws: prober 'websocket': tocsin has no such kind of probe" in notes
    assert "job hashed: relabel_configs: action 'hashmod' cannot be applied" in notes
    assert "job mixed, module web, target https://a.example/: label le='x': the name is tocsin's own" in notes
    assert "job hashed: params.debug: not converted" in notes
    assert "job discovered: file_sd_configs: targets discovered at run time are not converted" in notes


def test_unreadable_input_is_an_error(tmp_path):
    (tmp_path / "bad.yml").write_text("modules: [unclosed\n")
    proc = _tocsin("import", "blackbox", "--blackbox-config", str(tmp_path / "bad.yml"),
                   "--prometheus-config", str(tmp_path / "missing.yml"))
    assert proc.returncode == 2 and "bad.yml" in proc.stderr, proc.stderr
