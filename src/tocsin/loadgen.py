"""`tocsin load`: concurrent GETs against a service, then successes, failures and latency.

The exercise tool of the demo: load the demo target (or any service) while tocsin watches
it, and see what its users would see. Each worker thread keeps its own keep-alive session
(a load test measures the service, not connection set-up); requests go to the URLs in
turn. A request succeeds when it gets a status below 400 before its timeout; a failure is
counted by its reason (`HTTP 500`, `timeout`, `connection refused`), so the summary says
*how* it failed. Percentiles are nearest-rank over every request, failures included: a
timeout is latency a user waited through.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TextIO

import requests

DEFAULT_REQUESTS = 500


@dataclass
class Outcome:
    url: str
    success: bool
    seconds: float
    reason: str = ""


@dataclass
class LoadRun:
    """What a run did; `outcomes` in completion order."""

    urls: Sequence[str]
    concurrency: int
    elapsed: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(1 for o in self.outcomes if not o.success)

    @property
    def error_rate(self) -> float:
        return self.failures / len(self.outcomes) if self.outcomes else 0.0


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout"
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "reset" in text:
        return "connection reset"
    if "name or service not known" in text or "name resolution" in text:
        return "unknown host"
    return type(exc).__name__


def run_load(urls: Sequence[str], requests_total: int | None = DEFAULT_REQUESTS, concurrency: int = 20,
             duration: float | None = None, timeout: float = 10.0,
             progress: Callable[[int, LoadRun], None] | None = None) -> LoadRun:
    """Send `requests_total` requests (or as many as fit in `duration`, or both limits) with
    `concurrency` workers; never raises for the service's fault."""
    if requests_total is None and duration is None:
        requests_total = DEFAULT_REQUESTS
    run = LoadRun(urls=list(urls), concurrency=concurrency)
    lock = threading.Lock()
    issued = 0
    started = time.monotonic()
    stop_at = started + duration if duration is not None else math.inf
    local = threading.local()

    def next_url() -> str | None:
        nonlocal issued
        with lock:
            if (requests_total is not None and issued >= requests_total) or time.monotonic() >= stop_at:
                return None
            issued += 1
            return run.urls[(issued - 1) % len(run.urls)]

    def worker() -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        while (url := next_url()) is not None:
            begin = time.monotonic()
            try:
                response = session.get(url, timeout=timeout)
                outcome = Outcome(url, response.status_code < 400, time.monotonic() - begin,
                                  "" if response.status_code < 400 else f"HTTP {response.status_code}")
            except requests.RequestException as exc:
                outcome = Outcome(url, False, time.monotonic() - begin, _reason(exc))
            with lock:
                run.outcomes.append(outcome)
                done = len(run.outcomes)
            if progress is not None:
                progress(done, run)
        session.close()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load") as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    run.elapsed = time.monotonic() - started
    return run


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _latency_line(seconds: Sequence[float]) -> str:
    values = sorted(seconds)
    if not values:
        return "no requests"
    return (f"min {_ms(values[0])}  avg {_ms(sum(values) / len(values))}  p50 {_ms(percentile(values, 0.5))}  "
            f"p95 {_ms(percentile(values, 0.95))}  p99 {_ms(percentile(values, 0.99))}  max {_ms(values[-1])}")


def summary(run: LoadRun) -> str:
    total = len(run.outcomes)
    ok = total - run.failures

    def share(count: int) -> str:
        return f"{100 * count / total:.1f} %" if total else "-"

    lines = [f"load: {total} requests to {len(run.urls)} URL{'s' if len(run.urls) != 1 else ''} "
             f"in {run.elapsed:.2f} s, concurrency {run.concurrency}",
             f"  success     {ok} ({share(ok)})"]
    reasons = Counter(o.reason for o in run.outcomes if not o.success)
    failures = f"  failures    {run.failures} ({share(run.failures)})"
    if reasons:
        failures += ": " + ", ".join(f"{reason} ×{count}" for reason, count in reasons.most_common())
    lines.append(failures)
    lines.append(f"  throughput  {total / run.elapsed if run.elapsed > 0 else 0:.1f} requests/s")
    lines.append(f"  latency     {_latency_line([o.seconds for o in run.outcomes])}")
    if len(run.urls) > 1:
        for url in run.urls:
            mine = [o for o in run.outcomes if o.url == url]
            good = sum(1 for o in mine if o.success)
            lines.append(f"  {url}: {len(mine)} requests, {good} succeeded, "
                         f"p50 {_ms(percentile(sorted(o.seconds for o in mine), 0.5)) if mine else '-'}")
    return "\n".join(lines)


class ProgressBar:
    """A one-line bar on a terminal, redrawn at most ten times a second."""

    def __init__(self, out: TextIO, total: int | None, duration: float | None) -> None:
        self.out, self.total, self.duration = out, total, duration
        self.started = time.monotonic()
        self.drawn = 0.0
        self.lock = threading.Lock()

    def __call__(self, done: int, run: LoadRun) -> None:
        now = time.monotonic()
        if now - self.drawn < 0.1 and done != self.total:
            return
        with self.lock:
            self.drawn = now
            if self.total is not None:
                fraction = done / self.total
            else:
                fraction = min(1.0, (now - self.started) / (self.duration or 1))
            bar = "#" * int(30 * fraction)
            self.out.write(f"\r[{bar:<30}] {done} requests, {run.failures} failed ")
            self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()


def main(urls: Sequence[str], requests_total: int | None, concurrency: int, duration: float | None,
         timeout: float, max_error_rate: float | None, show_progress: bool | None = None) -> int:
    """The command: run, print the summary, exit 1 when the error rate exceeds `max_error_rate`."""
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    total = requests_total if requests_total is not None or duration is not None else DEFAULT_REQUESTS
    bar = ProgressBar(sys.stderr, total, duration) if show_progress else None
    try:
        run = run_load(urls, total, concurrency, duration, timeout, bar)
    finally:
        if bar is not None:
            bar.close()
    print(summary(run))
    if max_error_rate is not None and run.error_rate > max_error_rate:
        print(f"load: error rate {100 * run.error_rate:.1f} % exceeds {100 * max_error_rate:.1f} %", file=sys.stderr)
        return 1
    return 0
