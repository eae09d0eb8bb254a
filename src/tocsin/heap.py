"""How the daemon's memory is managed beyond what Python does by default.

Two measured problems, one function each:

- `settle`: start-up allocates the configuration and every target's state and job, hundreds
  of thousands of objects and none of them garbage; every full collection walked all of it
  again (0.3 s at 10 000 targets, a dozen times a minute).
- `map_large_buffers`: a scrape of 10 000 targets builds about 30 MB of text in parts of a
  megabyte. glibc raises its mmap threshold to the size of the largest block freed, so after
  the first scrape those parts come from the heap, whose freed space is seldom returned: a
  shard scraped every few seconds grew from 205 to 290 MiB. With the threshold pinned, a large
  block is mapped and unmapped, and RSS stays at 210 MiB.
"""

from __future__ import annotations

import ctypes
import gc
import logging

log = logging.getLogger("tocsin")

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BLOCK = 256 * 1024  # blocks at least this large are mapped and unmapped, never kept in the heap


def settle() -> None:
    """Move what exists now (configuration, jobs, per-target state) out of the collector's sight.

    Frozen objects that die later are still freed by reference counting; only garbage
    cycles among them would stay, and configuration objects form none. Per-probe garbage is
    freed by reference counting too; a young collection only walks what is alive, and with
    probes in flight that is mostly their coroutines and futures, which die a few
    milliseconds later. Every 5 000 allocations the collector walked them 16 times a second
    (40 ms of CPU a second at 1 000 probes/s); every 30 000 it walks far fewer of them
    (4 ms a second), for a longer pause now and then (a middle collection, ~0.1 s).
    """
    gc.set_threshold(30_000, 10, 100)
    gc.freeze()
    gc.enable()  # off during start-up (daemon.run_daemon)


def map_large_buffers() -> bool:
    """Pin glibc's mmap threshold at LARGE_BLOCK (see the module's docstring). False where
    the C library is not glibc (musl maps large blocks anyway) or refuses."""
    # The process's own symbols, the C library's among them: ctypes.util.find_library("c") would
    # run ldconfig and cost a MiB of imports.
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK) == 1
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused")
    return done
