"""A TCP port a test opens and closes under a running daemon: a target that goes up and down."""

from __future__ import annotations

import socket
import threading

from conftest import free_port


class Port:
    """A TCP port that accepts (target up) or refuses (target down)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()

    def up(self) -> None:
        self._sock = sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        sock.settimeout(0.05)
        self._stop.clear()

        def accept() -> None:
            while not self._stop.is_set():
                try:
                    sock.accept()[0].close()
                except OSError:
                    pass

        threading.Thread(target=accept, daemon=True).start()

    def down(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
