#!/usr/bin/env python3
"""A loopback Lambda that answers ``InvokeWithResponseStream`` with real event-stream frames.

``POST /2021-11-15/functions/{name}/response-streaming-invocations[?Qualifier=]`` gets, when the
request's SigV4 signature is right, ``200`` with ``Content-Type`` (Lambda's ResponseStreamContentType:
``application/vnd.amazon.eventstream`` unless the script says otherwise),
``X-Amz-Executed-Version``, ``x-amzn-RequestId`` and a chunked body of event-stream messages
(``PayloadChunk`` / ``InvokeComplete``, encoded by ``eventstream.py`` from the AWS / Smithy spec).
What the body holds, and how it is cut into TCP writes, is scripted per test. Buffered ``Invoke``
(``POST /2015-03-31/functions/{name}/invocations``) is answered too (200, the payload echoed; with
an ``operation="invoke"`` script: its sleeps, then its chunks' bytes in one answer), so one peer
serves both invoke modes.

Signatures are checked like moto does it (botocore's ``SigV4Auth`` recomputes the signature with
the secret of the key in ``Credential=``, the region and service of its scope), over exactly the
headers listed in ``SignedHeaders``, and more strictly than moto: ``x-amz-content-sha256`` must be
the body's hash, the scope must be ``lambda`` in the peer's region, ``X-Amz-Date`` within 5 minutes,
``host`` signed, the session token (if the key has one) sent. Otherwise 403 with Lambda's JSON
error (``x-amzn-ErrorType`` ``InvalidSignatureException``, ``UnrecognizedClientException``,
``MissingAuthenticationTokenException`` …). Every request is recorded with the verdict.

Scripts (one-shot, first queued one that matches the function and operation wins; otherwise the
function's default, else: the payload echoed as one PayloadChunk, then InvokeComplete)::

    lam.script([{"chunk": "hello "}, {"sleep": 1.0}, {"chunk": "world"}, {"complete": {}}])
    lam.script(status=429)                          # pre-stream error, like Invoke's
    lam.script([{"generate": 100 << 20}, {"complete": {}}])

Steps (JSON, also accepted by ``POST /_peer/script``):

* ``{"chunk": "text"}`` / ``{"chunk_b64": "…"}``   one PayloadChunk
* ``{"chunks": N, "size": S}``                      N PayloadChunks of S bytes (the pattern below)
* ``{"complete": {"ErrorCode"?, "ErrorDetails"?, "LogResult"?}}``   InvokeComplete
* ``{"exception": "ServiceException", "message": "…"}``  a ``:message-type`` = ``exception`` message
* ``{"error": "InternalFailure", "message": "…"}``  a ``:message-type`` = ``error`` message
* ``{"prelude": {"statusCode", "headers"?, "cookies"?}, "body"?: "…", "pieces"?: k, "cuts"?: [..]}``
  the HTTP prelude (JSON + 8 NULs, then ``body``) cut into k PayloadChunks, or at the offsets
* ``{"raw_b64": "…"}``                              bytes as they are
* ``{"generate": total, "frame_size"?: 65536, "frames_per_write"?: 1}``  ``total`` payload bytes,
  made frame by frame as they are written (``pattern``), never held whole
* ``{"batch": [steps…]}``                           the frames of these steps in one write
* ``{"sleep": seconds}``                            hold the rest back
* ``{"end": true}``                                 the terminating zero chunk now (also implicit)
* ``{"close": true}``                               drop the connection now, without the zero chunk
* ``{"no_body": true}`` (the only step)            a 200 with ``Content-Length: 0``, no body at all

Frame-producing steps (and ``batch``) take ``"corrupt"`` (see ``eventstream.corrupt``: prelude_crc,
message_crc, payload, total_length, headers_length, header_type; in a batch: its first frame),
``"truncate": n`` (only the first n bytes), ``"split": k`` or ``"split": [sizes…]`` (written in k /
the given pieces, each its own write and HTTP chunk, ``"gap"`` seconds apart, default 0.02). Every
write is recorded (time.monotonic(), bytes) in the request's ``writes``. The socket has TCP_NODELAY.

Control API (unauthenticated, loopback): ``POST /_peer/script`` (a script as JSON: ``steps``,
``status``, ``error_type``, ``message``, ``headers``, ``retry_after``, ``content_type``,
``function``, ``operation``),
``GET /_peer/requests``, ``POST /_peer/reset``.

CLI: ``python tests/peers/streaming_lambda.py --port 0 --access-key AK --secret-key SK`` prints one
JSON line (url, port) and serves until SIGTERM/SIGINT; function ``ticks`` streams five lines half
a second apart (for ``curl -N``), any other function echoes its payload.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import hashlib
import http.server
import json
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Iterator, Optional

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

import eventstream as es
from loopback_server import LoopbackServer

STREAM_RE = re.compile(r"^/2021-11-15/functions/([^/]+)/response-streaming-invocations$")
INVOKE_RE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
CONTROL_PREFIX = "/_peer/"
EVENTSTREAM_TYPE = "application/vnd.amazon.eventstream"
# The stream's Content-Type is Lambda's ResponseStreamContentType: the function's own type, this
# one when it wrote an HTTP prelude (awslambda.HttpResponseStream.from), or the event stream's.
HTTP_INTEGRATION_TYPE = "application/vnd.awslambda.http-integration-response"
MAX_SKEW_SECONDS = 300
_AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                      r" ?SignedHeaders=([a-z0-9;_.-]+), ?Signature=([0-9a-f]{64})$")

# Lambda's pre-stream errors: status → (x-amzn-ErrorType, Type, message)
ERRORS = {
    400: ("InvalidRequestContentException", "User", "Could not parse request body into json"),
    403: ("AccessDeniedException", "User", "not authorized to perform lambda:InvokeFunction"),
    404: ("ResourceNotFoundException", "User", "Function not found"),
    409: ("ResourceConflictException", "User", "The operation cannot be performed at this time."),
    413: ("RequestTooLargeException", "User", "Request must be smaller than 6291456 bytes"),
    415: ("UnsupportedMediaTypeException", "User", "Unsupported media type"),
    429: ("TooManyRequestsException", "User", "Rate Exceeded."),
    500: ("ServiceException", "Service", "Internal service error"),
    502: ("EC2UnexpectedException", "Service", "Bad gateway"),
    503: ("ServiceException", "Service", "Service unavailable"),
    504: ("ServiceException", "Service", "Timed out"),
}

_PATTERN_PERIOD = 251  # prime: consecutive frames never hold the same bytes
_PATTERN = bytes(range(_PATTERN_PERIOD))


def pattern(offset: int, n: int) -> bytes:
    """The generated body's bytes [offset, offset+n): byte i is i mod 251."""
    start = offset % _PATTERN_PERIOD
    reps = (start + n) // _PATTERN_PERIOD + 1
    return (_PATTERN * reps)[start:start + n]


