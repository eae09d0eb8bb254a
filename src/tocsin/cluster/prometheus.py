"""`tocsin prometheus-config`: a Prometheus over the fleet, from the file the fleet runs.

The scrape configuration lists every shard of every replica (shard i of a host listens on
the configured port + i) with `shard` and `replica` labels; the rule file holds what only a
Prometheus that sees all of them can decide — a target down as seen from a quorum of
replicas (vantage points), a shard that nobody scrapes, replicas that disagree on the
number of shards.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

import yaml

from ..config.schema import LoadedConfig


@dataclass(frozen=True)
class Replica:
    """One copy of the fleet: its name and the host its shards run on."""

    name: str
    host: str


def _ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host.strip("[]"))
    except ValueError:
        return False
    return True


def parse_replica(text: str) -> Replica:
    """`--replica NAME=HOST` (or just `HOST` for an unnamed single copy)."""
    name, sep, host = text.partition("=")
    if not sep:
        name, host = "", text
    if not host or any(c in host for c in "/ ") or (":" in host and not _ipv6(host)):
        raise ValueError(f"--replica {text!r}: give NAME=HOST, e.g. a=mon1.example.org")
    return Replica(name, host)


def scrape_groups(loaded: LoadedConfig, replicas: list[Replica]) -> list[dict[str, Any]]:
    """Prometheus `static_configs` entries (also the file_sd format): one per replica and shard."""
    g = loaded.global_
    default_host, _, port = g.listen_address.rpartition(":")
    shards = loaded.config.cluster.shards
    groups = []
    for replica in replicas or [Replica(loaded.config.cluster.replica, default_host.strip("[]"))]:
        host = f"[{replica.host.strip('[]')}]" if ":" in replica.host else replica.host
        for shard in range(shards):
            labels = {"shard": str(shard)}
            if replica.name:
                labels["replica"] = replica.name
            groups.append({"targets": [f"{host}:{int(port) + (shard if shards > 1 else 0)}"], "labels": labels})
    return groups


def scrape_config(loaded: LoadedConfig, replicas: list[Replica], *, job: str = "tocsin",
                  file_sd: str | None = None, interval: str = "15s") -> str:
    """The `scrape_configs:` block (static, or reading `file_sd`), as YAML text."""
    scheme = "https" if loaded.global_.web.tls_cert_file else "http"
    block: dict[str, Any] = {"job_name": job, "scrape_interval": interval, "scheme": scheme}
    if loaded.global_.web.basic_auth_users:
        block["basic_auth"] = {"username": "CHANGE-ME", "password_file": "/etc/prometheus/tocsin.password"}
    if file_sd:
        block["file_sd_configs"] = [{"files": [file_sd]}]
    else:
        block["static_configs"] = scrape_groups(loaded, replicas)
    return yaml.safe_dump({"scrape_configs": [block]}, sort_keys=False)


def file_sd(loaded: LoadedConfig, replicas: list[Replica]) -> str:
    return json.dumps(scrape_groups(loaded, replicas), indent=2) + "\n"


def fleet_rules(*, job: str = "tocsin", quorum: int = 2, for_: str = "1m") -> str:
    """The fleet's rule file: what needs every shard and replica in one place."""
    down = f'count by (target) (probe_success{{job="{job}"}} == 0)'
    rules = [
        {"record": "target:probe_vantage_points_down:count", "expr": down},
        {"alert": "TargetDownFromQuorum", "expr": f"{down} >= {quorum}", "for": for_,
         "labels": {"severity": "critical"},
         "annotations": {"summary": "{{ $labels.target }} is down as seen from {{ $value }} vantage points"}},
        {"alert": "TocsinShardDown", "expr": f'up{{job="{job}"}} == 0', "for": for_,
         "labels": {"severity": "warning"},
         "annotations": {"summary": "tocsin shard {{ $labels.shard }} on {{ $labels.instance }} "
                                    "does not answer: its targets are not probed from there"}},
        {"alert": "TocsinShardCountMismatch",
         "expr": f'count(count by (shards) (tocsin_shard_info{{job="{job}"}})) > 1', "for": for_,
         "labels": {"severity": "warning"},
         "annotations": {"summary": "tocsin processes disagree on the number of shards: "
                                    "some targets are probed twice and others not at all"}},
    ]
    return yaml.safe_dump({"groups": [{"name": "tocsin-fleet", "rules": rules}]}, sort_keys=False, width=200)
