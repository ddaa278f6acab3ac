#!/usr/bin/env python3
"""A tiny loopback HTTP/1.1 server that records what it receives.

Every request is recorded as a ``Captured`` (method, raw path, headers in
arrival order, de-chunked body, whether it came chunked). The reply is
scripted: ``push(...)`` queues one-shot replies, ``set_default(...)`` sets the
reply used when the queue is empty. The default default mimics moto's
docker-free Invoke: 200, ``application/json``, the request body echoed.

    with CaptureUpstream() as up:
        up.push(200, {"X-Amz-Function-Error": "Unhandled"}, b'{"errorMessage":"boom"}')
        ...  # point Envoy's cluster at 127.0.0.1:up.port
        req = up.wait_for(1)[0]

Also runnable: ``python tests/peers/capture_upstream.py --port N`` prints each
request as a JSON line.
"""

from __future__ import annotations

import argparse
import collections
import http.server
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from loopback_server import LoopbackServer


@dataclass
class Captured:
    method: str
    path: str
    headers: list[tuple[str, str]]  # names lower-cased, arrival order, repeats kept
    body: bytes
    chunked: bool
    time: float = field(default_factory=time.time)

    def header(self, name: str) -> Optional[str]:
        """First value of a header (case-insensitive), or None."""
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def header_names(self) -> set[str]:
        return {k for k, _ in self.headers}

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "body_len": len(self.body),
            "chunked": self.chunked,
        }


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Optional[bytes] = None  # None = echo the request body
    delay: float = 0.0


Responder = Union[Reply, Callable[[Captured], Reply]]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real upstream
    server_version = "capture-upstream"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self) -> tuple[bytes, bool]:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # trailers until blank line
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out), True
                out += self.rfile.read(size)
                self.rfile.readline(3)  # CRLF after chunk
        n = int(self.headers.get("Content-Length") or 0)
        return (self.rfile.read(n) if n else b""), False

    def _handle(self):
        srv: "CaptureUpstream" = self.server.owner  # type: ignore[attr-defined]
        try:
            body, chunked = self._read_body()
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        cap = Captured(
            method=self.command,
            path=self.path,
            headers=[(k.lower(), v) for k, v in self.headers.items()],
            body=body,
            chunked=chunked,
        )
        srv._record(cap)  # before replying: a client that got the reply can inspect it
        reply = srv._next_reply(cap)
        if reply.delay:
            time.sleep(reply.delay)
        out = cap.body if reply.body is None else reply.body
        self.send_response(reply.status)
        names = {k.lower() for k in reply.headers}
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if "content-type" not in names:
            self.send_header("Content-Type", "application/json")
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class CaptureUpstream(LoopbackServer):
    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        super().__init__(_Handler, port, host)
        self._lock = threading.Condition()
        self._requests: list[Captured] = []
        self._queue: collections.deque[Responder] = collections.deque()
        self._default: Responder = Reply()

    # -- scripting ------------------------------------------------------------
    def push(self, status: int = 200, headers: Optional[dict] = None,
             body: Optional[bytes] = None, delay: float = 0.0) -> None:
        """Queue a one-shot reply (body None = echo the request body)."""
        with self._lock:
            self._queue.append(Reply(status, dict(headers or {}), body, delay))

    def set_default(self, responder: Responder) -> None:
        with self._lock:
            self._default = responder

    def _next_reply(self, cap: Captured) -> Reply:
        with self._lock:
            r = self._queue.popleft() if self._queue else self._default
        return r(cap) if callable(r) else r

    # -- inspection -----------------------------------------------------------
    def _record(self, cap: Captured) -> None:
        with self._lock:
            self._requests.append(cap)
            self._lock.notify_all()

    @property
    def requests(self) -> list[Captured]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[Captured]:
        """Block until at least n requests were recorded; return them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"capture upstream saw {len(self._requests)} "
                                       f"request(s), wanted {n}")
                self._lock.wait(left)
            return list(self._requests)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="record requests, answer 200 echo")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--status", type=int, default=200)
    args = ap.parse_args(argv)
    up = CaptureUpstream(args.port)
    up.set_default(Reply(status=args.status))
    orig = up._record

    def _print(cap: Captured) -> None:
        print(json.dumps(cap.to_json()), flush=True)
        orig(cap)

    up._record = _print  # type: ignore[method-assign]
    print(json.dumps({"url": up.url, "port": up.port}), flush=True)
    up.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        up.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
