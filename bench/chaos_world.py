"""The world of bench/chaos.py: flapping HTTP targets and a webhook that is sometimes down.

Both follow schedules drawn in advance from their own random generator, as functions of the
wall clock since the run's start, so a seed gives the same scripted world on every run (what
tocsin sees of it still depends on when its probes land). Standard library only; loopback.
"""

from __future__ import annotations

import json
import random
import threading
import time
from bisect import bisect_right
from http.server import BaseHTTPRequestHandler
from typing import Any

import common as cm

HANG_S = 5.0           # a hanging webhook holds the request this long, then closes without answering
SCHEDULE_S = 3600.0    # schedules are drawn this far ahead


class _Quiet(BaseHTTPRequestHandler):
    """A killed daemon resets its connections: that is the point here, not an error to print."""

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            pass


class FlappingTargets:
    """N targets on one server, /t/<i>: 200 while up, 503 while down. Each target's
    up and down stretches last 0.1-5 s (a fifth of them under 0.5 s: flaps that
    a 300 ms probe interval may or may not see)."""

    def __init__(self, n: int, rng: random.Random, t0: float) -> None:
        self.t0 = t0
        self.frozen_at: float | None = None
        self.toggles: list[list[float]] = []
        for _ in range(n):
            t, times = rng.uniform(0, 3), []
            while t < SCHEDULE_S:
                times.append(t)
                t += rng.uniform(0.1, 0.5) if rng.random() < 0.2 else rng.uniform(0.5, 5.0)
            self.toggles.append(times)
        self.port = cm.free_port()
        world = self

        class Handler(_Quiet):
            def do_GET(self) -> None:  # noqa: N802
                try:
                    i = int(self.path.rsplit("/", 1)[1])
                    up = world.up(i, time.time())
                except (ValueError, IndexError):
                    up = False
                body = b'{"status": "ok"}\n' if up else b'{"status": "down"}\n'
                self.send_response(200 if up else 503)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = cm.serve_in_thread(self.port, Handler, poll_interval=0.05)

    def up(self, i: int, now: float) -> bool:
        if self.frozen_at is not None:
            now = self.frozen_at
        return bisect_right(self.toggles[i], now - self.t0) % 2 == 0  # up until the first toggle

    def urls(self) -> list[tuple[str, str]]:
        return [(f"chaos-{i:02d}", f"http://127.0.0.1:{self.port}/t/{i}") for i in range(len(self.toggles))]

    def freeze(self) -> None:
        """Every target keeps the state it has now (the run's quiet end)."""
        self.frozen_at = time.time()

    def flaps(self, end: float) -> int:
        """Scripted up/down changes until `end` (or the freeze)."""
        until = (self.frozen_at or end) - self.t0
        return sum(bisect_right(times, until) for times in self.toggles)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class MoodyWebhook:
    """A webhook receiver that, by a schedule, answers 200 (60 %), 500 (20 %) or hangs (20 %),
    each mood for 1-6 s. Records every attempt; `delivered` holds the ones answered 200."""

    def __init__(self, rng: random.Random, t0: float) -> None:
        self.t0 = t0
        self.healed = False
        self.starts: list[float] = []
        self.moods: list[str] = []
        t = 0.0
        while t < SCHEDULE_S:
            self.starts.append(t)
            r = rng.random()
            self.moods.append("ok" if r < 0.6 else "500" if r < 0.8 else "hang")
            t += rng.uniform(1.0, 6.0)
        self.delivered: list[dict] = []
        self.attempts = 0
        self.by_mode = {"ok": 0, "500": 0, "hang": 0}
        self.last_attempt = 0.0
        self._lock = threading.Lock()
        self.port = cm.free_port()
        hook = self

        class Handler(_Quiet):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                mood = hook.mood(now)
                with hook._lock:
                    hook.attempts += 1
                    hook.by_mode[mood] += 1
                    hook.last_attempt = now
                if mood == "hang":
                    time.sleep(HANG_S)
                    self.close_connection = True
                    return
                if mood == "500":
                    self._answer(500)
                    return
                payload = json.loads(body)
                record = {"at": now, "key": self.headers.get("Idempotency-Key", ""),
                          "group_key": payload.get("groupKey", ""), "status": payload.get("status"),
                          "alerts": [{"target": a["labels"].get("target", ""), "status": a["status"],
                                      "startsAt": a["startsAt"], "endsAt": a.get("endsAt")}
                                     for a in payload.get("alerts", [])]}
                with hook._lock:
                    hook.delivered.append(record)
                self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = cm.serve_in_thread(self.port, Handler, poll_interval=0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def mood(self, now: float) -> str:
        if self.healed:
            return "ok"
        return self.moods[max(0, bisect_right(self.starts, now - self.t0) - 1)]

    def heal(self) -> None:
        self.healed = True

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
