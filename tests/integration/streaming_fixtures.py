"""The streaming Lambda peer as a pytest fixture, and a SigV4-signed call straight to it.

Test modules import what they use (``from streaming_fixtures import streaming_lambda``); the
shared conftest.py stays as it is.
"""

from __future__ import annotations

import hashlib
from typing import Optional

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import chunked_client
from streaming_lambda import StreamingLambda


@pytest.fixture
def streaming_lambda():
    """A fresh streaming Lambda peer (signature checking on) per test."""
    with StreamingLambda() as lam:
        yield lam


def signed_headers(url: str, body: bytes, access_key: str, secret_key: str,
                   region: str = "us-east-1", session_token: Optional[str] = None,
                   extra: Optional[dict[str, str]] = None,
                   content_sha256: Optional[str] = None) -> dict[str, str]:
    """Headers of a SigV4-signed POST (service lambda), signed by botocore."""
    req = AWSRequest(method="POST", url=url, data=body, headers=dict(extra or {}))
    req.headers["x-amz-content-sha256"] = content_sha256 or hashlib.sha256(body).hexdigest()
    SigV4Auth(Credentials(access_key, secret_key, session_token), "lambda", region).add_auth(req)
    return dict(req.headers.items())


def call_peer(lam: StreamingLambda, function: str = "fn", body: bytes = b"{}",
              qualifier: Optional[str] = None, secret_key: Optional[str] = None,
              access_key: Optional[str] = None, stream: bool = True,
              **kw) -> chunked_client.Response:
    """A signed InvokeWithResponseStream (or Invoke) straight to the peer, read raw."""
    path = (f"/2021-11-15/functions/{function}/response-streaming-invocations" if stream
            else f"/2015-03-31/functions/{function}/invocations")
    url = lam.url + path + (f"?Qualifier={qualifier}" if qualifier else "")
    headers = signed_headers(url, body, access_key or lam.access_key,
                             secret_key or lam.secret_key, lam.region, lam.session_token)
    headers.pop("Content-Length", None)
    return chunked_client.request(url, body=body, headers=headers, **kw)
