"""The per-target probe series: gauges of each target's last result, counters of all of them.

Per-target series are rendered to text once per probe result and kept as one cell per family,
so a scrape transposes and joins strings instead of walking thousands of metric objects
(prometheus-client's generic path costs about a second at 10 000 targets). The same result's samples go to
the listeners (the rules' sample store), the counters included: they are counted here
once, for /metrics and the store alike, so the store knows no probe metric by name.
"""

from __future__ import annotations

import functools
import threading
import time
from array import array
from collections.abc import Callable, Iterator

from ..config import Target
from ..gofmt import escape_label_value
from ..probes import KINDS, ProbeResult
from .exposition import LabelPairs, MetricSample, family_header, format_labels, format_value

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BUCKET_LES = (*(format_value(bound) for bound in DURATION_BUCKETS), "+Inf")
_SUCCESS, _FAILURE = (("result", "success"),), (("result", "failure"),)

# name -> (type, help). Order is the order on /metrics: every result's gauges, the kinds'
# own families (from the probe registry), then tocsin's per-target series.
PROBE_FAMILIES: dict[str, tuple[str, str]] = {
    "probe_success": ("gauge", "Whether the last probe of the target succeeded (1) or not (0)."),
    "probe_duration_seconds": ("gauge", "How long the last probe took, retries included."),
    "probe_timeout_seconds": ("gauge", "The total deadline of one probe, retries included."),
    **{name: spec for kind in KINDS.values() for name, spec in kind.families.items()},
    "tocsin_probe_attempts": ("gauge", "Attempts used by the last probe (1 = no retry)."),
    "tocsin_probe_first_attempt_success": ("gauge", "Whether the first attempt of the last probe succeeded."),
    "tocsin_probe_failure_reason": ("gauge", "Set to 1 for the failure reason of the last probe, absent when it succeeded."),
    "tocsin_probe_last_run_timestamp_seconds": ("gauge", "When the last probe of the target started (unix time)."),
    "tocsin_probe_interval_seconds": ("gauge", "Current probe interval of the target (stretched while down if configured)."),
    "tocsin_target_maintenance": ("gauge", "Set to 1 while the target is in a maintenance window (not probed), absent otherwise."),
    "tocsin_target_flapping": ("gauge", "Whether the target is flapping (Icinga's weighted state-change percentage)."),
    "tocsin_probes_total": ("counter", "Probes run, by final result."),
    "tocsin_probes_inconclusive_total": ("counter", "Probe timeouts not counted as results: tocsin's own event-loop "
                                         "lag, not the target, used up the deadline."),
    "tocsin_probe_retries_total": ("counter", "Attempts beyond the first."),
    "tocsin_probe_failures_total": ("counter", "Failed probes, by reason."),
    "tocsin_probe_duration_seconds": ("histogram", "Probe durations, for latency SLOs."),
}

_FAMILY_INDEX = {name: index for index, name in enumerate(PROBE_FAMILIES)}
_SHAPES: dict[tuple[int, ...], tuple[int, ...]] = {}  # interned: most targets share a handful

Listener = Callable[[str, list[MetricSample], float], None]


def _everything(_name: str) -> bool:
    return True


def target_labels(target: Target) -> LabelPairs:
    return (("target", target.name), *sorted(target.labels.items()))


@functools.lru_cache(maxsize=4096)
def _extra_labels(extra: LabelPairs) -> str:
    """`,phase="connect"`: the labels a sample adds to its target's, rendered once for all
    targets (phases, reasons, results and `le` repeat across every target)."""
    return "".join(f',{k}="{escape_label_value(v)}"' for k, v in extra)


