"""The threads rule groups are evaluated on: a few, so one expensive group cannot starve the rest.

Evaluation is CPU work and must stay off the event loop. With a single worker thread, one
group whose rule runs for a minute (a `[1w:1ms]` subquery) held up every other group, and
shutdown waited for it. Here each group has at most one evaluation in flight (its loop
awaits it), and up to `size` groups evaluate at once: a runaway group holds one thread
while the others keep their schedule (the GIL shares the CPU between them in 5 ms slices).

The threads are daemon threads: Python cannot interrupt a thread, so at shutdown an
evaluation still running is abandoned rather than waited for, and the process exits within
its stop timeout.

Progress, for the watchdog: `stalled_for()` is how long evaluations have been waiting or
running without any of them completing. Idle time does not count; a single slow group does
not count either as long as others complete. It grows only when every worker is stuck
(or the pool stopped working), which is what a restart can cure.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger("tocsin.rules")

DEFAULT_WORKERS = 4


class EvaluationPool:
    """Up to `size` daemon threads running submitted calls; `close()` never waits for them."""

    def __init__(self, size: int = DEFAULT_WORKERS, name: str = "rules") -> None:
        self.size = max(1, size)
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._unfinished = 0
        self._last_progress = time.monotonic()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("evaluation pool is closed")
            if self._unfinished == 0:
                self._last_progress = time.monotonic()  # idle time is not a stall
            self._unfinished += 1
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1 if self._idle else 0
        self._queue.put((future, fn, args))
        return future

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`submit` for the event loop; cancelling the await drops the call if it has not started."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the future
                    future.set_exception(exc)
            with self._lock:
                self._unfinished -= 1
                self._last_progress = time.monotonic()
                self._idle += 1

    def stalled_for(self, now: float | None = None) -> float:
        """Seconds that submitted evaluations have waited or run with none completing (0 if idle)."""
        with self._lock:
            if self._unfinished == 0:
                return 0.0
            return max(0.0, (time.monotonic() if now is None else now) - self._last_progress)

    def close(self) -> None:
        """Stop taking work; idle threads end, a running evaluation is abandoned (daemon thread)."""
        with self._lock:
            self._closed = True
            threads = len(self._threads)
        for _ in range(threads):
            self._queue.put(None)
