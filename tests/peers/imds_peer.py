#!/usr/bin/env python3
"""An EC2 instance-metadata service (IMDSv2 only) on loopback, written from the AWS docs
("Use the Instance Metadata Service to access instance metadata", "Retrieve security
credentials from instance metadata"):

- ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds: N`` (1–21600)
  → 200, the token as text, the TTL echoed in the same header. Header missing or out of
  range → 400; a request carrying ``X-Forwarded-For`` → 403 (IMDS refuses proxied token
  requests).
- every ``GET`` needs ``X-aws-ec2-metadata-token`` with a live token, else 401
  (IMDSv1 is off, as on instances with ``HttpTokens=required``).
- ``GET /latest/meta-data/iam/security-credentials/`` → the role name;
  ``GET /latest/meta-data/iam/security-credentials/<role>`` → JSON ``{Code: "Success",
  LastUpdated, Type: "AWS-HMAC", AccessKeyId, SecretAccessKey, Token, Expiration}``;
  another role → 404; any other path (e.g. ``security-credentials-extended/``) → 404, so
  SDKs fall back to the documented path.

Keys come from the peer's minter (moto's STS in the tests) and carry the peer's own short
``Expiration``; see credential_peer.py for the control API (lifetime, outages, counts,
issued keys). ``revoke_tokens()`` makes every token issued so far answer 401.

CLI: ``python tests/peers/imds_peer.py --port 0 --lifetime 20`` prints one JSON line
(url, role) and serves fake keys until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import threading
import time
from typing import Optional

from credential_peer import CredentialHandler, CredentialPeer, Minter, iso8601

TOKEN_PATH = "/latest/api/token"
CREDS_PREFIX = "/latest/meta-data/iam/security-credentials/"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL = 21600


class _ImdsHandler(CredentialHandler):
    server_version = "EC2ws"

    @property
    def imds(self) -> "ImdsPeer":
        return self.peer  # type: ignore[return-value]

    def do_PUT(self):
        self._drain()
        if self._apply_outage():
            return
        if self.path != TOKEN_PATH:
            self.imds._bump("not_found")
            return self._reply(404, "Not Found\n")
        if self.headers.get("X-Forwarded-For") is not None:
            self.imds._bump("forbidden")
            return self._reply(403, "Forbidden\n")
        raw = self.headers.get(TTL_HEADER)
        try:
            ttl = int(raw) if raw is not None else 0
        except ValueError:
            ttl = 0
        if not 1 <= ttl <= MAX_TTL:
            self.imds._bump("bad_ttl")
            return self._reply(400, "Bad Request\n")
        self.imds._bump("token")
        token = self.imds._new_token(ttl)
        self._reply(200, token, headers={TTL_HEADER: str(ttl)})

    def do_GET(self):
        self._drain()
        if self._apply_outage():
            return
        if not self.imds._token_ok(self.headers.get(TOKEN_HEADER)):
            self.imds._bump("unauthorized")
            return self._reply(401, "Unauthorized\n")
        if self.path == CREDS_PREFIX:
            self.imds._bump("role")
            return self._reply(200, self.imds.role_name)
        if self.path == CREDS_PREFIX + self.imds.role_name:
            self.imds._bump("credentials")
            minted, key = self.imds.current()
            doc = {
                "Code": "Success",
                "LastUpdated": iso8601(key.issued_at),
                "Type": "AWS-HMAC",
                "AccessKeyId": minted.access_key_id,
                "SecretAccessKey": minted.secret_access_key,
                "Token": minted.session_token,
                "Expiration": iso8601(key.expires_at),
            }
            return self._reply(200, json.dumps(doc, indent=2))
        self.imds._bump("not_found")
        self._reply(404, "Not Found\n")

    def _method_not_allowed(self):
        self._drain()
        self.imds._bump("not_allowed")
        self._reply(405, "Method Not Allowed\n")

    do_POST = do_DELETE = do_PATCH = _method_not_allowed


class ImdsPeer(CredentialPeer):
    def __init__(self, port: int = 0, role_name: str = "envoy-lambda-instance-role",
                 minter: Optional[Minter] = None, lifetime: float = 20.0,
                 rotate_before: Optional[float] = None, hang_seconds: float = 10.0):
        super().__init__(_ImdsHandler, port, minter, lifetime, rotate_before, hang_seconds)
        self.role_name = role_name
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._tokens_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """What AWS_EC2_METADATA_SERVICE_ENDPOINT should be."""
        return self.url + "/"

    def revoke_tokens(self) -> None:
        with self._tokens_lock:
            self._tokens.clear()

    def _new_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(40)
        with self._tokens_lock:
            self._tokens[token] = time.monotonic() + ttl
        return token

    def _token_ok(self, token: Optional[str]) -> bool:
        if not token:
            return False
        with self._tokens_lock:
            exp = self._tokens.get(token)
        return exp is not None and time.monotonic() < exp


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="IMDSv2 peer on loopback (fake keys)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=20.0)
    ap.add_argument("--role", default="envoy-lambda-instance-role")
    args = ap.parse_args(argv)
    peer = ImdsPeer(args.port, args.role, lifetime=args.lifetime)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with peer:
        print(json.dumps({"url": peer.url, "role": peer.role_name}), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
