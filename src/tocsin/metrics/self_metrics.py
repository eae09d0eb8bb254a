"""The daemon's own health, under `tocsin_*`: few series, so prometheus-client serves them.

A private registry (not the library's global one) holds them, with the process and
platform collectors, so two daemons in one test process never share counters.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.platform_collector import PlatformCollector

from .. import __version__


class SelfMetrics:
    """The daemon's own health, under `tocsin_*`, in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        info = Gauge("tocsin_build_info", "Version of the running tocsin.", ["version"], registry=r)
        info.labels(__version__).set(1)
        self.reload_success = Gauge("tocsin_config_last_reload_successful",
                                    "Whether the last configuration reload succeeded.", registry=r)
        self.reload_timestamp = Gauge("tocsin_config_last_reload_success_timestamp_seconds",
                                      "Time of the last successful configuration reload.", registry=r)
        self.lateness = Histogram("tocsin_scheduler_lateness_seconds",
                                  "How late probe runs started compared to their schedule.", registry=r,
                                  buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
        self.missed_runs = Counter("tocsin_scheduler_missed_runs_total",
                                   "Probe runs dropped because they were too late to be useful.", registry=r)
        self.skipped_runs = Counter("tocsin_scheduler_skipped_runs_total",
                                    "Probe runs skipped because the previous run of the target was still going.",
                                    registry=r)
        self.in_flight = Gauge("tocsin_probes_in_flight", "Probes running now.", registry=r)
        self.targets = Gauge("tocsin_targets", "Targets configured, by kind.", ["kind"], registry=r)
        self.targets_up = Gauge("tocsin_targets_up", "Targets whose last probe succeeded.", registry=r)
        self.log_errors = Counter("tocsin_log_errors_total",
                                  "Log records that could not be written, by handler.", ["handler"], registry=r)
        self.state_write_errors = Counter("tocsin_state_write_errors_total",
                                          "Writes to a state database under state_dir that failed (a full disk, "
                                          "a read-only file system), by database file.", ["db"], registry=r)
        self.shard_info = Gauge("tocsin_shard_info", "Which shard of how many this process is, and its replica "
                                "name (empty outside an HA pair); always 1.", ["shard", "shards", "replica"],
                                registry=r)
        for db in ("notify.sqlite", "rules.db"):
            self.state_write_errors.labels(db)
        self.reload_success.set(1)
        self.reload_timestamp.set(time.time())

    def render(self) -> str:
        return generate_latest(self.registry).decode()

