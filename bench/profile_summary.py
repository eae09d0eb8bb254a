#!/usr/bin/env python3
"""Digest a py-spy collapsed-stack profile (`py-spy record --format raw`) of tocsin.

Prints the hottest functions by own time and by inclusive time, and the share of each part
of the probe path (scheduler, connect, send, read, close, metrics, sample store, event loop).
A stack belongs to the part matched by its deepest frame that matches any part (a probe's
connect belongs to "connect", not to the APScheduler job that runs the probe). Stacks that end
in a blocking wait (epoll_wait with a timeout, the web server's poll, an idle thread-pool worker)
are counted apart and left out of the percentages: py-spy's idle detection does not recognise
them all, and they are not work.

    python bench/profile_summary.py bench/results/profile/p1-1.txt [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

WAITS = ("EpollSelector.select (", "_PollLikeSelector.select (", "_worker (concurrent/futures/thread.py",
         "Condition.wait (", "Event.wait (", "_wait_for_tstate_lock (")

# (part, frame patterns), most specific first; see the module's docstring for how a stack is assigned.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("metrics: ProbeMetrics.record/_render/_samples, set_interval", ("tocsin/metrics.py",)),
    ("sample store / rules (rules/store, rules)", ("tocsin/rules", "tocsin/promql")),
    ("web thread: /metrics scrape, readiness", ("tocsin/web/", "socketserver.py", "http/server.py")),
    ("APScheduler: wakeup, _process_jobs, submit, triggers, job store", ("apscheduler/",)),
    ("connect: resolve, socket(), connect(), transport set-up", (
        "open_connection ", "create_connection ", "_sock_connect", "sock_connect ", "_ensure_resolved ",
        "_ipaddr_info ", "_make_socket_transport ", "_SelectorTransport.__init__ ", "socket.__init__ ",
        "_SelectorSocketTransport.__init__ ", "resolve (tocsin", "connect (tocsin")),
    ("send request: transport.write -> send()", ("_SelectorSocketTransport.write ", "StreamWriter.write ")),
    ("close: transport close, connection_lost, socket close", (
        "_call_connection_lost ", "Connection.close ", "socket.close ", "_real_close ", "_SelectorTransport.close ")),
    ("read response: data_received, StreamReader", (
        "_read_ready", "data_received ", "readuntil ", "readexactly ", "StreamReader.")),
    ("http probe own code: request bytes, head parsing, urlsplit", (
        "tocsin/probes/http.py", "urllib/parse.py")),
    ("probe wrappers: scheduler._run, retry, timeout_at, log context", (
        "tocsin/", "asyncio/timeouts.py", "contextlib.py")),
    ("asyncio event loop: _run_once, handles, futures, self-pipe", ("asyncio/",)),
    ("other", ("",)),
]

_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    m = _FRAME.match(frame)
    return f"{m.group(1)} ({m.group(2)})" if m else frame


def assign(frames: list[str]) -> str:
    for frame in reversed(frames):
        for part, patterns in PARTS[:-1]:
            if any(p in frame for p in patterns):
                return part
    return PARTS[-1][0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    parts: collections.Counter[str] = collections.Counter()
    total = waits = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1].startswith(WAITS):
            waits += n
            continue
        total += n
        names = [frame_name(f) for f in frames]
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
        parts[assign(frames)] += n
    if not total:
        print("no samples")
        return 1
    print(f"{total} busy samples ({waits} more in blocking waits, left out)\n\nparts of the work:")
    for part, _ in PARTS:
        print(f"  {100 * parts[part] / total:5.1f}%  {part}")
    print(f"\nown time, top {args.top}:")
    for name, n in own.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    print(f"\ninclusive time, top {args.top} (coroutine stacks are cut at task steps):")
    for name, n in inclusive.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