class _TargetSeries:
    """Counters and the histogram of one target, plus its rendered lines.

    `cells` holds the lines of each family the target has, `shape` which families those
    are (indices into PROBE_FAMILIES, shared by targets alike): a scrape transposes the
    targets of one shape in C (`zip`). A string for every family, a cached head per line
    and the last samples kept as tuples cost 15 KB a target at 10 000 targets; this costs
    about the text (~3 KB) and 1.5 KB."""

    __slots__ = ("labels", "prefix", "successes", "failed", "retries", "failures", "buckets", "count", "total",
                 "cells", "shape", "interval", "inconclusive", "last", "flapping")

    def __init__(self, target: Target) -> None:
        self.labels = target_labels(target)
        self.prefix = format_labels(self.labels)[:-1]  # '{target="x",team="y"' for appending labels
        self.successes = self.failed = self.retries = self.inconclusive = self.count = 0
        self.failures: dict[str, int] | None = None  # reason -> failed probes, once one failed
        self.buckets = array("Q", bytes(8 * len(DURATION_BUCKETS)))
        self.total = 0.0
        self.cells: tuple[str, ...] = ()
        self.shape: tuple[int, ...] = ()
        self.last: ProbeResult | None = None  # the last conclusive result, its gauges told again when voided
        self.flapping = False
        self.interval = target.interval

    def head(self, name: str, labels: LabelPairs) -> str:
        """`name{labels} ` for a sample of this target (labels = the target's plus extras)."""
        extra = labels[len(self.labels):]
        return f"{name}{self.prefix}{_extra_labels(extra) if extra else ''}}} "

    def set_cells(self, cells: dict[int, str]) -> None:
        """Family index -> its lines (non-empty), as the new cells and shape."""
        shape = tuple(sorted(cells))
        self.shape = _SHAPES.setdefault(shape, shape)
        self.cells = tuple(cells[index] for index in shape)

    def replace(self, name: str, lines: str) -> None:
        """Put `lines` in place of family `name`'s (new tuples: a scrape may be reading the old)."""
        cells = dict(zip(self.shape, self.cells, strict=True))
        cells[_FAMILY_INDEX[name]] = lines
        self.set_cells({index: text for index, text in cells.items() if text})


