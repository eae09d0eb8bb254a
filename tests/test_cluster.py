"""Shards and replicas: which process owns a target, and what each shard runs and sends."""

from __future__ import annotations

import random
import string
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from conftest import free_port, free_port_run, scaled, wait_for
from notify_sinks import HTTPSink, validate_webhook_v4
from tocsin.cluster.config import ClusterConfig, parse_shard, shard_of


def _names(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(string.ascii_lowercase + "-", k=12)) for _ in range(count)]


def test_the_owner_of_a_target_is_the_same_in_every_process():
    """The hash is part of the contract (documented): a shard computed today is computed the same tomorrow,
    in another process, on another host. Python's salted hash() would fail this across runs."""
    code = "from tocsin.cluster.config import shard_of; print([shard_of(n, 7) for n in ['api', 'db', 'web-1', 'ümlaut']])"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin",
                                   "PYTHONPATH": str(Path(__file__).parents[1] / "src")}).stdout
               for seed in (1, 2, 3)}
    assert len(outputs) == 1
    assert outputs.pop().strip() == str([shard_of(n, 7) for n in ["api", "db", "web-1", "ümlaut"]])


@pytest.mark.parametrize("shards", [1, 2, 3, 5, 8])
def test_shards_share_the_targets_evenly_and_growth_moves_only_what_the_new_shard_takes(shards):
    names = _names(20_000)
    before = [shard_of(n, shards) for n in names]
    after = [shard_of(n, shards + 1) for n in names]
    counts = [before.count(i) for i in range(shards)]
    assert min(counts) > len(names) / shards * 0.9 and max(counts) < len(names) / shards * 1.1
    moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    # Every moved target went to the new shard, and about 1/(N+1) of them moved.
    assert all(b == shards for _, b in moved)
    assert abs(len(moved) / len(names) - 1 / (shards + 1)) < 0.02


