#!/usr/bin/env python3
"""moto server as a loopback Lambda endpoint that checks SigV4 signatures.

Importable (``MotoPeer``) and runnable::

    python tests/peers/moto_peer.py --port 0 --functions echo,hello --alias echo:live

The CLI prints one JSON line (endpoint, port, keys, region, account, functions,
aliases) on stdout once the peer is ready (and writes it to ``--json-out`` if
given, atomically), then keeps moto running until SIGTERM/SIGINT, when it stops
moto and exits 0.

Recipe (see docs/test-peers.md):
  1. start ``moto_server`` with signature checking off
     (``INITIAL_NO_AUTH_ACTION_COUNT`` set very high);
  2. ``POST /moto-api/config {"lambda":{"use_docker":false}}`` (Invoke echoes
     the payload, no Docker);
  3. through boto3 with dummy credentials: an IAM role for Lambda, an IAM user,
     an access key, a policy allowing ``lambda:*`` attached to the user, the
     functions, a published version and aliases;
  4. ``POST /moto-api/reset-auth`` with body ``0`` and ``Content-Type:
     text/plain``: from then on every request must be signed with the user's key.

Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict, dataclass, field

REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
# Credentials used while signature checking is still off (any value works then).
_SETUP_KEY = "AKIASETUPDUMMY000000"
_SETUP_SECRET = "setup-dummy-secret"

_HANDLER_SOURCE = b"def handler(event, context):\n    return event\n"

_LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
_INVOKE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}],
}


def bypass_proxies_for_loopback() -> None:
    """Keep loopback traffic off any configured HTTP proxy (urllib, requests, botocore
    all honour NO_PROXY)."""
    for var in ("NO_PROXY", "no_proxy"):
        have = [h for h in os.environ.get(var, "").split(",") if h]
        for h in ("127.0.0.1", "localhost"):
            if h not in have:
                have.append(h)
        os.environ[var] = ",".join(have)


bypass_proxies_for_loopback()


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (racy by nature; good enough)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _handler_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("lambda_function.py", _HANDLER_SOURCE)
    return buf.getvalue()


def _pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM moto if this (parent) process dies abruptly."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    # Signature checking stays off until /moto-api/reset-auth switches it on.
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = "1000000"
    env["MOTO_CALL_RESET_API"] = "false"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class PeerInfo:
    endpoint: str
    host: str
    port: int
    region: str
    account_id: str
    access_key: str
    secret_key: str
    user_name: str
    role_arn: str
    functions: list[str]
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)  # fn -> {alias: version}
    function_arns: dict[str, str] = field(default_factory=dict)
    auth: bool = True

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


class MotoPeer:
    """One moto_server subprocess on 127.0.0.1, set up as a signing Lambda peer."""

    def __init__(
        self,
        port: int = 0,
        functions: tuple[str, ...] | list[str] = ("echo",),
        aliases: list[tuple[str, str]] | None = None,
        region: str = REGION,
        auth: bool = True,
        log_path: str | None = None,
        start_timeout: float = 30.0,
    ):
        self.port = port or free_port()
        self.functions = list(functions)
        self.alias_specs = list(aliases or [])
        self.region = region
        self.auth = auth
        self.start_timeout = start_timeout
        self.endpoint = f"http://127.0.0.1:{self.port}"
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="moto-", suffix=".log")
            os.close(fd)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log_fh = None
        self.info: PeerInfo | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> PeerInfo:
        for fn, _alias in self.alias_specs:
            if fn not in self.functions:
                raise ValueError(f"alias for unknown function {fn!r}")
        self._log_fh = open(self.log_path, "ab")
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
            preexec_fn=_pdeathsig,
        )
        try:
            self._wait_ready()
            self._post("/moto-api/config", json.dumps({"lambda": {"use_docker": False}}).encode(),
                       "application/json")
            self.info = self._provision()
            if self.auth:
                self.enable_auth()
            self.info.auth = self.auth
        except BaseException:
            self.stop()
            raise
        return self.info

    def stop(self, timeout: float = 10.0) -> None:
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=timeout)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def __enter__(self) -> "MotoPeer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- moto control API ------------------------------------------------------
    def _post(self, path: str, body: bytes, content_type: str, timeout: float = 10.0) -> bytes:
        req = urllib.request.Request(
            self.endpoint + path, data=body, method="POST",
            headers={"Content-Type": content_type},
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()

    def enable_auth(self) -> None:
        """Turn signature checking on (every later request must be signed)."""
        # text/plain matters: a form content type makes moto answer 500.
        self._post("/moto-api/reset-auth", b"0", "text/plain")

    def disable_auth(self) -> None:
        self._post("/moto-api/reset-auth", b"1000000000", "text/plain")

    def queue_results(self, results: list, region: str | None = None) -> None:
        """Queue Invoke payloads (one per Invoke, shared by all functions)."""
        body = json.dumps({"results": results, "region": region or self.region}).encode()
        self._post("/moto-api/static/lambda-simple/response", body, "application/json")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"moto_server exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}"
                )
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/data.json", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:
                last = e
            time.sleep(0.1)
        raise TimeoutError(f"moto_server not ready on {self.endpoint} after "
                           f"{self.start_timeout}s ({last}):\n{self.log_text()[-4000:]}")

    # -- boto3 ----------------------------------------------------------------
    def client(self, service: str, access_key: str | None = None, secret_key: str | None = None,
               session_token: str | None = None):
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=access_key or _SETUP_KEY,
            aws_secret_access_key=secret_key or _SETUP_SECRET,
            aws_session_token=session_token,
            config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 1}),
        )

    def _provision(self) -> PeerInfo:
        iam = self.client("iam")
        role = iam.create_role(
            RoleName="envoy-lambda-test-role",
            AssumeRolePolicyDocument=json.dumps(_LAMBDA_TRUST_POLICY),
        )["Role"]
        user = iam.create_user(UserName="envoy-lambda-test")["User"]
        key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
        policy = iam.create_policy(
            PolicyName="envoy-lambda-invoke", PolicyDocument=json.dumps(_INVOKE_POLICY)
        )["Policy"]
        iam.attach_user_policy(UserName=user["UserName"], PolicyArn=policy["Arn"])
        account_id = role["Arn"].split(":")[4] or DEFAULT_ACCOUNT_ID

        lam = self.client("lambda")
        code = _handler_zip()
        arns: dict[str, str] = {}
        for name in self.functions:
            fn = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role["Arn"],
                Handler="lambda_function.handler",
                Code={"ZipFile": code},
                Publish=False,
                Timeout=3,
            )
            arns[name] = fn["FunctionArn"]
        aliases: dict[str, dict[str, str]] = {}
        published: dict[str, str] = {}
        for fn_name, alias in self.alias_specs:
            if fn_name not in published:
                published[fn_name] = lam.publish_version(FunctionName=fn_name)["Version"]
            lam.create_alias(FunctionName=fn_name, Name=alias, FunctionVersion=published[fn_name])
            aliases.setdefault(fn_name, {})[alias] = published[fn_name]
        return PeerInfo(
            endpoint=self.endpoint,
            host="127.0.0.1",
            port=self.port,
            region=self.region,
            account_id=account_id,
            access_key=key["AccessKeyId"],
            secret_key=key["SecretAccessKey"],
            user_name=user["UserName"],
            role_arn=role["Arn"],
            functions=list(self.functions),
            aliases=aliases,
            function_arns=arns,
        )

    # -- self-check -------------------------------------------------------------
    def verify_auth(self) -> None:
        """Prove the peer is fair: right key → 200, wrong secret → 403."""
        from botocore.exceptions import ClientError

        assert self.info is not None
        fn = self.functions[0]
        good = self.client("lambda", self.info.access_key, self.info.secret_key)
        r = good.invoke(FunctionName=fn, Payload=b'{"probe":1}')
        if r["StatusCode"] != 200:
            raise AssertionError(f"signed invoke answered {r['StatusCode']}")
        bad = self.client("lambda", self.info.access_key, self.info.secret_key + "x")
        try:
            bad.invoke(FunctionName=fn, Payload=b'{"probe":1}')
        except ClientError as e:
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            if status != 403:
                raise AssertionError(f"wrongly signed invoke answered {status}, not 403") from e
        else:
            raise AssertionError("wrongly signed invoke was accepted: signature checking is off")


def _parse_alias(s: str) -> tuple[str, str]:
    fn, sep, alias = s.partition(":")
    if not sep or not fn or not alias:
        raise argparse.ArgumentTypeError(f"--alias wants FUNCTION:ALIAS, got {s!r}")
    return fn, alias


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--functions", default="echo,hello", help="comma-separated names")
    ap.add_argument("--alias", action="append", type=_parse_alias, default=[],
                    metavar="FUNCTION:ALIAS", help="publish a version and alias it (repeatable)")
    ap.add_argument("--region", default=REGION)
    ap.add_argument("--no-auth", action="store_true", help="leave signature checking off")
    ap.add_argument("--verify", action="store_true",
                    help="check right key → 200, wrong secret → 403 before reporting ready")
    ap.add_argument("--json-out", help="also write the JSON here (atomically) when ready")
    ap.add_argument("--log", help="moto's log file (default: a temp file)")
    ap.add_argument("--start-timeout", type=float, default=30.0)
    ap.add_argument("--exit-after-setup", action="store_true",
                    help="print the JSON, stop moto and exit (for smoke checks)")
    args = ap.parse_args(argv)

    functions = [f for f in (x.strip() for x in args.functions.split(",")) if f]
    peer = MotoPeer(port=args.port, functions=functions, aliases=args.alias, region=args.region,
                    auth=not args.no_auth, log_path=args.log, start_timeout=args.start_timeout)
    stop = threading.Event()

    def _on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        info = peer.start()
        if args.verify and not args.no_auth:
            peer.verify_auth()
        text = info.to_json()
        if args.json_out:
            tmp = args.json_out + ".tmp"
            with open(tmp, "w") as f:
                f.write(text + "\n")
            os.replace(tmp, args.json_out)
        print(text, flush=True)
        if args.exit_after_setup:
            return 0
        while not stop.is_set():
            if peer.proc is None or peer.proc.poll() is not None:
                print(f"moto_server exited unexpectedly:\n{peer.log_text()[-2000:]}",
                      file=sys.stderr)
                return 1
            stop.wait(0.5)
        return 0
    except Exception as e:
        print(f"moto_peer: {e}", file=sys.stderr)
        return 1
    finally:
        peer.stop()


if __name__ == "__main__":
    sys.exit(main())
