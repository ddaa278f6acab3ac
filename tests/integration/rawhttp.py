"""A bare HTTP/1.1 client for requests a proxy may answer before the body is sent.

``requests`` writes the whole body before reading; when Envoy answers early
(413) and closes, that shows up as a broken pipe or reset instead of the
response. This client stops sending as soon as a response starts arriving.
"""

from __future__ import annotations

import http.client
import select
import socket
import time
from dataclasses import dataclass
from typing import Iterable, Optional
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    sent_bytes: int
    sent_all: bool


def request(url: str, method: str = "POST", path: str = "/",
            headers: Optional[dict[str, str]] = None, chunks: Iterable[bytes] = (),
            content_length: Optional[int] = None, timeout: float = 30.0) -> RawResponse:
    """Send ``chunks`` as the body: with ``content_length`` set, as that many
    bytes of content-length framing; otherwise chunked. Returns the response,
    whether or not the whole body could be sent."""
    u = urlsplit(url)
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    try:
        hdrs = {"host": f"{u.hostname}:{u.port}"}
        hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
        chunked = content_length is None
        if chunked:
            hdrs["transfer-encoding"] = "chunked"
        else:
            hdrs["content-length"] = str(content_length)
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        sock.sendall(head.encode("latin-1"))
        sent, sent_all = 0, True
        for chunk in chunks:
            if time.monotonic() > deadline:
                raise TimeoutError("body not sent in time")
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:  # the proxy answered early: stop sending
                sent_all = False
                break
            frame = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") if chunked else chunk
            if not frame or (chunked and not chunk):
                continue
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                sent_all = False
                break
            sent += len(chunk)
        else:
            if chunked:
                try:
                    sock.sendall(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    sent_all = False
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        try:
            body = resp.read()
        except (http.client.IncompleteRead, ConnectionResetError) as e:
            body = getattr(e, "partial", b"") or b""
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body,
                           sent, sent_all)
    finally:
        sock.close()


def repeat(block: bytes, total: int) -> Iterable[bytes]:
    """Yield ``total`` bytes as repeats of ``block`` (last one truncated)."""
    left = total
    while left > 0:
        b = block[:left]
        left -= len(b)
        yield b
