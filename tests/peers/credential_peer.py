"""What the IMDSv2 and container-credentials peers share: minting short-lived keys, the
record of every key handed out, outages on demand, request counting.

Keys come from a ``Minter``: ``StsMinter`` asks moto's STS (``AssumeRole``, signed with
moto's IAM user key) on every mint, so the keys pass moto's signature check;
``fake_minter`` makes random look-alikes for tests that never sign with them. moto keeps
no expiry, so the peer serves each key with its *own* short ``Expiration`` and records
``(key id, issued_at, expires_at)``: a test decides "valid at that moment" from that list.

``delay`` (seconds) holds every answer that long (a slow first fetch at start-up).

Outage modes (``go_down(mode)`` / ``come_back()``):
  ``refuse``  the listening socket is closed (connection refused), reopened on the same port;
  ``error``   every request answers 500;
  ``hang``    every request is held ``hang_seconds`` and then the connection is dropped.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import math
import secrets
import string
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

from loopback_server import LoopbackServer, _Server

OUTAGE_MODES = ("refuse", "error", "hang")


def iso8601(epoch: float) -> str:
    """``2026-12-02T00:40:12Z``: the form IMDS and the container endpoint use."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Minted:
    access_key_id: str
    secret_access_key: str
    session_token: str


@dataclass(frozen=True)
class IssuedKey:
    access_key_id: str
    issued_at: float   # epoch seconds, when the peer answered with it first
    expires_at: int    # epoch seconds, exactly the served Expiration

    def valid_at(self, t: float) -> bool:
        return self.issued_at <= t < self.expires_at


Minter = Callable[[], Minted]


def fake_minter() -> Minted:
    """Random key material of the right shapes (never accepted by anyone)."""
    alnum = string.ascii_uppercase + string.digits
    return Minted("ASIA" + "".join(secrets.choice(alnum) for _ in range(16)),
                  secrets.token_urlsafe(30), secrets.token_urlsafe(60))