def pattern_sha256(total: int, block: int = 1 << 20) -> str:
    """sha256 of pattern(0, total), computed block by block."""
    h = hashlib.sha256()
    for off in range(0, total, block):
        h.update(pattern(off, min(block, total - off)))
    return h.hexdigest()


# -- requests ---------------------------------------------------------------------------
@dataclass
class Recorded:
    method: str
    path: str  # raw, as received
    headers: list[tuple[str, str]]  # names lower-cased, arrival order
    body: bytes
    operation: str = "Unknown"  # InvokeWithResponseStream | Invoke | Unknown
    function: str = ""
    auth: str = ""  # "ok", or why the request was refused
    status: int = 0
    writes: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, body bytes)
    bytes_sent: int = 0  # body bytes after the headers (HTTP chunk framing excluded)
    outcome: str = ""  # ended | closed | client_gone
    time: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query,
                                           keep_blank_values=True))

    def to_json(self) -> dict:
        return {"method": self.method, "path": self.path, "headers": self.headers,
                "body_len": len(self.body), "operation": self.operation,
                "function": self.function, "auth": self.auth, "status": self.status,
                "writes": len(self.writes), "bytes_sent": self.bytes_sent,
                "outcome": self.outcome}


@dataclass
class Script:
    steps: list[dict] = field(default_factory=list)
    status: int = 200  # anything else: a pre-stream error answer
    error_type: Optional[str] = None
    message: Optional[str] = None
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    retry_after: Optional[str] = None
    content_type: str = EVENTSTREAM_TYPE  # of the streamed 200 (ResponseStreamContentType)
    function: Optional[str] = None  # None: any function
    operation: str = "stream"  # stream | invoke | any

    @classmethod
    def from_json(cls, doc: dict) -> "Script":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"unknown script fields {sorted(unknown)}")
        return cls(**doc)

    def matches(self, operation: str, function: str) -> bool:
        op = {"InvokeWithResponseStream": "stream", "Invoke": "invoke"}.get(operation, "")
        return self.operation in (op, "any") and self.function in (None, function)


