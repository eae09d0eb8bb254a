"""What one shard and replica runs: the loaded configuration narrowed to its own part.

Applied after every load (start and SIGHUP) so that the rest of the daemon — scheduler,
rules, notifier, listener — never needs to know it is one of several: it sees only its
targets, its port, its state directory and the `shard` label its alerts must carry.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..config.schema import LoadedConfig
from ..errors import ConfigError
from .config import ClusterConfig, parse_shard, shard_of


@dataclass(frozen=True)
class ClusterOverride:
    """`tocsin run --shard i[/N] --replica NAME`: what the command line says over the file."""

    shard: str | None = None
    replica: str | None = None


def effective_cluster(loaded: LoadedConfig, override: ClusterOverride | None) -> ClusterConfig:
    """The file's `cluster:` section with the command line's values laid over it."""
    return _overlaid(loaded.config.cluster, override)


def _overlaid(cluster: ClusterConfig, override: ClusterOverride | None) -> ClusterConfig:
    if override is None or (override.shard is None and override.replica is None):
        return cluster
    values = cluster.model_dump()
    try:
        if override.shard is not None:
            values["shard"], values["shards"] = parse_shard(override.shard, cluster.shards)
        if override.replica is not None:
            values["replica"] = override.replica
        return ClusterConfig.model_validate(values)
    except (ValueError, ValidationError) as exc:
        reason = "; ".join(e["msg"] for e in exc.errors()) if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"command line: {reason}", [f"command line: {reason}"]) from None


def target_filter(tree: Any, override: ClusterOverride | None = None) -> Callable[[Any], bool] | None:
    """Which of the file's targets this shard keeps, read from the file before it is validated:
    a shard of a 30 000-target file validates and holds its own share, not all of them.
    None (keep all) when unsharded, or when the `cluster:` section is not valid (the full
    validation reports it)."""
    section = tree.get("cluster") if isinstance(tree, dict) else None
    try:
        cluster = _overlaid(ClusterConfig.model_validate(dict(section) if isinstance(section, dict) else {}), override)
    except (ValueError, ValidationError, ConfigError):
        return None
    if not cluster.sharded:
        return None
    shard, shards = cluster.shard, cluster.shards

    def keep(target: Any) -> bool:
        name = target.get("name") if isinstance(target, dict) else None
        return not isinstance(name, str) or shard_of(name, shards) == shard  # a nameless one: for its error
    return keep


def shard_port(listen_address: str, shard: int) -> str:
    """`host:port` with the port moved up by the shard's index."""
    host, _, port = listen_address.rpartition(":")
    return f"{host}:{int(port) + shard}"


def _shard_file(path: str, shard: int) -> str:
    root, ext = os.path.splitext(path)
    return f"{root}-shard{shard}{ext}"


def shard_view(loaded: LoadedConfig, override: ClusterOverride | None = None) -> LoadedConfig:
    """`loaded` as the given shard runs it (unchanged for a single, unsharded process)."""
    cluster = effective_cluster(loaded, override)
    config = loaded.config
    if cluster == config.cluster and not cluster.sharded:
        return loaded
    updates: dict = {"cluster": cluster}
    if cluster.sharded:
        g = config.global_
        i = cluster.shard
        updates["targets"] = [t for t in config.targets if shard_of(t.name, cluster.shards) == i]
        updates["global_"] = g.model_copy(update={
            "listen_address": shard_port(g.listen_address, i),
            "state_dir": os.path.join(g.state_dir, f"shard-{i}"),
            "external_labels": {**g.external_labels, "shard": str(i)},
        })
        if config.logging.file is not None:
            log_file = config.logging.file.model_copy(update={"path": _shard_file(config.logging.file.path, i)})
            updates["logging"] = config.logging.model_copy(update={"file": log_file})
    return LoadedConfig(path=loaded.path, config=config.model_copy(update=updates))


# Receivers that notify nobody twice however many replicas send to them.
_SAFE_FOR_REPLICAS = {"alertmanager", "log", None}


def replica_warnings(loaded: LoadedConfig, override: ClusterOverride | None = None) -> list[str]:
    """What goes wrong when this file runs as one of an HA pair: receivers that page once per replica.

    Only an Alertmanager (cluster) deduplicates what two replicas send; a webhook, Slack,
    PagerDuty or email receiver is sent to by every replica, so each page arrives twice.
    """
    cluster = effective_cluster(loaded, override)
    alerting = loaded.config.alerting
    if not cluster.replica or alerting is None:
        return []
    return [f"{loaded.path}: alerting.receivers[{index}] ({receiver.name}, {receiver.kind}): this is replica "
            f"{cluster.replica!r} of an HA pair, and every replica sends to a {receiver.kind} receiver, so each "
            "notification arrives once per replica; send to an Alertmanager cluster instead (it deduplicates)"
            for index, receiver in enumerate(alerting.receivers) if receiver.kind not in _SAFE_FOR_REPLICAS]
