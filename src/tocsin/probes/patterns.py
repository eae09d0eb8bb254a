"""Content patterns (HTTP body, TCP expect): RE2, and never on the event loop when it could be slow.

RE2 runs in time linear in text × program size, but the constant is large when its DFA
runs out of memory on an adversarial text: about 4 ns per byte per instruction (a
400-instruction pattern takes 1.6 s on 1 MiB), and asking for capture groups makes it
far worse (`(.*a){20}` on 1 MiB: 0.8 s with groups, 5 ms without). So patterns are
compiled without captures (a probe only asks whether it matched), and a search whose
worst case exceeds about a millisecond runs on one worker thread (RE2 releases the GIL)
awaited under the probe's deadline: a search not yet started when the deadline passes is
cancelled; one already running finishes on that thread without holding the event loop.
One thread, not one per probe: a costly pattern can take at most one core.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

import re2

# Text bytes × program instructions searched inline: ~1 ms at RE2's worst measured rate.
INLINE_BUDGET = 250_000

_pool: list[ThreadPoolExecutor] = []


@functools.lru_cache(maxsize=1024)
def compiled(pattern: str, multiline: bool = False) -> tuple["re2._Regexp", int]:
    """The pattern compiled for yes/no searches, and its program size (the cost per byte)."""
    options = re2.Options()
    options.never_capture = True
    options.log_errors = False  # "DFA out of memory" is RE2 falling back, not an error of ours
    regexp = re2.compile((b"(?m)" if multiline else b"") + pattern.encode(), options)
    return regexp, regexp.programsize


def _executor() -> ThreadPoolExecutor:
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocsin-pattern"))
    return _pool[0]


def _found(regexp: "re2._Regexp", text: bytes) -> bool:
    return regexp.search(text) is not None


async def search(pattern: str, text: bytes, multiline: bool = False) -> bool:
    """Whether `pattern` occurs in `text`; cheap searches inline, costly ones off the loop."""
    regexp, cost_per_byte = compiled(pattern, multiline)
    if len(text) * cost_per_byte <= INLINE_BUDGET:
        return regexp.search(text) is not None
    return await asyncio.get_running_loop().run_in_executor(_executor(), _found, regexp, bytes(text))