# -- SigV4, checked with botocore's signer --------------------------------------------------
class _SignedHeadersOnly(SigV4Auth):
    """botocore's SigV4 over exactly the headers the request says it signed (botocore's own
    list of headers it never signs does not apply when checking someone else's signature)."""

    def __init__(self, credentials, service, region, signed: list[str]):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request):
        out = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                out.add_header(name, value)
        return out


class AuthError(Exception):
    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def check_sigv4(method: str, path: str, headers: list[tuple[str, str]], body: bytes,
                keys: dict[str, tuple[str, Optional[str]]], region: str,
                now: Optional[float] = None) -> None:
    """Raises AuthError unless the request carries a valid SigV4 signature for service lambda."""
    hmap: dict[str, list[str]] = {}
    for k, v in headers:
        hmap.setdefault(k.lower(), []).append(v)

    def one(name: str) -> Optional[str]:
        vals = hmap.get(name)
        return vals[0] if vals else None

    auth = one("authorization")
    if not auth:
        raise AuthError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    m = _AUTH_RE.match(auth)
    if not m:
        raise AuthError(403, "IncompleteSignatureException",
                        "Authorization header requires Credential, SignedHeaders and Signature")
    key_id, scope_date, scope_region, service, signed, signature = m.groups()
    if key_id not in keys:
        raise AuthError(403, "UnrecognizedClientException",
                        "The security token included in the request is invalid.")
    secret, token = keys[key_id]
    if service != "lambda":
        raise AuthError(403, "InvalidSignatureException",
                        "Credential should be scoped to correct service: 'lambda'.")
    if scope_region != region:
        raise AuthError(403, "InvalidSignatureException",
                        f"Credential should be scoped to a valid region, not '{scope_region}'.")
    amz_date = one("x-amz-date") or ""
    try:
        signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise AuthError(403, "IncompleteSignatureException", "X-Amz-Date is missing or malformed")
    if amz_date[:8] != scope_date:
        raise AuthError(403, "InvalidSignatureException", "Date in Credential scope does not match")
    if abs((now if now is not None else time.time()) - signed_at) > MAX_SKEW_SECONDS:
        raise AuthError(403, "InvalidSignatureException", "Signature expired")
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names or names != sorted(names):
        raise AuthError(403, "InvalidSignatureException",
                        "SignedHeaders must be sorted and include host and x-amz-date")
    missing = [n for n in names if n not in hmap]
    if missing:
        raise AuthError(403, "InvalidSignatureException", f"signed headers not sent: {missing}")
    if token is not None and one("x-amz-security-token") != token:
        raise AuthError(403, "UnrecognizedClientException",
                        "The security token included in the request is invalid.")
    sent_hash = one("x-amz-content-sha256")
    if sent_hash is not None and sent_hash != hashlib.sha256(body).hexdigest():
        raise AuthError(403, "InvalidSignatureException",
                        "x-amz-content-sha256 is not the hash of the body")

    signed_headers = HTTPHeaders()
    for k, v in headers:
        if k.lower() in names:
            signed_headers.add_header(k, v)
    req = AWSRequest(method=method, url="http://" + (one("host") or "localhost") + path,
                     data=body, headers=signed_headers)
    req.context["timestamp"] = amz_date
    signer = _SignedHeadersOnly(Credentials(key_id, secret, token), service, scope_region, names)
    expected = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    if expected != signature:
        raise AuthError(403, "InvalidSignatureException",
                        "The request signature we calculated does not match the signature you "
                        "provided.")