def test_shard_arguments_are_checked():
    assert parse_shard("1/3") == (1, 3)
    assert parse_shard("2", 4) == (2, 4)
    for bad in ("3/3", "-1/2", "x/2", "1"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    with pytest.raises(ValueError, match="numbered 0 to 1"):
        ClusterConfig(shards=2, shard=2)
    with pytest.raises(ValueError):
        ClusterConfig(replica="a b")


RULES = """
groups:
  - name: down
    interval: 300ms
    rules:
      - alert: TargetDown
        expr: probe_success == 0
"""


def _run(config: Path, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tocsin.cli", "run", "--config", str(config), *args],
                            cwd=config.parent, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def test_two_shards_from_one_file_split_the_targets_and_label_their_alerts(tmp_path):
    names = [f"t{i}" for i in range(12)]
    dead = free_port()
    port = free_port_run(2)
    sink = HTTPSink(validate=validate_webhook_v4)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "down.yml").write_text(RULES)
    targets = "\n".join(f'  - {{name: {n}, tcp: {{address: "127.0.0.1:{dead}"}}}}' for n in names)
    config = tmp_path / "tocsin.yml"
    config.write_text(f"""
global: {{listen_address: "127.0.0.1:{port}", interval: 300ms, timeout: 250ms, state_dir: "{tmp_path}/state"}}
cluster: {{shards: 2}}
targets:
{targets}
rule_files: [rules/*.yml]
alerting:
  route: {{receiver: hook, group_by: [alertname, target], group_wait: 0s, group_interval: 1s}}
  receivers:
    - name: hook
      webhook: {{url: "{sink.url}/hook", timeout: 2s}}
""")
    procs = [_run(config, tmp_path / f"shard{i}.out", "--shard", str(i), "--replica", "a") for i in (0, 1)]
    try:
        urls = [f"http://127.0.0.1:{port + i}" for i in (0, 1)]
        for url in urls:
            wait_for(lambda url=url: requests.get(url + "/-/ready", timeout=scaled(2)).status_code == 200,
                     timeout=scaled(20), what="shard ready")
        owned = [{t["name"] for t in requests.get(url + "/api/v1/targets", timeout=scaled(5)).json()["data"]}
                 for url in urls]
        assert owned[0] | owned[1] == set(names) and not owned[0] & owned[1]
        assert owned[0] == {n for n in names if shard_of(n, 2) == 0}
        for i, url in enumerate(urls):
            text = requests.get(url + "/metrics", timeout=scaled(5)).text
            assert f'tocsin_shard_info{{replica="a",shard="{i}",shards="2"}} 1.0' in text
        wait_for(lambda: {a["labels"]["target"] for b in sink.bodies() for a in b["alerts"]} >= set(names),
                 timeout=scaled(30), what="every target's alert")
        for body in sink.bodies():
            for alert in body["alerts"]:
                expected = str(shard_of(alert["labels"]["target"], 2))
                assert alert["labels"]["shard"] == expected
                assert "replica" not in alert["labels"]
        assert (tmp_path / "state" / "shard-0").is_dir() and (tmp_path / "state" / "shard-1").is_dir()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            assert proc.wait(scaled(20)) == 0
        sink.stop()
    assert "shard=1/2" in (tmp_path / "shard1.out").read_text()
    assert "replica=a" in (tmp_path / "shard1.out").read_text()


def test_a_shard_the_file_does_not_have_is_refused(tmp_path):
    config = tmp_path / "tocsin.yml"
    config.write_text(f'global: {{listen_address: "127.0.0.1:{free_port()}"}}\ncluster: {{shards: 2}}\ntargets: []\n')
    proc = subprocess.run([sys.executable, "-m", "tocsin.cli", "run", "--config", str(config), "--shard", "2"],
                          capture_output=True, text=True, timeout=scaled(30), cwd=tmp_path)
    assert proc.returncode == 78
    assert "numbered 0 to 1" in proc.stderr


def test_check_config_warns_a_replica_that_pages_through_its_own_receivers(tmp_path):
    config = tmp_path / "tocsin.yml"
    text = """
cluster: {replica: b}
targets: [{name: x, tcp: {address: "127.0.0.1:1"}}]
alerting:
  route: {receiver: am, routes: [{receiver: hook, matchers: ['severity="page"']}]}
  receivers:
    - {name: am, alertmanager: {urls: ["http://127.0.0.1:9093"]}}
    - {name: hook, webhook: {url: "http://127.0.0.1:9/hook"}}
"""
    config.write_text(text)
    check = [sys.executable, "-m", "tocsin.cli", "check", "config", str(config)]
    out = subprocess.run(check, capture_output=True, text=True, timeout=scaled(30))
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "receivers[1] (hook, webhook)" in warnings[0] and "once per replica" in warnings[0]
    config.write_text(text.replace("cluster: {replica: b}", ""))
    assert "warning" not in subprocess.run(check, capture_output=True, text=True, timeout=scaled(30)).stderr


def test_a_shard_validates_only_its_targets_and_reports_errors_where_they_are_written(tmp_path):
    """A shard of a big file validates its own share (the rest costs a hash each); a file with any
    problem is checked whole, so the error names the target by its place in the file."""
    from tocsin.cluster.view import ClusterOverride
    from tocsin.config import schema
    from tocsin.daemon import load_shard
    from tocsin.errors import ConfigError

    names = [f"t{i}" for i in range(300)]
    lines = "".join(f'  - {{name: {n}, tcp: {{address: "127.0.0.1:{1000 + i}"}}}}\n' for i, n in enumerate(names))
    config = tmp_path / "tocsin.yml"
    config.write_text(f"cluster: {{shards: 3}}\ntargets:\n{lines}")
    loaded = load_shard(config, ClusterOverride(shard="1"))
    owned = {n for n in names if shard_of(n, 3) == 1}
    assert {t.name for t in loaded.targets} == owned
    assert len(schema._validated_targets) == len(owned)  # the cache holds what this load validated

    # A broken target of another shard is that shard's problem (and `tocsin check config`'s):
    # this one still loads. Its own broken target is named by its place in the file.
    other = next(i for i, n in enumerate(names) if shard_of(n, 3) == 2)
    mine = next(i for i, n in enumerate(names) if shard_of(n, 3) == 1 and i > 10)
    text = config.read_text()
    for index in (other, mine):
        text = text.replace(f'name: t{index}, tcp: {{address: "127.0.0.1:{1000 + index}"}}',
                            f'name: t{index}, tcp: {{address: "nowhere"}}')
    config.write_text(text.replace(f't{mine}, tcp: {{address: "nowhere"}}', f't{mine}, tcp: {{address: "127.0.0.1:{1000 + mine}"}}'))
    assert {t.name for t in load_shard(config, ClusterOverride(shard="1")).targets} == owned
    config.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_shard(config, ClusterOverride(shard="1"))
    assert any(f":{mine + 3}:" in e and f"targets[{mine}].tcp.address" in e for e in refused.value.errors), \
        refused.value.errors