class ProbeMetrics:
    """The per-target families. Thread-safe: results arrive on the loop, scrapes on web threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, _TargetSeries] = {}
        self._listeners: list[tuple[Listener, Callable[[str], bool]]] = []

    def subscribe(self, listener: Listener, wants: Callable[[str], bool] = _everything) -> None:
        """Call `listener(target, samples, unix_time)` with each new result's samples (the sample
        store): its gauges, and the target's counters of the families `wants(name)` accepts
        (asked per result, so a listener's interest may change; building counter samples no
        one reads would cost every result)."""
        self._listeners.append((listener, wants))

    def ensure(self, target: Target) -> None:
        """Register a target (keeping its counters if it exists and its labels are unchanged)."""
        with self._lock:
            series = self._series.get(target.name)
            if series is None or series.labels != target_labels(target):
                self._series[target.name] = _TargetSeries(target)
            else:
                series.interval = target.interval

    def remove(self, name: str) -> None:
        with self._lock:
            self._series.pop(name, None)

    def set_interval(self, name: str, interval: float) -> None:
        with self._lock:
            series = self._series.get(name)
            if series is not None:
                series.interval = interval
                if series.cells:
                    series.replace("tocsin_probe_interval_seconds",
                                   f"{series.head('tocsin_probe_interval_seconds', series.labels)}{format_value(interval)}\n")

    def set_maintenance(self, name: str, inside: bool) -> None:
        """Show (1) or drop the target's maintenance gauge; tell the listeners either way, so
        that a rule's `unless ... tocsin_target_maintenance == 1` ends with the window."""
        with self._lock:
            series = self._series.get(name)
            if series is None:
                return
            series.replace("tocsin_target_maintenance",
                           f"{series.head('tocsin_target_maintenance', series.labels)}1\n" if inside else "")
            sample: MetricSample = ("tocsin_target_maintenance", series.labels, 1.0 if inside else 0.0)
            listeners = [listener for listener, _ in self._listeners]
        for listener in listeners:
            listener(name, [sample], time.time())

    def record(self, result: ProbeResult, interval: float | None = None, flapping: bool = False) -> None:
        """Count and render one result; `interval` is the target's current (maybe stretched) one,
        `flapping` whether the target flaps now (flapping.py)."""
        with self._lock:
            series = self._series.get(result.target)
            if series is None:  # removed by a reload while the probe ran
                return
            if interval is not None:
                series.interval = interval
            series.flapping = flapping
            series.last = result
            self._count(series, result)
            gauges = self._gauges(series, result)
            series.set_cells(self._render(series, gauges))
            deliveries = [(listener, gauges + self._counter_samples(series, wants))
                          for listener, wants in self._listeners]
        for listener, samples in deliveries:
            listener(result.target, samples, result.started_at + result.duration)

    def record_inconclusive(self, target: str, unix_time: float) -> None:
        """Count a result tocsin's own lag voided (overload.py); record nothing else of it.

        The gauges keep describing the last conclusive result, on /metrics and in the store,
        which gets them again (with the counters) so no series of the target goes stale."""
        with self._lock:
            series = self._series.get(target)
            if series is None:
                return
            series.inconclusive += 1
            series.replace("tocsin_probes_inconclusive_total", self._inconclusive_line(series))
            gauges = [] if series.last is None else self._gauges(series, series.last)
            deliveries = [(listener, gauges + self._counter_samples(series, wants))
                          for listener, wants in self._listeners]
        for listener, samples in deliveries:
            listener(target, samples, unix_time)

    @staticmethod
    def _inconclusive_line(series: _TargetSeries) -> str:
        return f"{series.head('tocsin_probes_inconclusive_total', series.labels)}{series.inconclusive}\n"

    @staticmethod
    def _count(series: _TargetSeries, result: ProbeResult) -> None:
        if result.success:
            series.successes += 1
        else:
            series.failed += 1
            if series.failures is None:
                series.failures = {}
            series.failures[result.reason] = series.failures.get(result.reason, 0) + 1
        series.retries += result.attempts - 1
        for index, bound in enumerate(DURATION_BUCKETS):
            if result.duration <= bound:
                series.buckets[index] += 1
        series.count += 1
        series.total += result.duration

    @staticmethod
    def _gauges(series: _TargetSeries, result: ProbeResult) -> list[MetricSample]:
        """The gauges of one result as (name, labels, value); the kind says which it reports."""
        labels = series.labels
        facts = result.facts
        kind = KINDS[result.kind]
        out: list[MetricSample] = [
            ("probe_success", labels, 1.0 if result.success else 0.0),
            ("probe_duration_seconds", labels, result.duration),
            ("probe_timeout_seconds", labels, result.timeout),
        ]
        for fact, name in kind.fact_families:
            out.append((name, labels, facts.get(fact, 0.0)))
        for fact, name in kind.optional_fact_families:
            if fact in facts:
                out.append((name, labels, facts[fact]))
        if kind.phase_family is not None:
            family, phases = kind.phase_family, result.phases
            for phase in kind.phases:
                out.append((family, labels + (("phase", phase),), phases.get(phase, 0.0)))
        for fact, family, label_pair in kind.labelled_facts:
            if fact in facts:
                out.append((family, labels + (label_pair,), facts[fact]))
        info = result.info
        for key, family, label in kind.info_gauges:
            if isinstance(key, str):
                if info.get(key):
                    out.append((family, labels + ((label, info[key]),), 1.0))  # type: ignore[operator]
            elif info.get(key[0]):
                out.append((family, labels + tuple(zip(label, (info.get(k, "") for k in key), strict=True)), 1.0))
        out += [
            ("tocsin_probe_attempts", labels, float(result.attempts)),
            ("tocsin_probe_first_attempt_success", labels, 1.0 if result.first_attempt_success else 0.0),
            ("tocsin_probe_last_run_timestamp_seconds", labels, result.started_at),
            ("tocsin_probe_interval_seconds", labels, series.interval),
            ("tocsin_target_flapping", labels, 1.0 if series.flapping else 0.0),
        ]
        if not result.success:
            out.append(("tocsin_probe_failure_reason", labels + (("reason", result.reason),), 1.0))
        return out

    @staticmethod
    def _counter_samples(series: _TargetSeries, wants: Callable[[str], bool]) -> list[MetricSample]:
        """The target's counters as samples, the same values `_render` writes, for the families
        `wants` accepts."""
        labels = series.labels
        out: list[MetricSample] = []
        if wants("tocsin_probes_total"):
            out += [("tocsin_probes_total", labels + _SUCCESS, float(series.successes)),
                    ("tocsin_probes_total", labels + _FAILURE, float(series.failed))]
        if wants("tocsin_probes_inconclusive_total"):
            out.append(("tocsin_probes_inconclusive_total", labels, float(series.inconclusive)))
        if wants("tocsin_probe_retries_total"):
            out.append(("tocsin_probe_retries_total", labels, float(series.retries)))
        if wants("tocsin_probe_failures_total") and series.failures:
            out += [("tocsin_probe_failures_total", labels + (("reason", reason),), float(count))
                    for reason, count in series.failures.items()]
        if wants("tocsin_probe_duration_seconds_count"):
            out.append(("tocsin_probe_duration_seconds_count", labels, float(series.count)))
        if wants("tocsin_probe_duration_seconds_sum"):
            out.append(("tocsin_probe_duration_seconds_sum", labels, series.total))
        if wants("tocsin_probe_duration_seconds_bucket"):
            out += [("tocsin_probe_duration_seconds_bucket", labels + (("le", le),), float(count))
                    for le, count in zip(_BUCKET_LES, (*series.buckets, series.count), strict=True)]
        return out

    @staticmethod
    def _render(series: _TargetSeries, samples: list[MetricSample]) -> dict[int, str]:
        """The target's lines by family index."""
        parts: dict[str, list[str]] = {}
        prefix, own = series.prefix, len(series.labels)
        for name, labels, value in samples:
            extra = _extra_labels(labels[own:]) if len(labels) > own else ""
            parts.setdefault(name, []).append(f"{name}{prefix}{extra}}} {format_value(value)}\n")
        parts["tocsin_probes_total"] = [f'tocsin_probes_total{prefix},result="success"}} {series.successes}\n',
                                        f'tocsin_probes_total{prefix},result="failure"}} {series.failed}\n']
        parts["tocsin_probes_inconclusive_total"] = [ProbeMetrics._inconclusive_line(series)]
        parts["tocsin_probe_retries_total"] = [f"tocsin_probe_retries_total{prefix}}} {series.retries}\n"]
        if series.failures:
            parts["tocsin_probe_failures_total"] = [
                f"tocsin_probe_failures_total{prefix}{_extra_labels((('reason', reason),))}}} {count}\n"
                for reason, count in sorted(series.failures.items())]
        histogram = [f'tocsin_probe_duration_seconds_bucket{prefix},le="{le}"}} {count}\n'
                     for le, count in zip(_BUCKET_LES, (*series.buckets, series.count), strict=True)]
        histogram.append(f"tocsin_probe_duration_seconds_sum{prefix}}} {format_value(series.total)}\n")
        histogram.append(f"tocsin_probe_duration_seconds_count{prefix}}} {series.count}\n")
        parts["tocsin_probe_duration_seconds"] = histogram
        return {_FAMILY_INDEX[name]: "".join(lines) for name, lines in parts.items()}

    def render(self) -> str:
        return "".join(self.render_families())

    def render_families(self) -> Iterator[str]:
        """Each family's header and lines, one family at a time: a scrape then holds one
        family's text at once beside what it has sent, not all of /metrics twice."""
        groups: dict[tuple[int, ...], list[tuple[str, ...]]] = {}
        with self._lock:
            for series in self._series.values():
                if series.cells:
                    groups.setdefault(series.shape, []).append(series.cells)
        columns: dict[int, list[tuple[str, ...]]] = {}
        for shape, rows in groups.items():  # the targets of one shape, transposed: a column per family
            for index, column in zip(shape, zip(*rows, strict=True), strict=True):
                columns.setdefault(index, []).append(column)
        del groups
        for index, (name, (kind, help_text)) in enumerate(PROBE_FAMILIES.items()):
            parts = columns.pop(index, None)
            if parts:
                yield family_header(name, kind, help_text) + "".join(["".join(column) for column in parts])
