"""`tocsin demo-target`: a small flaky service to watch tocsin work against.

`/` and `/health` answer 200 with JSON, `/simulate/error` fails 80 % of the time with
500, `/simulate/slow` answers after 1–5 s.
"""

from __future__ import annotations

import json
import logging
import random
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("tocsin.demo")


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
        if path in ("/", "/health"):
            self._reply(200, {"status": "ok", "service": "demo", "traceparent": trace})
        elif path == "/simulate/error":
            if random.random() < 0.8:
                self._reply(500, {"status": "error", "error": "simulated failure"})
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
