"""An HTTP/1.1 socket client that shows how a chunked response arrived: every chunk with the time
it was read, and whether the body ended with the terminating zero chunk or the connection was cut.

``requests``/``urllib3`` hide exactly what the streaming tests look at (a body cut without the
zero chunk looks like a short read, the first chunk's time is lost in buffering), so this reads
the socket itself. ``sink`` lets a 100 MB body pass without being kept.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # names lower-cased, arrival order
    chunks: list[tuple[float, int]] = field(default_factory=list)  # reads: (monotonic, bytes)
    chunk_sizes: list[int] = field(default_factory=list)  # the HTTP chunks' sizes, in order
    body: bytes = b""  # empty when a sink took the bytes
    body_len: int = 0
    complete: bool = False  # the terminating zero chunk (or the whole Content-Length) arrived
    cut: str = ""  # why the body ended early: "eof", "reset", "timeout", "bad chunk"
    started: float = 0.0  # monotonic, when the request was sent
    headers_at: float = 0.0  # monotonic, when the status line and headers were read

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def first_chunk_after(self) -> float:
        """Seconds from sending the request to reading the first body bytes."""
        return self.chunks[0][0] - self.started if self.chunks else float("inf")

    @property
    def last_chunk_after(self) -> float:
        return self.chunks[-1][0] - self.started if self.chunks else float("inf")


class _Reader:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 18)
        if not data:
            return False
        self.buf += data
        return True

    def line(self) -> Optional[bytes]:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            if len(self.buf) > 65536 or not self._fill():
                return None

    def some(self, n: int) -> bytes:
        """Up to n bytes: what is buffered, else one recv (b"" at EOF)."""
        if not self.buf and not self._fill():
            return b""
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def request(url: str, method: str = "POST", body: bytes = b"",
            headers: Optional[dict[str, str]] = None, timeout: float = 20.0,
            sink: Optional[Callable[[bytes], None]] = None) -> Response:
    """One request on a fresh connection; reads the response to its end or until it is cut."""
    u = urllib.parse.urlsplit(url)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    hdrs = {"Host": u.netloc, "Content-Length": str(len(body)), "Connection": "close",
            **(headers or {})}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    sock = socket.create_connection((u.hostname, u.port or 80), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic()
        sock.sendall(head.encode() + b"\r\n" + body)
        return _read_response(_Reader(sock), started, method, sink)
    finally:
        sock.close()


def _read_response(r: _Reader, started: float, method: str,
                   sink: Optional[Callable[[bytes], None]]) -> Response:
    while True:
        status_line = r.line()
        if status_line is None:
            raise ConnectionError("connection closed before a status line")
        parts = status_line.decode("latin-1").split(" ", 2)
        status = int(parts[1])
        headers = []
        while True:
            ln = r.line()
            if ln is None:
                raise ConnectionError("connection closed inside the headers")
            if not ln:
                break
            k, _, v = ln.decode("latin-1").partition(":")
            headers.append((k.strip().lower(), v.strip()))
        if status >= 200 or status == 101:
            break
    resp = Response(status, parts[2] if len(parts) > 2 else "", headers, started=started,
                    headers_at=time.monotonic())
    body = bytearray()

    def take(data: bytes) -> None:
        resp.chunks.append((time.monotonic(), len(data)))
        resp.body_len += len(data)
        if sink is not None:
            sink(data)
        else:
            body.extend(data)

    try:
        if method == "HEAD" or status in (204, 304):
            resp.complete = True
        elif "chunked" in (resp.header("transfer-encoding") or "").lower():
            _read_chunked(r, resp, take)
        elif resp.header("content-length") is not None:
            left = int(resp.header("content-length"))
            while left > 0:
                data = r.some(left)
                if not data:
                    resp.cut = "eof"
                    break
                take(data)
                left -= len(data)
            resp.complete = left == 0
        else:  # until close
            while data := r.some(1 << 18):
                take(data)
            resp.complete = True
    except ConnectionResetError:
        resp.cut = "reset"
    except socket.timeout:
        resp.cut = "timeout"
    resp.body = bytes(body)
    return resp


def _read_chunked(r: _Reader, resp: Response, take: Callable[[bytes], None]) -> None:
    while True:
        size_line = r.line()
        if size_line is None:
            resp.cut = "eof"
            return
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            resp.cut = "bad chunk"
            return
        if size == 0:
            while r.line() not in (b"", None):
                pass
            resp.complete = True
            return
        resp.chunk_sizes.append(size)
        while size > 0:
            data = r.some(size)
            if not data:
                resp.cut = "eof"
                return
            take(data)
            size -= len(data)
        if r.line() != b"":
            resp.cut = "eof"
            return


@dataclass
class CurlResult:
    rc: int  # curl's exit code: 0 clean; 92 HTTP/2 stream reset, 18 partial body, 28 timeout …
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    chunks: list[tuple[float, int]]  # body bytes as curl wrote them: (monotonic, size)
    started: float
    stderr: str

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def first_chunk_after(self) -> float:
        return self.chunks[0][0] - self.started if self.chunks else float("inf")

    @property
    def last_chunk_after(self) -> float:
        return self.chunks[-1][0] - self.started if self.chunks else float("inf")


def curl_h2(url: str, body: bytes = b"", headers: Optional[dict[str, str]] = None,
            timeout: float = 20.0) -> CurlResult:
    """POST over HTTP/2 (h2c, prior knowledge) with curl -N, timing the body's arrival."""
    curl = shutil.which("curl")
    assert curl, "curl is needed for the HTTP/2 checks"
    cmd = [curl, "-sS", "-N", "-i", "--http2-prior-knowledge", "--max-time", str(timeout),
           "-X", "POST", "--data-binary", "@-", "-H", "Content-Type: application/json"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    started = time.monotonic()
    p = subprocess.Popen(cmd + [url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdin.write(body)
    p.stdin.close()
    raw, head_end, chunks = bytearray(), -1, []
    fd = p.stdout.fileno()
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            break
        now = time.monotonic()
        raw += data
        if head_end < 0:
            head_end = raw.find(b"\r\n\r\n")
            if head_end >= 0 and len(raw) > head_end + 4:
                chunks.append((now, len(raw) - head_end - 4))
        else:
            chunks.append((now, len(data)))
    rc = p.wait(timeout=timeout + 10)
    stderr = p.stderr.read().decode(errors="replace")
    p.stdout.close()
    p.stderr.close()
    if head_end < 0:
        return CurlResult(rc, 0, [], b"", [], started, stderr)
    lines = raw[:head_end].decode("latin-1").split("\r\n")
    hdrs = [(k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
    return CurlResult(rc, int(lines[0].split()[1]), hdrs, bytes(raw[head_end + 4:]), chunks,
                      started, stderr)
