"""A recording pass-through in front of moto: Envoy's Lambda cluster and its STS endpoint
point here, every request is forwarded to moto unchanged (same Host header, same bytes, so
moto checks the signature the client made) and recorded with the key id that signed it,
its ``X-Amz-Date``, whether ``X-Amz-Security-Token`` came along, and moto's status.

That record is what lets a test say *which* key signed each invocation and *when*,
while moto still says whether the signature was right.

One deliberate change: real STS takes ``AssumeRoleWithWebIdentity`` unsigned, but moto
answers 500 to an unsigned request while signature checking is on (it reads the missing
``Authorization`` header). The tap checks the ``WebIdentityToken`` against the tokens a
test accepts (``accept_tokens``; wrong token → 400 ``InvalidIdentityToken`` like STS) and
signs the forwarded call with moto's IAM user key. moto itself ignores the token.

``sts_lifetime = N`` rewrites the ``Expiration`` of STS answers to now + N seconds (moto
never expires keys, and real STS gives at least 15 minutes), so tests see refreshes of
assumed-role and web identity credentials within seconds.
"""

from __future__ import annotations

import calendar
import http.client
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Optional

from capture_upstream import Captured, CaptureUpstream, Reply

_KEY_RE = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")
_EXP_RE = re.compile(rb"<Expiration>([^<]+)</Expiration>")
_CRED_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer",
        "upgrade", "proxy-connection", "date", "server"}
_ERR_TOKEN = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
              b"<Type>Sender</Type><Code>InvalidIdentityToken</Code>"
              b"<Message>token not accepted by the test</Message></Error>"
              b"<RequestId>tap-0</RequestId></ErrorResponse>")


@dataclass
class Exchange:
    time: float                 # arrival (epoch seconds)
    method: str
    path: str
    action: str                 # STS Action=..., or "Invoke" / the Lambda path's verb
    key_id: Optional[str]       # from Authorization's Credential=, None if unsigned
    service: Optional[str]      # credential scope's service (lambda, sts)
    amz_date: Optional[float]   # X-Amz-Date as epoch seconds
    has_session_token: bool
    status: int                 # moto's answer (or the tap's own, for refused tokens)
    web_identity_token: Optional[str] = None
    form: dict = field(default_factory=dict)  # STS form parameters (RoleArn, RoleSessionName...)
    issued_key_id: Optional[str] = None       # STS: the AccessKeyId moto answered with
    issued_expiration: Optional[str] = None   # STS: the Expiration the client got


def _amz_date(v: Optional[str]) -> Optional[float]:
    if not v:
        return None
    return float(calendar.timegm(time.strptime(v, "%Y%m%dT%H%M%SZ")))


class MotoTap(CaptureUpstream):
    def __init__(self, moto_endpoint: str, signer_key: Optional[tuple[str, str]] = None,
                 region: str = "us-east-1", port: int = 0):
        """signer_key: (access key, secret) the tap signs web-identity calls with."""
        super().__init__(port)
        u = urllib.parse.urlsplit(moto_endpoint)
        self.moto_host, self.moto_port = u.hostname or "127.0.0.1", u.port or 80
        self.signer_key = signer_key
        self.region = region
        self._tokens: Optional[set[str]] = None  # None = any token
        self.sts_lifetime: Optional[float] = None  # rewrite STS Expiration to now + this
        self._ex_lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self.set_default(self._forward)

    # -- control -----------------------------------------------------------------
    def accept_tokens(self, *tokens: str) -> None:
        with self._ex_lock:
            self._tokens = set(tokens)

    @property
    def exchanges(self) -> list[Exchange]:
        with self._ex_lock:
            return list(self._exchanges)

    def invocations(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.service == "lambda" and e.method == "POST"
                and "/invocations" in e.path]

    def sts_calls(self, action: Optional[str] = None) -> list[Exchange]:
        return [e for e in self.exchanges
                if (e.service == "sts" or e.action.startswith("AssumeRole"))
                and (action is None or e.action == action)]

    def clear_exchanges(self) -> None:
        with self._ex_lock:
            self._exchanges.clear()

    # -- forwarding --------------------------------------------------------------
    def _forward(self, cap: Captured) -> Reply:
        auth = cap.header("authorization") or ""
        m = _CRED_RE.search(auth)
        form = {}
        if cap.body and "form-urlencoded" in (cap.header("content-type") or ""):
            form = dict(urllib.parse.parse_qsl(cap.body.decode("utf-8", "replace")))
        action = form.get("Action") or ("Invoke" if "/invocations" in cap.path else cap.path)
        ex = Exchange(time=cap.time, method=cap.method, path=cap.path, action=action,
                      key_id=m.group(1) if m else None, service=m.group(4) if m else None,
                      amz_date=_amz_date(cap.header("x-amz-date")),
                      has_session_token=cap.header("x-amz-security-token") is not None,
                      status=0, web_identity_token=form.get("WebIdentityToken"),
                      form={k: v for k, v in form.items() if k != "WebIdentityToken"})
        headers = [(k, v) for k, v in cap.headers if k not in ("transfer-encoding",
                                                               "content-length")]
        if action == "AssumeRoleWithWebIdentity" and not m:
            with self._ex_lock:
                accepted = self._tokens
            if accepted is not None and ex.web_identity_token not in accepted:
                return self._done(ex, Reply(400, {"Content-Type": "text/xml"}, _ERR_TOKEN))
            headers = self._sign_sts(cap)
        status, rh, body = self._send(cap.method, cap.path, headers, cap.body)
        if action.startswith("AssumeRole") and status == 200:
            body = self._rewrite_expiration(body)
            k, e = _KEY_RE.search(body), _EXP_RE.search(body)
            ex.issued_key_id = k.group(1).decode() if k else None
            ex.issued_expiration = e.group(1).decode() if e else None
        return self._done(ex, Reply(status, rh, body))

    def _rewrite_expiration(self, body: bytes) -> bytes:
        life = self.sts_lifetime
        if life is None:
            return body
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + life))
        return _EXP_RE.sub(b"<Expiration>" + exp.encode() + b"</Expiration>", body)

    def role_of(self, key_id: str) -> Optional[str]:
        """The RoleArn of the STS call that issued this key (None if STS did not)."""
        for e in self.exchanges:
            if e.issued_key_id == key_id:
                return e.form.get("RoleArn")
        return None

    def _done(self, ex: Exchange, reply: Reply) -> Reply:
        ex.status = reply.status
        with self._ex_lock:
            self._exchanges.append(ex)
        return reply

    def _sign_sts(self, cap: Captured) -> list[tuple[str, str]]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        if self.signer_key is None:
            raise RuntimeError("MotoTap has no signer_key for AssumeRoleWithWebIdentity")
        url = f"http://{self.moto_host}:{self.moto_port}{cap.path}"
        req = AWSRequest(method=cap.method, url=url, data=cap.body, headers={
            "Content-Type": cap.header("content-type") or "application/x-www-form-urlencoded",
        })
        SigV4Auth(Credentials(*self.signer_key), "sts", self.region).add_auth(req)
        out = [(k.lower(), v) for k, v in req.headers.items()]
        out.append(("host", f"{self.moto_host}:{self.moto_port}"))
        return out

    def _send(self, method: str, path: str, headers: list[tuple[str, str]],
              body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.moto_host, self.moto_port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            r = conn.getresponse()
            data = r.read()
            rh = {k: v for k, v in r.getheaders() if k.lower() not in _HOP}
            return r.status, rh, data
        finally:
            conn.close()
