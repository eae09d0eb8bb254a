"""`tocsin demo-target`: a small flaky service to watch tocsin work against.

`/` and `/health` answer 200 with JSON, `/simulate/error` fails 80 % of the time with
500, `/simulate/slow` answers after 1–5 s, and `/simulate/overload` answers 503 while the
service is busy: more than `BUSY_RATE` requests a second (to any path) over the last
`BUSY_WINDOW` seconds. That one is what `make demo` watches: `tocsin load` makes the service
busy, the target goes down and its alert fires; the load ends, it comes back and the alert
resolves — one clear cause, in a minute, where a random failure would fire and resolve at
random.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("tocsin.demo")

BUSY_RATE = 20.0    # requests a second above which the service is busy (probes are a few a second)
BUSY_WINDOW = 2.0   # seconds of requests the rate is taken over


class Traffic:
    """The arrival times of the last requests, enough to tell the rate over BUSY_WINDOW."""

    def __init__(self) -> None:
        self._times: deque[float] = deque(maxlen=int(BUSY_RATE * BUSY_WINDOW) + 1)
        self._lock = threading.Lock()

    def arrived(self) -> None:
        with self._lock:
            self._times.append(time.monotonic())

    def busy(self) -> bool:
        """More than BUSY_RATE × BUSY_WINDOW requests within the last BUSY_WINDOW seconds."""
        with self._lock:
            full = len(self._times) == self._times.maxlen
            return full and time.monotonic() - self._times[0] <= BUSY_WINDOW


TRAFFIC = Traffic()


class _DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tocsin-demo"

    def log_message(self, format: str, *args) -> None:
        log.debug(format, *args)

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the prober gave up (its deadline passed)
            pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        trace = self.headers.get("traceparent", "")
        TRAFFIC.arrived()
        if path in ("/", "/health"):
            self._reply(200, {"status": "ok", "service": "demo", "traceparent": trace})
        elif path == "/simulate/error":
            if random.random() < 0.8:
                self._reply(500, {"status": "error", "error": "simulated failure"})
            else:
                self._reply(200, {"status": "ok"})
        elif path == "/simulate/overload":
            if TRAFFIC.busy():
                self._reply(503, {"status": "error", "error": "overloaded: too many requests"})
            else:
                self._reply(200, {"status": "ok"})
        elif path == "/simulate/slow":
            delay = random.uniform(1.0, 5.0)
            time.sleep(delay)
            self._reply(200, {"status": "ok", "delay_seconds": round(delay, 3)})
        else:
            self._reply(404, {"status": "error", "error": "not found"})


def serve_demo(host: str, port: int) -> None:
    server = ThreadingHTTPServer((host, port), _DemoHandler)
    server.daemon_threads = True
    print(f"demo target listening on http://{host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
