"""A loopback HTTP service for the status page tests: an up, a down and a flapping path."""

from __future__ import annotations

import http.server
import itertools
import threading
import time

from conftest import free_port


class Service:
    """/up answers 200, /down 500, /flap 200 and 500 in turn; counts the requests it got."""

    def __init__(self) -> None:
        flips = itertools.count()
        self.times: list[tuple[float, str]] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                service.times.append((time.time(), self.path))
                ok = self.path == "/up" or (self.path == "/flap" and next(flips) % 2 == 0)
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
