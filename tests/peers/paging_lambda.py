#!/usr/bin/env python3
"""A loopback Lambda API subset with real pagination, for function-discovery tests.

Implements, on 127.0.0.1 (port 0 = a free port), what discovery and invocation use:

* ``ListFunctions``          ``GET /2015-03-31/functions/?MaxItems=&Marker=``
* ``ListAliases``            ``GET /2015-03-31/functions/<name>/aliases?MaxItems=&Marker=&FunctionVersion=``
* ``ListVersionsByFunction`` ``GET /2015-03-31/functions/<name>/versions?MaxItems=&Marker=``
* ``Invoke``                 ``POST /2015-03-31/functions/<name>/invocations[?Qualifier=]`` → 200 echo

Pages hold at most 50 items, as AWS's do (fewer with ``page_size`` or ``MaxItems``). The
``NextMarker`` is an opaque standard-base64 token that always starts with ``++//``, so a client
that does not percent-encode it is caught: the query is form-decoded like AWS does, an
unencoded ``+`` turns into a space and the marker is refused with 400. Markers point *after a
name*, so functions added or removed between pages behave as on AWS (nothing is listed twice).
The last page has ``"NextMarker": null``. ``marker_loop = True`` makes ListFunctions hand out the
same marker forever (a broken endpoint, for loop guards).

Every request is recorded (method, path, headers, body) before it is answered. A request without
an ``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`` header gets
403 ``MissingAuthenticationTokenException``; the signature itself is not checked (moto does that
in the other tests). ``fail_next(n, status)`` answers the next ``n`` requests with 500, 429,
403 or any status, with AWS's error body and ``x-amzn-ErrorType``. ``listing_delay = 3.0`` holds
every ListFunctions answer for that many seconds (a slow, large account); the request is
recorded when it arrives. Unknown functions (and
unknown qualifiers) get 404 ``{"Message": …, "Type": "User"}`` with
``x-amzn-ErrorType: ResourceNotFoundException``.

    with PagingLambda() as lam:
        lam.add_functions(f"fn-{i:03}" for i in range(120))   # 3 pages
        lam.add_function("orders", aliases={"live": "1"}, versions=2)
        lam.fail_next(1, 429)
        ...  # point discovery at lam.url
        lam.remove_function("fn-000")
        paths = [r.path for r in lam.requests]

CLI: ``python tests/peers/paging_lambda.py --port 0 --functions echo,hello --generate 120
--alias echo:live=1 --versions echo=2`` prints one JSON line (url, port, functions) and serves
until SIGINT/SIGTERM. ``--self-test`` runs the checks at the bottom of this file and exits.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import http.server
import json
import re
import signal
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Iterable, Optional

from loopback_server import LoopbackServer

API_PREFIX = "/2015-03-31/functions"
AWS_PAGE_LIMIT = 50
# Marker bytes 0xfb 0xef 0xff encode to "++//": every marker needs percent-encoding.
_MARKER_MAGIC = b"\xfb\xef\xff"
_AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=\S+, ?SignedHeaders=\S+, ?Signature=[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_ERRORS = {
    # status: (x-amzn-ErrorType, body)
    400: ("InvalidParameterValueException",
          {"Type": "User", "Message": "Invalid request"}),
    403: ("UnrecognizedClientException",
          {"message": "The security token included in the request is invalid."}),
    404: ("ResourceNotFoundException", {"Type": "User", "Message": "Not found"}),
    429: ("TooManyRequestsException",
          {"Type": "User", "message": "Rate exceeded", "Reason": "CallerRateLimitExceeded"}),
    500: ("ServiceException", {"Type": "Service", "Message": "Internal service error"}),
    502: ("EC2UnexpectedException", {"Type": "Service", "Message": "Bad gateway"}),
    503: ("ServiceException", {"Type": "Service", "Message": "Service unavailable"}),
}


@dataclass
class Recorded:
    method: str
    path: str  # raw, as received (still percent-encoded)
    headers: list[tuple[str, str]]  # names lower-cased, arrival order
    body: bytes
    status: int = 0  # the status answered (set after the reply is chosen)
    time: float = field(default_factory=time.time)

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    @property
    def operation(self) -> str:
        return _operation(self.method, urllib.parse.urlsplit(self.path).path)

    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query,
                                           keep_blank_values=True))

    def to_json(self) -> dict:
        return {"method": self.method, "path": self.path, "headers": self.headers,
                "body_len": len(self.body), "status": self.status}


@dataclass
class _Function:
    name: str
    aliases: dict[str, str] = field(default_factory=dict)  # alias → version
    versions: list[str] = field(default_factory=list)  # published: "1", "2", …
    runtime: str = "python3.12"


def _operation(method: str, path: str) -> str:
    rest = path[len(API_PREFIX):] if path.startswith(API_PREFIX) else None
    if rest is None:
        return "Unknown"
    if rest in ("", "/"):
        return "ListFunctions" if method == "GET" else "Unknown"
    parts = rest.strip("/").split("/")
    if len(parts) == 2:
        return {("GET", "aliases"): "ListAliases",
                ("GET", "versions"): "ListVersionsByFunction",
                ("POST", "invocations"): "Invoke"}.get((method, parts[1]), "Unknown")
    return "Unknown"


def encode_marker(after: str) -> str:
    """The opaque NextMarker for 'the page after the item named `after`'."""
    return base64.b64encode(_MARKER_MAGIC + json.dumps({"after": after}).encode()).decode()


def decode_marker(marker: str) -> Optional[str]:
    try:
        raw = base64.b64decode(marker, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_MARKER_MAGIC):
        return None
    try:
        after = json.loads(raw[len(_MARKER_MAGIC):]).get("after")
    except (ValueError, AttributeError):
        return None
    return after if isinstance(after, str) else None


class _Reply(Exception):
    """Raised inside a handler to answer with an AWS error."""

    def __init__(self, status: int, error_type: Optional[str] = None,
                 message: Optional[str] = None):
        default_type, body = _ERRORS.get(status, ("ServiceException",
                                                  {"Type": "Service", "Message": "error"}))
        self.status = status
        self.error_type = error_type or default_type
        self.body = dict(body)
        if message is not None:
            key = "Message" if "Message" in self.body else "message"
            self.body[key] = message


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "paging-lambda"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self):
        lam: "PagingLambda" = self.server.owner  # type: ignore[attr-defined]
        try:
            body = self._read_body()
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        rec = Recorded(self.command, self.path,
                       [(k.lower(), v) for k, v in self.headers.items()], body)
        lam._record(rec)
        try:
            status, headers, out = lam._answer(rec)
        except _Reply as e:
            status = e.status
            headers = {"x-amzn-ErrorType": e.error_type}
            if status == 429:
                headers["Retry-After"] = "1"
            out = json.dumps(e.body).encode()
        rec.status = status
        self.send_response(status)
        headers = {"Content-Type": "application/json",
                   "x-amzn-RequestId": f"00000000-0000-4000-8000-{lam._request_number(rec):012d}",
                   **headers}
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class PagingLambda(LoopbackServer):
    def __init__(self, port: int = 0, host: str = "127.0.0.1", region: str = "us-east-1",
                 account: str = "123456789012", page_size: int = AWS_PAGE_LIMIT):
        super().__init__(_Handler, port, host)
        self.region = region
        self.account = account
        self.page_size = max(1, min(page_size, AWS_PAGE_LIMIT))
        self.marker_loop = False
        self.require_auth = True
        self.listing_delay = 0.0  # seconds each ListFunctions answer is held
        self._lock = threading.Condition()
        self._functions: dict[str, _Function] = {}
        self._failures: list[int] = []  # statuses for the next requests, in order
        self._requests: list[Recorded] = []

    # -- the account ----------------------------------------------------------
    def add_function(self, name: str, aliases: Optional[dict[str, str]] = None,
                     versions: int = 0, runtime: str = "python3.12") -> None:
        """Creates (or replaces) a function with `versions` published versions "1".."N"."""
        if not _NAME_RE.match(name):
            raise ValueError(f"{name!r} is not a Lambda function name")
        with self._lock:
            self._functions[name] = _Function(
                name, dict(aliases or {}), [str(i) for i in range(1, versions + 1)], runtime)

    def add_functions(self, names: Iterable[str]) -> None:
        for n in names:
            self.add_function(n)

    def remove_function(self, name: str) -> None:
        with self._lock:
            del self._functions[name]

    def publish_version(self, name: str) -> str:
        with self._lock:
            fn = self._functions[name]
            fn.versions.append(str(len(fn.versions) + 1))
            return fn.versions[-1]

    def add_alias(self, name: str, alias: str, version: str = "$LATEST") -> None:
        with self._lock:
            self._functions[name].aliases[alias] = version

    def remove_alias(self, name: str, alias: str) -> None:
        with self._lock:
            del self._functions[name].aliases[alias]

    @property
    def functions(self) -> list[str]:
        with self._lock:
            return sorted(self._functions)

    # -- scripting ------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answer the next `n` requests (whatever they are) with `status` and AWS's error body."""
        with self._lock:
            self._failures.extend([status] * n)

    def clear_failures(self) -> None:
        """Answer normally again (cancel what fail_next queued)."""
        with self._lock:
            self._failures.clear()

    # -- inspection -----------------------------------------------------------
    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self._requests.append(rec)
            self._lock.notify_all()

    def _request_number(self, rec: Recorded) -> int:
        with self._lock:
            return next((i for i, r in enumerate(self._requests) if r is rec), 0)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def operations(self) -> list[str]:
        return [r.operation for r in self.requests]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._failures.clear()

    def count(self, operation: str, since: float = 0.0) -> int:
        """Requests of `operation` recorded at or after `since` (time.time())."""
        return sum(1 for r in self.requests if r.operation == operation and r.time >= since)

    def wait_for(self, n: int = 1, timeout: float = 10.0, operation: Optional[str] = None
                 ) -> list[Recorded]:
        """Block until at least n requests (of `operation`, if given) were recorded."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self._requests if operation in (None, r.operation)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"paging lambda saw {len(got)} "
                                       f"{operation or 'request'}(s), wanted {n}")
                self._lock.wait(left)

    # -- the API --------------------------------------------------------------
    def _arn(self, name: str, qualifier: Optional[str] = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    def _answer(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            raise _Reply(failure)
        if self.require_auth and not _AUTH_RE.match(rec.header("authorization") or ""):
            raise _Reply(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        split = urllib.parse.urlsplit(rec.path)
        # Form decoding, as AWS does: an unencoded '+' in a marker becomes a space.
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        op = _operation(rec.method, split.path)
        if op == "Unknown":
            raise _Reply(404, "UnknownOperationException", f"Unknown operation {rec.method} {split.path}")
        if op == "ListFunctions":
            if self.listing_delay > 0:
                time.sleep(self.listing_delay)
            return self._list_functions(query)
        ident = urllib.parse.unquote(split.path[len(API_PREFIX):].strip("/").split("/")[0])
        name, qualifier = self._resolve(ident)
        with self._lock:
            fn = self._functions.get(name)
            fn = None if fn is None else _Function(fn.name, dict(fn.aliases), list(fn.versions),
                                                   fn.runtime)
        if fn is None:
            raise _Reply(404, message=f"Function not found: {self._arn(name)}")
        if op == "ListAliases":
            return self._list_aliases(fn, query)
        if op == "ListVersionsByFunction":
            return self._list_versions(fn, query)
        return self._invoke(fn, qualifier or query.get("Qualifier"), rec.body)

    def _resolve(self, ident: str) -> tuple[str, Optional[str]]:
        """name, name:q, account:function:name[:q] or a full ARN → (name, qualifier)."""
        parts = ident.split(":")
        if parts[:1] == ["arn"] and len(parts) in (7, 8):
            return parts[6], (parts[7] if len(parts) == 8 else None)
        if len(parts) in (3, 4) and parts[1] == "function":
            return parts[2], (parts[3] if len(parts) == 4 else None)
        if len(parts) == 2:
            return parts[0], parts[1]
        return ident, None

    def _page(self, items: list[dict], key_of, query: dict[str, str], list_key: str
              ) -> tuple[int, dict[str, str], bytes]:
        try:
            max_items = int(query.get("MaxItems", AWS_PAGE_LIMIT))
        except ValueError:
            raise _Reply(400, "InvalidParameterValueException", "MaxItems must be a number")
        if not 1 <= max_items <= 10000:
            raise _Reply(400, "InvalidParameterValueException", "MaxItems must be 1..10000")
        size = min(max_items, self.page_size)
        start = 0
        if "Marker" in query:
            after = decode_marker(query["Marker"])
            if after is None:
                raise _Reply(400, "InvalidParameterValueException",
                             f"Invalid marker: {query['Marker']!r}")
            start = next((i for i, it in enumerate(items) if key_of(it) > after), len(items))
        page = items[start:start + size]
        more = start + size < len(items)
        next_marker = encode_marker(key_of(page[-1])) if more and page else None
        return 200, {}, json.dumps({list_key: page, "NextMarker": next_marker}).encode()

    def _configuration(self, fn: _Function, version: Optional[str] = None) -> dict:
        """ListFunctions' entry (version None: unqualified ARN) or ListVersions' (qualified)."""
        return {
            "FunctionName": fn.name,
            "FunctionArn": self._arn(fn.name, version),
            "Runtime": fn.runtime,
            "Role": f"arn:aws:iam::{self.account}:role/lambda-role",
            "Handler": "app.handler",
            "CodeSize": 1042,
            "Description": "",
            "Timeout": 3,
            "MemorySize": 128,
            "LastModified": "2024-05-01T12:00:00.000+0000",
            "CodeSha256": "YFgDgEKG3ugvF1+pX64gV6tu9qNuIYNUdgJm8nCxsSU=",
            "Version": version or "$LATEST",
            "VpcConfig": None,
            "KMSKeyArn": None,
            "MasterArn": None,
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": "88ebe1e1-bfdf-4dc3-84de-3017268fa1ff",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn.name}"},
        }

    def _list_functions(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            fns = [_Function(f.name, runtime=f.runtime)
                   for _, f in sorted(self._functions.items())]
        if self.marker_loop:
            page = [self._configuration(f) for f in fns[:self.page_size]]
            body = {"Functions": page, "NextMarker": encode_marker("")}
            return 200, {}, json.dumps(body).encode()
        items = [self._configuration(f) for f in fns]
        return self._page(items, lambda it: it["FunctionName"], query, "Functions")

    def _list_aliases(self, fn: _Function, query: dict[str, str]):
        wanted = query.get("FunctionVersion")
        items = [{"AliasArn": self._arn(fn.name, a), "Name": a, "FunctionVersion": v,
                  "Description": "", "RevisionId": "594f41fb-0000-4c20-95c7-6ca5f2a92c93"}
                 for a, v in sorted(fn.aliases.items()) if wanted in (None, v)]
        return self._page(items, lambda it: it["Name"], query, "Aliases")

    def _list_versions(self, fn: _Function, query: dict[str, str]):
        # $LATEST first, then "1", "2", … in numeric order; the sort key keeps that order.
        items = [self._configuration(fn, v) for v in ["$LATEST", *fn.versions]]
        order = {v: f"{i:08d}" for i, v in enumerate(["$LATEST", *fn.versions])}
        return self._page(items, lambda it: order.get(it["Version"], "~"), query, "Versions")

    def _invoke(self, fn: _Function, qualifier: Optional[str], body: bytes):
        executed = "$LATEST"
        if qualifier and qualifier != "$LATEST":
            if qualifier in fn.versions:
                executed = qualifier
            elif qualifier in fn.aliases:
                executed = fn.aliases[qualifier]
            else:
                raise _Reply(404, message=f"Function not found: {self._arn(fn.name, qualifier)}")
        return 200, {"X-Amz-Executed-Version": executed}, body


# -- self-test ----------------------------------------------------------------
_FAKE_AUTH = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/lambda/aws4_request, "
              "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)


def _call(lam: PagingLambda, method: str, path: str, body: bytes = b"",
          auth: bool = True) -> tuple[int, dict[str, str], bytes]:
    import http.client

    conn = http.client.HTTPConnection(lam.host, lam.port, timeout=10)
    try:
        headers = {"Authorization": _FAKE_AUTH} if auth else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _list_all(lam: PagingLambda, path: str, key: str) -> tuple[list[dict], int]:
    items, pages, marker = [], 0, None
    while True:
        q = "MaxItems=50" + (f"&Marker={urllib.parse.quote(marker, safe='')}" if marker else "")
        status, _, body = _call(lam, "GET", f"{path}?{q}")
        assert status == 200, (status, body)
        page = json.loads(body)
        items += page[key]
        pages += 1
        marker = page["NextMarker"]
        if not marker:
            return items, pages


def self_test() -> int:
    with PagingLambda() as lam:
        lam.add_functions(f"fn-{i:03}" for i in range(120))
        lam.add_function("orders", aliases={"live": "2", "blue": "1"}, versions=2)

        fns, pages = _list_all(lam, "/2015-03-31/functions/", "Functions")
        assert pages == 3 and len(fns) == 121, (pages, len(fns))
        assert [f["FunctionName"] for f in fns] == lam.functions
        first = json.loads(_call(lam, "GET", "/2015-03-31/functions/?MaxItems=50")[2])
        assert first["NextMarker"].startswith("++//"), first["NextMarker"]
        # An unencoded marker: '+' form-decodes to a space → 400, like a real endpoint.
        status, headers, _ = _call(lam, "GET", f"/2015-03-31/functions/?Marker={first['NextMarker']}")
        assert status == 400 and headers["x-amzn-errortype"] == "InvalidParameterValueException"

        aliases, _ = _list_all(lam, "/2015-03-31/functions/orders/aliases", "Aliases")
        assert [(a["Name"], a["FunctionVersion"]) for a in aliases] == [("blue", "1"), ("live", "2")]
        versions, _ = _list_all(lam, "/2015-03-31/functions/orders/versions", "Versions")
        assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
        for i in range(60):
            lam.add_alias("orders", f"a{i:02}", "1")
        aliases, pages = _list_all(lam, "/2015-03-31/functions/orders/aliases", "Aliases")
        assert len(aliases) == 62 and pages == 2

        status, headers, body = _call(lam, "POST", "/2015-03-31/functions/orders/invocations"
                                      "?Qualifier=live", b'{"x":1}')
        assert (status, body, headers["x-amz-executed-version"]) == (200, b'{"x":1}', "2")
        status, _, body = _call(lam, "POST", "/2015-03-31/functions/orders%3Ablue/invocations", b"{}")
        assert status == 200 and body == b"{}"
        status, headers, body = _call(lam, "POST", "/2015-03-31/functions/nope/invocations", b"{}")
        assert status == 404 and headers["x-amzn-errortype"] == "ResourceNotFoundException"
        assert json.loads(body)["Type"] == "User" and "nope" in json.loads(body)["Message"]
        assert _call(lam, "GET", "/2015-03-31/functions/nope/aliases")[0] == 404

        assert _call(lam, "GET", "/2015-03-31/functions/", auth=False)[0] == 403
        lam.fail_next(2, 429)
        lam.fail_next(1, 500)
        got = [_call(lam, "GET", "/2015-03-31/functions/")[0] for _ in range(4)]
        assert got == [429, 429, 500, 200], got

        # Removal between pages: the marker points after a name, nothing repeats or vanishes.
        p1 = json.loads(_call(lam, "GET", "/2015-03-31/functions/?MaxItems=50")[2])
        lam.remove_function("fn-010")
        lam.add_function("zz-new")
        q = urllib.parse.quote(p1["NextMarker"], safe="")
        p2 = json.loads(_call(lam, "GET", f"/2015-03-31/functions/?MaxItems=50&Marker={q}")[2])
        assert p2["Functions"][0]["FunctionName"] == "fn-050"

        lam.listing_delay = 0.3
        t0 = time.time()
        assert _call(lam, "GET", "/2015-03-31/functions/?MaxItems=50")[0] == 200
        assert time.time() - t0 >= 0.3 and lam.count("ListFunctions", since=t0) == 1
        lam.listing_delay = 0.0

        lam.marker_loop = True
        a = json.loads(_call(lam, "GET", "/2015-03-31/functions/")[2])["NextMarker"]
        b = json.loads(_call(lam, "GET", "/2015-03-31/functions/?Marker="
                             + urllib.parse.quote(a, safe=""))[2])["NextMarker"]
        assert a == b

        recs = lam.requests
        assert recs[0].operation == "ListFunctions" and recs[0].header("authorization") == _FAKE_AUTH
        assert {"ListFunctions", "ListAliases", "ListVersionsByFunction", "Invoke"} <= set(
            lam.operations())
    print("paging_lambda self-test: ok")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Lambda API subset with real pagination")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--functions", default="", help="comma-separated names")
    ap.add_argument("--generate", type=int, default=0, help="also create fn-0000 … fn-N-1")
    ap.add_argument("--alias", action="append", default=[], help="fn:alias[=version]")
    ap.add_argument("--versions", action="append", default=[], help="fn=N published versions")
    ap.add_argument("--page-size", type=int, default=AWS_PAGE_LIMIT)
    ap.add_argument("--no-auth", action="store_true", help="do not require Authorization")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()

    lam = PagingLambda(args.port, page_size=args.page_size)
    lam.require_auth = not args.no_auth
    lam.add_functions(n for n in args.functions.split(",") if n)
    lam.add_functions(f"fn-{i:04}" for i in range(args.generate))
    for spec in args.versions:
        name, n = spec.split("=", 1)
        for _ in range(int(n)):
            lam.publish_version(name)
    for spec in args.alias:
        target, _, version = spec.partition("=")
        name, alias = target.split(":", 1)
        lam.add_alias(name, alias, version or "$LATEST")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lam.start()
    print(json.dumps({"url": lam.url, "port": lam.port, "functions": lam.functions}), flush=True)
    try:
        while not stop.wait(0.2):  # short waits: the signal handler runs between them
            pass
    except KeyboardInterrupt:
        pass
    finally:
        lam.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
