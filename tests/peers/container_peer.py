#!/usr/bin/env python3
"""A container credentials endpoint on loopback (ECS task role / EKS Pod Identity), written
from the AWS docs ("Amazon ECS task IAM role", "EKS Pod Identity", the SDKs' "Container
credential provider" page):

- ``GET <path>`` (the path of ``AWS_CONTAINER_CREDENTIALS_FULL_URI``) with
  ``Authorization: <token>`` (the value of ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` or the
  contents of ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE``) → 200 JSON ``{AccessKeyId,
  SecretAccessKey, Token, Expiration, RoleArn}`` (plus ``AccountId`` when configured, as
  the Pod Identity agent sends). No ``Authorization`` → 401, a wrong one → 403, another
  path → 404, another method → 405. Errors are JSON ``{"code", "message"}``.
- ``require_token=False`` models ECS's relative-URI endpoint, which needs no header.

``set_token()`` rotates the accepted token (EKS rotates the projected token file). The rest
of the control API is credential_peer.py's.

CLI: ``python tests/peers/container_peer.py --port 0 --token T`` prints one JSON line
(url = the full URI) and serves fake keys until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Optional

from credential_peer import CredentialHandler, CredentialPeer, Minter, iso8601

DEFAULT_PATH = "/v1/credentials"


class _ContainerHandler(CredentialHandler):
    @property
    def container(self) -> "ContainerPeer":
        return self.peer  # type: ignore[return-value]

    def _error(self, status: int, code: str, message: str) -> None:
        self._reply(status, json.dumps({"code": code, "message": message}),
                    content_type="application/json")

    def do_GET(self):
        self._drain()
        if self._apply_outage():
            return
        c = self.container
        if self.path != c.path:
            c._bump("not_found")
            return self._error(404, "NotFound", "no such path")
        if c.require_token:
            got = self.headers.get("Authorization")
            if got is None:
                c._bump("unauthorized")
                return self._error(401, "AccessDenied", "Authorization header is missing")
            if got != c.token:
                c._bump("forbidden")
                return self._error(403, "AccessDenied", "Authorization token is not valid")
        c._bump("credentials")
        minted, key = c.current()
        doc = {
            "AccessKeyId": minted.access_key_id,
            "SecretAccessKey": minted.secret_access_key,
            "Token": minted.session_token,
            "Expiration": iso8601(key.expires_at),
            "RoleArn": c.role_arn,
        }
        if c.account_id:
            doc["AccountId"] = c.account_id
        self._reply(200, json.dumps(doc), content_type="application/json")

    def _method_not_allowed(self):
        self._drain()
        self.container._bump("not_allowed")
        self._error(405, "MethodNotAllowed", "only GET")

    do_PUT = do_POST = do_DELETE = do_PATCH = _method_not_allowed


class ContainerPeer(CredentialPeer):
    def __init__(self, port: int = 0, token: Optional[str] = "container-test-token",
                 path: str = DEFAULT_PATH,
                 role_arn: str = "arn:aws:iam::123456789012:role/envoy-lambda-task-role",
                 account_id: Optional[str] = None, minter: Optional[Minter] = None,
                 lifetime: float = 20.0, rotate_before: Optional[float] = None,
                 hang_seconds: float = 10.0):
        super().__init__(_ContainerHandler, port, minter, lifetime, rotate_before, hang_seconds)
        self.path = path
        self.role_arn = role_arn
        self.account_id = account_id
        self._token_lock = threading.Lock()
        self._token = token

    @property
    def require_token(self) -> bool:
        return self._token is not None

    @property
    def token(self) -> Optional[str]:
        with self._token_lock:
            return self._token

    def set_token(self, token: str) -> None:
        with self._token_lock:
            self._token = token

    @property
    def full_uri(self) -> str:
        """What AWS_CONTAINER_CREDENTIALS_FULL_URI should be."""
        return self.url + self.path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="container credentials peer on loopback (fake keys)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=20.0)
    ap.add_argument("--token", default="container-test-token")
    args = ap.parse_args(argv)
    peer = ContainerPeer(args.port, token=args.token, lifetime=args.lifetime)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with peer:
        print(json.dumps({"url": peer.full_uri}), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