# -- turning steps into writes -----------------------------------------------------------
def _step_bytes(step: dict) -> bytes:
    """The bytes of one frame-producing step (before corrupt/truncate)."""
    if "chunk" in step:
        return es.payload_chunk(step["chunk"].encode())
    if "chunk_b64" in step:
        return es.payload_chunk(base64.b64decode(step["chunk_b64"]))
    if "chunks" in step:
        size, off, out = int(step["size"]), 0, []
        for _ in range(int(step["chunks"])):
            out.append(es.payload_chunk(pattern(off, size)))
            off += size
        return b"".join(out)
    if "complete" in step:
        c = step["complete"] or {}
        return es.invoke_complete(c.get("ErrorCode"), c.get("ErrorDetails"), c.get("LogResult"))
    if "exception" in step:
        return es.exception(step["exception"], step.get("message", ""))
    if "error" in step:
        return es.error(step["error"], step.get("message", ""))
    if "raw_b64" in step:
        return base64.b64decode(step["raw_b64"])
    if "prelude" in step:
        p = step["prelude"]
        data = es.http_prelude(p["statusCode"], p.get("headers"), p.get("cookies"))
        data += step.get("body", "").encode()
        cuts = step.get("cuts")
        if cuts is None:
            k = max(1, int(step.get("pieces", 1)))
            cuts = [len(data) * i // k for i in range(1, k)]
        bounds = [0, *cuts, len(data)]
        return b"".join(es.payload_chunk(data[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a)
    if "batch" in step:
        return b"".join(_damaged(s) for s in step["batch"])
    raise ValueError(f"not a frame step: {step}")


def _damaged(step: dict) -> bytes:
    data = _step_bytes(step)
    if step.get("corrupt"):
        total = int.from_bytes(data[:4], "big")
        data = es.corrupt(data[:total], step["corrupt"]) + data[total:]
    if "truncate" in step:
        data = data[:int(step["truncate"])]
    return data


def _pieces(data: bytes, split) -> list[bytes]:
    if split is None:
        return [data]
    if isinstance(split, int):
        k = max(1, min(split, len(data)))
        cuts = [len(data) * i // k for i in range(k + 1)]
    else:
        cuts = [0]
        for n in split:
            cuts.append(min(len(data), cuts[-1] + int(n)))
        cuts.append(len(data))
    return [data[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


def _generated(step: dict) -> Iterator[bytes]:
    total = int(step["generate"])
    size = int(step.get("frame_size", 65536))
    per_write = max(1, int(step.get("frames_per_write", 1)))
    off, batch = 0, []
    while off < total:
        n = min(size, total - off)
        batch.append(es.payload_chunk(pattern(off, n)))
        off += n
        if len(batch) == per_write or off >= total:
            yield b"".join(batch)
            batch = []


# -- the server -------------------------------------------------------------------------
class _ClientGone(Exception):
    pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "streaming-lambda"
    sys_version = ""

    def setup(self):
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet
        pass

    def handle(self):
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the client (Envoy) dropped a kept-alive connection: nothing to answer

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send_json(self, status: int, doc, headers: Optional[dict] = None) -> None:
        out = json.dumps(doc).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def _handle(self):
        lam: "StreamingLambda" = self.server.owner  # type: ignore[attr-defined]
        try:
            body = self._read_body()
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(CONTROL_PREFIX):
            return self._control(lam, path[len(CONTROL_PREFIX):], body)
        rec = Recorded(self.command, self.path, [(k.lower(), v) for k, v in self.headers.items()],
                       body)
        m_stream, m_invoke = STREAM_RE.match(path), INVOKE_RE.match(path)
        if self.command == "POST" and (m_stream or m_invoke):
            rec.operation = "InvokeWithResponseStream" if m_stream else "Invoke"
            rec.function = urllib.parse.unquote((m_stream or m_invoke).group(1))
        lam._record(rec)
        try:
            self._answer(lam, rec)
        except _ClientGone:
            rec.outcome = "client_gone"
            self.close_connection = True
        finally:
            rec.done.set()

    def _error(self, lam: "StreamingLambda", rec: Recorded, status: int,
               error_type: Optional[str] = None, message: Optional[str] = None,
               retry_after: Optional[str] = None) -> None:
        default_type, kind, default_msg = ERRORS.get(status, ("ServiceException", "Service",
                                                              "error"))
        headers = {"x-amzn-ErrorType": error_type or default_type,
                   "x-amzn-RequestId": lam._request_id(rec)}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        rec.status = status
        rec.outcome = "ended"
        self._send_json(status, {"Type": kind, "message": message or default_msg}, headers)

    def _answer(self, lam: "StreamingLambda", rec: Recorded) -> None:
        if rec.operation == "Unknown":
            rec.auth = "not checked"
            return self._error(lam, rec, 404, "UnknownOperationException",
                               f"Unknown operation {rec.method} {urllib.parse.urlsplit(rec.path).path}")
        try:
            if lam.check_auth:
                check_sigv4(rec.method, rec.path, rec.headers, rec.body, lam.keys, lam.region)
            rec.auth = "ok"
        except AuthError as e:
            rec.auth = f"{e.error_type}: {e.message}"
            return self._error(lam, rec, e.status, e.error_type, e.message)
        script = lam._take_script(rec)
        if script.status != 200:
            return self._error(lam, rec, script.status, script.error_type, script.message,
                               script.retry_after)
        qualifier = rec.query().get("Qualifier") or "$LATEST"
        executed = lam.aliases.get(qualifier, qualifier)
        if rec.operation == "Invoke":
            rec.status = 200
            rec.outcome = "ended"
            out = self._buffered_result(script, rec.body)
            self.send_response(200)
            for k, v in {"Content-Type": "application/json", "X-Amz-Executed-Version": executed,
                         "x-amzn-RequestId": lam._request_id(rec), **script.headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        rec.status = 200
        self.send_response(200)
        for k, v in {"Content-Type": script.content_type, "X-Amz-Executed-Version": executed,
                     "x-amzn-RequestId": lam._request_id(rec), **script.headers}.items():
            self.send_header(k, v)
        if script.steps == [{"no_body": True}]:
            self.send_header("Content-Length", "0")
            self.end_headers()
            rec.outcome = "ended"
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._stream(rec, script.steps)

    @staticmethod
    def _buffered_result(script: Script, payload: bytes) -> bytes:
        """Invoke's answer to a streaming script: its sleeps, then its chunks' bytes at once
        (the same function, buffered); no script: the payload echoed."""
        if not script.steps or script.steps == echo_steps(payload):
            return payload
        out = bytearray()
        for step in script.steps:
            if "sleep" in step:
                time.sleep(float(step["sleep"]))
            elif "chunk" in step:
                out += step["chunk"].encode()
            elif "chunk_b64" in step:
                out += base64.b64decode(step["chunk_b64"])
        return bytes(out)

    def _write(self, rec: Recorded, data: bytes) -> None:
        if not data:
            return
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            raise _ClientGone() from e
        rec.writes.append((time.monotonic(), len(data)))
        rec.bytes_sent += len(data)

    def _stream(self, rec: Recorded, steps: list[dict]) -> None:
        for step in steps:
            if "sleep" in step:
                time.sleep(float(step["sleep"]))
            elif "close" in step:
                rec.outcome = "closed"
                self.close_connection = True
                try:
                    self.wfile.flush()
                    self.request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            elif "end" in step:
                break
            elif "generate" in step:
                for data in _generated(step):
                    self._write(rec, data)
            else:
                pieces = _pieces(_damaged(step), step.get("split"))
                gap = float(step.get("gap", 0.02))
                for i, piece in enumerate(pieces):
                    if i:
                        time.sleep(gap)
                    self._write(rec, piece)
        try:
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            raise _ClientGone() from e
        rec.outcome = "ended"

    def _control(self, lam: "StreamingLambda", what: str, body: bytes) -> None:
        try:
            if what == "script" and self.command == "POST":
                lam.push(Script.from_json(json.loads(body or b"{}")))
                return self._send_json(200, {"queued": True})
            if what == "requests" and self.command == "GET":
                return self._send_json(200, [r.to_json() for r in lam.requests])
            if what == "reset" and self.command == "POST":
                lam.clear()
                return self._send_json(200, {"reset": True})
        except (ValueError, TypeError) as e:
            return self._send_json(400, {"error": str(e)})
        self._send_json(404, {"error": f"no control endpoint {self.command} {what}"})

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def echo_steps(payload: bytes) -> list[dict]:
    return [{"chunk_b64": base64.b64encode(payload).decode()}, {"complete": {}}]


class StreamingLambda(LoopbackServer):
    def __init__(self, access_key: str = "AKIASTREAMPEER000000", secret_key: str = "stream-secret",
                 session_token: Optional[str] = None, region: str = "us-east-1",
                 port: int = 0, host: str = "127.0.0.1"):
        super().__init__(_Handler, port, host)
        self.region = region
        self.keys: dict[str, tuple[str, Optional[str]]] = {access_key: (secret_key, session_token)}
        self.access_key, self.secret_key, self.session_token = access_key, secret_key, session_token
        self.check_auth = True
        self.aliases: dict[str, str] = {"live": "1"}  # qualifier → executed version
        self._lock = threading.Condition()
        self._scripts: list[Script] = []
        self._defaults: dict[str, list[dict]] = {}
        self._requests: list[Recorded] = []

    # -- scripting ----------------------------------------------------------------------
    def script(self, steps: Optional[list[dict]] = None, **kw) -> None:
        """Queue a one-shot script (see the module docstring)."""
        self.push(Script(steps=list(steps or []), **kw))

    def push(self, script: Script) -> None:
        for step in script.steps:  # fail in the test, not in the peer's thread
            if not any(k in step for k in ("sleep", "close", "end", "generate", "no_body")):
                _damaged(step)
        with self._lock:
            self._scripts.append(script)

    def set_default(self, function: str, steps: list[dict]) -> None:
        """What `function` streams when no script is queued for it."""
        with self._lock:
            self._defaults[function] = list(steps)

    def _take_script(self, rec: Recorded) -> Script:
        with self._lock:
            for i, s in enumerate(self._scripts):
                if s.matches(rec.operation, rec.function):
                    return self._scripts.pop(i)
            steps = self._defaults.get(rec.function)
        return Script(steps=steps if steps is not None else echo_steps(rec.body))

    # -- inspection ---------------------------------------------------------------------
    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self._requests.append(rec)
            self._lock.notify_all()

    def _request_id(self, rec: Recorded) -> str:
        with self._lock:
            n = next((i for i, r in enumerate(self._requests) if r is rec), 0)
        return str(uuid.UUID(int=(0x5EE0 << 112) | n))

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._scripts.clear()

    def wait_for(self, n: int = 1, timeout: float = 10.0,
                 operation: Optional[str] = None) -> list[Recorded]:
        """Block until at least n requests (of `operation`, if given) arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self._requests if operation in (None, r.operation)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"streaming lambda saw {len(got)} request(s), wanted {n}")
                self._lock.wait(left)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="loopback Lambda answering InvokeWithResponseStream")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--access-key", default="AKIASTREAMPEER000000")
    ap.add_argument("--secret-key", default="stream-secret")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--no-auth", action="store_true", help="do not check signatures")
    args = ap.parse_args(argv)
    lam = StreamingLambda(args.access_key, args.secret_key, region=args.region, port=args.port)
    lam.check_auth = not args.no_auth
    ticks: list[dict] = []
    for i in range(5):
        ticks += [{"chunk": f"tick {i + 1}\n"}, {"sleep": 0.5}]
    lam.set_default("ticks", ticks + [{"complete": {}}])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lam.start()
    print(json.dumps({"url": lam.url, "port": lam.port}), flush=True)
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        lam.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
