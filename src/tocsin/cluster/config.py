"""The `cluster:` section, and which shard owns a target.

The owner is chosen by rendezvous (highest-random-weight) hashing: every shard scores the
target name with BLAKE2b and the highest score wins. The score depends only on the name and
the shard index, never on the process (Python's `hash()` is salted per process), so every
shard and every replica agrees without talking to the others; and going from N to N+1
shards moves only the targets the new shard wins, about 1/(N+1) of them, where `hash % N`
would move almost all.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from ..fields import Model

_REPLICA = re.compile(r"[A-Za-z0-9_.-]{0,63}")


def _replica_name(value: str) -> str:
    if not _REPLICA.fullmatch(value):
        raise ValueError("a replica name is up to 63 letters, digits, '_', '.' or '-'")
    return value


class ClusterConfig(Model):
    """Which part of the fleet this process is.

    `shards`/`shard`: this process probes only the targets that hash to `shard` (0-based) of
    `shards`, and evaluates the rules over them; its alerts carry `shard="<shard>"`. With
    more than one shard, shard i listens on the configured port + i and keeps its state
    (and log file) apart, so one file serves every shard on a host. `replica`: the name of
    this copy in an HA pair; it labels `tocsin_shard_info` and the log, and is never added to
    alerts, so that the replicas' alerts are identical and Alertmanager deduplicates them.
    """

    shards: int = Field(default=1, ge=1, le=4096)  # how many processes share the targets (1: unsharded)
    shard: int = Field(default=0, ge=0)  # which of them this is, 0 to shards-1 (`tocsin run --shard I` overrides)
    replica: Annotated[str, AfterValidator(_replica_name)] = ""  # this copy's name in an HA pair; never on alerts

    @model_validator(mode="after")
    def _shard_in_range(self) -> "ClusterConfig":
        if self.shard >= self.shards:
            raise ValueError(f"shard {self.shard} does not exist: shards are numbered 0 to {self.shards - 1}")
        return self

    @property
    def sharded(self) -> bool:
        return self.shards > 1


def _score(name: str, shard: int) -> bytes:
    return hashlib.blake2b(f"{shard}\0{name}".encode(), digest_size=8).digest()


def shard_of(name: str, shards: int) -> int:
    """The shard (0 … shards-1) that owns the target called `name`: the same everywhere, always."""
    if shards <= 1:
        return 0
    return max(range(shards), key=lambda shard: _score(name, shard))


def parse_shard(text: str, shards: int | None = None) -> tuple[int, int]:
    """`--shard i/N` (or `i`, with N from the file): (shard, shards), or ValueError with the reason."""
    index, _, total = text.partition("/")
    try:
        shard = int(index)
        count = int(total) if total else shards
    except ValueError:
        raise ValueError(f"--shard {text!r}: give i/N, e.g. 0/2, or i with cluster.shards in the file") from None
    if count is None:
        raise ValueError(f"--shard {text!r}: give i/N, or set cluster.shards in the file")
    if not 0 <= shard < count:
        raise ValueError(f"--shard {text!r}: shards are numbered 0 to {count - 1}")
    return shard, count
