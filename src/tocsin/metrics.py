"""Metric families: per-target probe series and the daemon's own health.

Per-target series are rendered to text once per probe result and kept as fragments, so a
scrape joins strings instead of walking thousands of metric objects (prometheus-client's
generic path costs about a second at 10 000 targets). The daemon's own metrics, which are
few, use prometheus-client in a private registry.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.platform_collector import PlatformCollector

from . import __version__
from .config import Target
from .probes import REASONS, ProbeResult

LabelPairs = tuple[tuple[str, str], ...]
Sample = tuple[str, LabelPairs, float]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# name -> (type, help). Order is the order on /metrics.
PROBE_FAMILIES: dict[str, tuple[str, str]] = {
    "probe_success": ("gauge", "Whether the last probe of the target succeeded (1) or not (0)."),
    "probe_duration_seconds": ("gauge", "How long the last probe took, retries included."),
    "probe_timeout_seconds": ("gauge", "The total deadline of one probe, retries included."),
    "probe_dns_lookup_time_seconds": ("gauge", "Time spent resolving the target's name."),
    "probe_ip_protocol": ("gauge", "IP protocol (4 or 6) of the address probed."),
    "probe_ip_addr_hash": ("gauge", "Hash of the address probed; changes when the address does."),
    "probe_http_duration_seconds": ("gauge", "Duration of each HTTP phase, summed over redirects."),
    "probe_http_status_code": ("gauge", "HTTP status code of the final response (0 if none)."),
    "probe_http_content_length": ("gauge", "Content-Length of the final response (-1 if absent)."),
    "probe_http_uncompressed_body_length": ("gauge", "Bytes of body read from the final response."),
    "probe_http_redirects": ("gauge", "Number of redirects followed."),
    "probe_http_ssl": ("gauge", "Whether the final response came over TLS."),
    "probe_http_version": ("gauge", "HTTP version of the final response."),
    "probe_failed_due_to_regex": ("gauge", "Whether the probe failed on a body or expect pattern."),
    "probe_ssl_earliest_cert_expiry": ("gauge", "Earliest expiry (unix time) in the certificate chain the server presented."),
    "probe_ssl_leaf_cert_expiry": ("gauge", "Expiry (unix time) of the server's own (leaf) certificate."),
    "probe_tls_version_info": ("gauge", "TLS version negotiated, as a label."),
    "probe_dns_duration_seconds": ("gauge", "Duration of the DNS request."),
    "probe_dns_answer_rrs": ("gauge", "Resource records in the answer section."),
    "probe_dns_authority_rrs": ("gauge", "Resource records in the authority section."),
    "probe_dns_additional_rrs": ("gauge", "Resource records in the additional section."),
    "probe_dns_query_succeeded": ("gauge", "Whether the DNS query got a valid answer."),
    "tocsin_probe_attempts": ("gauge", "Attempts used by the last probe (1 = no retry)."),
    "tocsin_probe_first_attempt_success": ("gauge", "Whether the first attempt of the last probe succeeded."),
    "tocsin_probe_failure_reason": ("gauge", "Set to 1 for the failure reason of the last probe, absent when it succeeded."),
    "tocsin_probe_last_run_timestamp_seconds": ("gauge", "When the last probe of the target started (unix time)."),
    "tocsin_probe_interval_seconds": ("gauge", "Current probe interval of the target (stretched while down if configured)."),
    "tocsin_probes_total": ("counter", "Probes run, by final result."),
    "tocsin_probe_retries_total": ("counter", "Attempts beyond the first."),
    "tocsin_probe_failures_total": ("counter", "Failed probes, by reason."),
    "tocsin_probe_duration_seconds": ("histogram", "Probe durations, for latency SLOs."),
}

_FAMILY_INDEX = {name: index for index, name in enumerate(PROBE_FAMILIES)}
_NO_FRAGMENTS = [""] * len(PROBE_FAMILIES)  # shared by targets not yet probed; never mutated

_FACTS_BY_KIND = {
    "http": ("dns_lookup_time_seconds", "ip_protocol", "ip_addr_hash", "http_status_code", "http_content_length",
             "http_uncompressed_body_length", "http_redirects", "http_ssl", "http_version", "failed_due_to_regex"),
    "tcp": ("dns_lookup_time_seconds", "ip_protocol", "ip_addr_hash"),
    "dns": ("dns_answer_rrs", "dns_authority_rrs", "dns_additional_rrs", "dns_query_succeeded"),
}
_OPTIONAL_FACTS = ("ssl_earliest_cert_expiry", "ssl_leaf_cert_expiry", "failed_due_to_regex")
_HTTP_PHASES = ("resolve", "connect", "tls", "processing", "transfer")


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_labels(labels: LabelPairs) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{escape_label_value(value)}"' for name, value in labels) + "}"


def format_value(value: float) -> str:
    if value == 0.0:
        return "0"
    if value == 1.0:
        return "1"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def target_labels(target: Target) -> LabelPairs:
    return (("target", target.name), *sorted(target.labels.items()))


class _TargetSeries:
    """Counters and the histogram of one target, plus its rendered fragments."""

    __slots__ = ("labels", "prefix", "results", "retries", "failures", "buckets", "count", "total", "fragments",
                 "interval", "samples", "heads", "histogram_heads")

    def __init__(self, target: Target) -> None:
        self.labels = target_labels(target)
        self.prefix = format_labels(self.labels)[:-1]  # '{target="x",team="y"' for appending labels
        self.results = {"success": 0, "failure": 0}
        self.retries = 0
        self.failures: dict[str, int] = {}
        self.buckets = [0] * len(DURATION_BUCKETS)
        self.count = 0
        self.total = 0.0
        self.fragments: list[str] = _NO_FRAGMENTS  # one per family, in PROBE_FAMILIES order
        self.interval = target.interval or 0.0
        self.samples: list[Sample] = []
        # Every line starts with the same `name{labels} ` for the life of the target: build
        # each once, so rendering a result is only formatting its values.
        self.heads: dict[object, str] = {}
        self.histogram_heads = [f'tocsin_probe_duration_seconds_bucket{self.prefix},le="{format_value(bound)}"}} '
                                for bound in (*DURATION_BUCKETS, math.inf)]

    def head(self, name: str, labels: LabelPairs) -> str:
        """`name{labels} ` for a sample of this target (labels = the target's plus extras)."""
        extra = labels[len(self.labels):]
        key: object = (name, extra) if extra else name
        head = self.heads.get(key)
        if head is None:
            rendered = "".join(f',{k}="{escape_label_value(v)}"' for k, v in extra)
            head = self.heads[key] = f"{name}{self.prefix}{rendered}}} "
        return head


class ProbeMetrics:
    """The per-target families. Thread-safe: results arrive on the loop, scrapes on web threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, _TargetSeries] = {}
        self._listeners: list[Callable[[str, list[Sample], float], None]] = []

    def subscribe(self, listener: Callable[[str, list[Sample], float], None]) -> None:
        """Call `listener(target, samples, unix_time)` with each new result's samples (the sample store)."""
        self._listeners.append(listener)

    def ensure(self, target: Target) -> None:
        """Register a target (keeping its counters if it exists and its labels are unchanged)."""
        with self._lock:
            series = self._series.get(target.name)
            if series is None or series.labels != target_labels(target):
                self._series[target.name] = _TargetSeries(target)
            else:
                series.interval = target.interval or series.interval

    def remove(self, name: str) -> None:
        with self._lock:
            self._series.pop(name, None)

    def set_interval(self, name: str, interval: float) -> None:
        with self._lock:
            series = self._series.get(name)
            if series is not None:
                series.interval = interval
                if series.fragments is not _NO_FRAGMENTS:
                    series.fragments[_FAMILY_INDEX["tocsin_probe_interval_seconds"]] = (
                        f"{series.head('tocsin_probe_interval_seconds', series.labels)}{format_value(interval)}\n")

    def record(self, result: ProbeResult, interval: float | None = None) -> None:
        """Count and render one result; `interval` is the target's current (maybe stretched) one."""
        with self._lock:
            series = self._series.get(result.target)
            if series is None:  # removed by a reload while the probe ran
                return
            if interval is not None:
                series.interval = interval
            self._count(series, result)
            samples = self._samples(series, result)
            series.samples = samples
            series.fragments = self._render(series, samples)
        for listener in self._listeners:
            listener(result.target, samples, result.started_at + result.duration)

    @staticmethod
    def _count(series: _TargetSeries, result: ProbeResult) -> None:
        series.results["success" if result.success else "failure"] += 1
        series.retries += result.attempts - 1
        if not result.success:
            series.failures[result.reason] = series.failures.get(result.reason, 0) + 1
        for index, bound in enumerate(DURATION_BUCKETS):
            if result.duration <= bound:
                series.buckets[index] += 1
        series.count += 1
        series.total += result.duration

    @staticmethod
    def _samples(series: _TargetSeries, result: ProbeResult) -> list[Sample]:
        """The gauges of one result as (name, extra labels, value); counters are rendered apart."""
        labels = series.labels
        facts = result.facts
        out: list[Sample] = [
            ("probe_success", labels, 1.0 if result.success else 0.0),
            ("probe_duration_seconds", labels, result.duration),
            ("probe_timeout_seconds", labels, result.timeout),
        ]
        for fact in _FACTS_BY_KIND.get(result.kind, ()):
            out.append(("probe_" + fact, labels, facts.get(fact, 0.0)))
        for fact in _OPTIONAL_FACTS:
            if fact in facts and fact not in _FACTS_BY_KIND.get(result.kind, ()):
                out.append(("probe_" + fact, labels, facts[fact]))
        if result.kind == "http":
            for phase in _HTTP_PHASES:
                out.append(("probe_http_duration_seconds", labels + (("phase", phase),),
                            result.phases.get(phase, 0.0)))
        elif result.kind == "dns":
            out.append(("probe_dns_duration_seconds", labels + (("phase", "request"),),
                        result.phases.get("request", 0.0)))
        if result.info.get("tls_version"):
            out.append(("probe_tls_version_info", labels + (("version", result.info["tls_version"]),), 1.0))
        out += [
            ("tocsin_probe_attempts", labels, float(result.attempts)),
            ("tocsin_probe_first_attempt_success", labels, 1.0 if result.first_attempt_success else 0.0),
            ("tocsin_probe_last_run_timestamp_seconds", labels, result.started_at),
            ("tocsin_probe_interval_seconds", labels, series.interval),
        ]
        if not result.success:
            out.append(("tocsin_probe_failure_reason", labels + (("reason", result.reason),), 1.0))
        return out

    @staticmethod
    def _render(series: _TargetSeries, samples: list[Sample]) -> list[str]:
        parts: dict[str, list[str]] = {}
        head = series.head
        for name, labels, value in samples:
            parts.setdefault(name, []).append(f"{head(name, labels)}{format_value(value)}\n")
        labels = series.labels
        parts["tocsin_probes_total"] = [f"{head('tocsin_probes_total', labels + (('result', result),))}{count}\n"
                                        for result, count in series.results.items()]
        parts["tocsin_probe_retries_total"] = [f"{head('tocsin_probe_retries_total', labels)}{series.retries}\n"]
        parts["tocsin_probe_failures_total"] = [
            f"{head('tocsin_probe_failures_total', labels + (('reason', reason),))}{count}\n"
            for reason, count in sorted(series.failures.items())]
        histogram = [f"{bucket_head}{count}\n"
                     for bucket_head, count in zip(series.histogram_heads, (*series.buckets, series.count))]
        histogram.append(f"{head('tocsin_probe_duration_seconds_sum', labels)}{format_value(series.total)}\n")
        histogram.append(f"{head('tocsin_probe_duration_seconds_count', labels)}{series.count}\n")
        parts["tocsin_probe_duration_seconds"] = histogram
        return ["".join(parts[name]) if name in parts else "" for name in PROBE_FAMILIES]

    def render(self) -> str:
        with self._lock:
            rows = [series.fragments for series in self._series.values()]
        out: list[str] = []
        # Columns of the per-target rows are the families: one join per family, no lookups.
        for (name, (kind, help_text)), column in zip(PROBE_FAMILIES.items(), zip(*rows)):
            body = "".join(column)
            if body:
                out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
                out.append(body)
        return "".join(out)


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
        self.reload_success.set(1)
        self.reload_timestamp.set(time.time())

    def render(self) -> str:
        return generate_latest(self.registry).decode()


__all__ = ["ProbeMetrics", "SelfMetrics", "PROBE_FAMILIES", "REASONS"]