class StsMinter:
    """AssumeRole against moto's STS on each call (moto checks the caller's signature)."""

    def __init__(self, sts_endpoint: str, access_key: str, secret_key: str, role_arn: str,
                 session_name: str = "peer", region: str = "us-east-1"):
        import boto3
        from botocore.config import Config

        self.role_arn = role_arn
        self.session_name = session_name
        self._sts = boto3.client("sts", endpoint_url=sts_endpoint, region_name=region,
                                 aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                 config=Config(retries={"max_attempts": 1}, connect_timeout=5,
                                               read_timeout=10))
        self._lock = threading.Lock()  # boto3 clients are thread-safe, this keeps order simple

    def __call__(self) -> Minted:
        with self._lock:
            c = self._sts.assume_role(RoleArn=self.role_arn, RoleSessionName=self.session_name,
                                      DurationSeconds=900)["Credentials"]
        return Minted(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


class CredentialPeer(LoopbackServer):
    """Base of the credential peers. Subclasses give the handler class and call
    ``current()`` to get the key to serve."""

    def __init__(self, handler: type, port: int = 0, minter: Optional[Minter] = None,
                 lifetime: float = 20.0, rotate_before: Optional[float] = None,
                 hang_seconds: float = 10.0):
        """lifetime: seconds from issue to the served Expiration.
        rotate_before: None = a new key on every credentials request; a number = keep
        serving the current key until that many seconds before its expiry (AWS rotates
        instance-role keys at least 5 minutes before they expire)."""
        super().__init__(handler, port)
        self._handler_cls = handler
        self.minter: Minter = minter or fake_minter
        self.lifetime = lifetime
        self.rotate_before = rotate_before
        self.hang_seconds = hang_seconds
        self.delay = 0.0
        self._lock = threading.Lock()
        self._secrets: list[str] = []  # every secret and token handed out (leak checks)
        self._issued: list[IssuedKey] = []
        self._current: Optional[tuple[Minted, IssuedKey]] = None
        self._counts: dict[str, int] = {}
        self._outage: Optional[str] = None
        self._down_since: Optional[float] = None

    # -- control API ------------------------------------------------------------
    def set_lifetime(self, seconds: float) -> None:
        with self._lock:
            self.lifetime = seconds

    def go_down(self, mode: str = "refuse") -> None:
        if mode not in OUTAGE_MODES:
            raise ValueError(f"outage mode {mode!r} not in {OUTAGE_MODES}")
        with self._lock:
            if self._outage is not None:
                raise RuntimeError(f"peer is already down ({self._outage})")
            self._outage = mode
            self._down_since = time.time()
        if mode == "refuse":
            self._srv.shutdown()
            self._srv.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def come_back(self) -> None:
        with self._lock:
            mode, self._outage = self._outage, None
        if mode == "refuse":
            self._srv = _Server((self.host, self.port), self._handler_cls)
            self._srv.owner = self  # type: ignore[attr-defined]
            self.start()

    @property
    def down(self) -> Optional[str]:
        return self._outage

    def count(self, kind: str) -> int:
        """Requests seen of one kind (subclasses name them: ``token``, ``credentials``,
        ``unauthorized``, ...); ``total`` counts all answered requests."""
        with self._lock:
            return self._counts.get(kind, 0)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def issued(self) -> list[IssuedKey]:
        with self._lock:
            return list(self._issued)

    def secrets_issued(self) -> list[str]:
        """Secret keys and session tokens handed out: none may show up in a log or answer."""
        with self._lock:
            return list(self._secrets)

    def issued_key(self, access_key_id: str) -> Optional[IssuedKey]:
        with self._lock:
            return next((k for k in self._issued if k.access_key_id == access_key_id), None)

    def control_json(self) -> str:
        """The whole state, for a CLI or a failing test's message."""
        with self._lock:
            return json.dumps({"url": self.url, "lifetime": self.lifetime, "down": self._outage,
                               "counts": self._counts,
                               "issued": [asdict(k) for k in self._issued]})

    # -- for handlers -------------------------------------------------------------
    def _bump(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._counts["total"] = self._counts.get("total", 0) + 1

    def _outage_now(self) -> Optional[str]:
        with self._lock:
            return self._outage

    def current(self) -> tuple[Minted, IssuedKey]:
        """The key to serve now, minting a new one when due."""
        with self._lock:
            now = time.time()
            cur = self._current
            due = (cur is None or self.rotate_before is None
                   or now >= cur[1].expires_at - self.rotate_before)
            if not due:
                return cur  # type: ignore[return-value]
            lifetime = self.lifetime
        minted = self.minter()  # outside the lock: may be a network call to moto
        now = time.time()
        key = IssuedKey(minted.access_key_id, now, int(math.floor(now + lifetime)))
        with self._lock:
            self._current = (minted, key)
            self._issued.append(key)
            self._secrets += [minted.secret_access_key, minted.session_token]
        return minted, key


class CredentialHandler(http.server.BaseHTTPRequestHandler):
    """Handler helpers: quiet, HTTP/1.1 keep-alive, outages applied before routing."""

    protocol_version = "HTTP/1.1"
    server_version = "credential-peer"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    @property
    def peer(self) -> CredentialPeer:
        return self.server.owner  # type: ignore[attr-defined]

    def _drain(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def _reply(self, status: int, body: bytes | str, content_type: str = "text/plain",
               headers: Optional[dict[str, str]] = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _apply_outage(self) -> bool:
        """True when an outage answered (or dropped) the request. Applies ``delay`` first."""
        if self.peer.delay:
            time.sleep(self.peer.delay)
        mode = self.peer._outage_now()
        if mode is None:
            return False
        self.peer._bump("during_outage")
        if mode == "hang":
            time.sleep(self.peer.hang_seconds)
            self.close_connection = True
            return True
        self.close_connection = True
        self._reply(500, "peer is down (scripted outage)\n")
        return True
