"""The lifecycle the project's own test peers share: a threaded HTTP/1.1 server on loopback,
started in a daemon thread, stopped and closed on exit."""

from __future__ import annotations

import http.server
import socketserver
import threading
from typing import Optional


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class LoopbackServer:
    """Base class: `handler` gets the peer as `self.server.owner`."""

    def __init__(self, handler: type, port: int = 0, host: str = "127.0.0.1"):
        self._srv = _Server((host, port), handler)
        self._srv.owner = self  # type: ignore[attr-defined]
        self.host = host
        self.port = self._srv.server_address[1]
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self):
        self._thread = threading.Thread(target=self._srv.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
