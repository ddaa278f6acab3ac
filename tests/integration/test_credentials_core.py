"""Provider-backed credentials through real Envoy (issue 10, the module's side).

- ``assume_role`` on top of the Envoy process's environment keys, against moto's STS with
  signature checking on: moto accepts each Invoke only when it is signed with the assumed
  role's temporary key and carries its ``X-Amz-Security-Token``.
- Start-up: a request that arrives before the first credentials waits (the stream is paused,
  the worker keeps serving) and gets 503 ``credentials_unavailable`` after ``credentials_wait``
  when the provider never answers.
- Config: ``secret_ref`` with ``credentials`` is refused at load, naming the field.

Only loopback is used: every test sets the provider endpoints to local peers, and
envoy_proc.py sets ``AWS_EC2_METADATA_DISABLED=true``.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

import configs
from moto_peer import MotoPeer

pytestmark = pytest.mark.usefixtures("module_so")

TIMEOUT = 20
NO_FILES = {"AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"}


def provider_upstream(name: str, port: int, functions=None, **spec) -> dict:
    """An upstream that signs with an AWS provider instead of a secret_ref."""
    s = {"region": "us-east-1", "endpoint": {"scheme": "http", "host": "127.0.0.1", "port": port}}
    s.update(spec)
    return {"name": name, "type": "aws", "spec": s,
            "functions": functions or configs.default_functions()}


@pytest.fixture(scope="module")
def sts_moto(tmp_path_factory):
    """moto (checking signatures) with a role ``cross`` the user may assume, allowed lambda:*."""
    log = tmp_path_factory.mktemp("moto-sts") / "moto.log"
    peer = MotoPeer(functions=("echo", "hello"), log_path=str(log))
    peer.start()
    try:
        peer.disable_auth()
        iam = peer.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
        allow = lambda action: {"Version": "2012-10-17", "Statement": [  # noqa: E731
            {"Effect": "Allow", "Action": action, "Resource": "*"}]}
        role = iam.create_role(RoleName="cross", AssumeRolePolicyDocument=json.dumps(trust))
        invoke = iam.create_policy(PolicyName="cross-invoke",
                                   PolicyDocument=json.dumps(allow("lambda:*")))
        iam.attach_role_policy(RoleName="cross", PolicyArn=invoke["Policy"]["Arn"])
        assume = iam.create_policy(PolicyName="user-assume",
                                   PolicyDocument=json.dumps(allow("sts:AssumeRole")))
        iam.attach_user_policy(UserName=peer.info.user_name, PolicyArn=assume["Policy"]["Arn"])
        peer.enable_auth()
        peer.cross_role_arn = role["Role"]["Arn"]
        yield peer
    finally:
        peer.stop()


def test_assume_role_on_env_keys_signs_with_the_temporary_key(start_envoy, sts_moto):
    i = sts_moto.info
    fc = {"upstreams": [provider_upstream(
        "moto", i.port,
        credentials={"source": "env"},
        assume_role={"role_arn": sts_moto.cross_role_arn, "session_name": "envoy-test",
                     "duration": "900s"},
        credentials_wait="5s")]}
    env = {"AWS_ACCESS_KEY_ID": i.access_key, "AWS_SECRET_ACCESS_KEY": i.secret_key,
           "AWS_ENDPOINT_URL_STS": i.endpoint, **NO_FILES}
    envoy = start_envoy(configs.module_config(i.port, fc, configs.standard_routes()),
                        name="assume-role", env=env)
    t0 = time.monotonic()
    r = requests.post(envoy.url + "/echo", json={"via": "assumed"}, timeout=TIMEOUT)
    first = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert r.json() == {"via": "assumed"}
    for _ in range(3):
        r = requests.get(envoy.url + "/hello", timeout=TIMEOUT)
        assert r.status_code == 200, r.text
    s = envoy.stats("credentials")
    assert s.get("envoy_lambda.credentials_refresh_ok.upstream.moto") == 1, s
    assert s.get("envoy_lambda.credentials_source.upstream.moto.source.assume_role") == 1, s
    exp = s.get("envoy_lambda.credentials_expiration_unix_seconds.upstream.moto", 0)
    assert time.time() < exp <= time.time() + 3600, s
    # The key moto's STS issued is a temporary one; nothing of it reaches the log.
    log = envoy.log_text()
    assert i.secret_key not in log
    assert "ASIA" not in log
    print(f"first request (may have waited for STS): {first * 1000:.0f} ms")


def test_env_source_signs_with_exactly_the_environment_keys(start_envoy, sts_moto):
    """The env source takes the process's keys as they are: a wrong secret there is moto's
    403 (so the 200s above are moto's verdict on real signatures)."""
    i = sts_moto.info
    upstream = provider_upstream("moto", i.port, credentials={"source": "env"})
    env = {"AWS_ACCESS_KEY_ID": i.access_key, "AWS_SECRET_ACCESS_KEY": "not-the-secret",
           **NO_FILES}
    envoy = start_envoy(configs.module_config(i.port, {"upstreams": [upstream]},
                                              configs.standard_routes()),
                        name="env-wrong", env=env)
    r = requests.get(envoy.url + "/echo", timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    r = requests.get(envoy.url + "/echo", timeout=TIMEOUT)
    assert r.status_code == 403, r.text


class SilentPeer:
    """Accepts connections and never answers: a provider that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


def test_startup_wait_is_bounded_and_the_worker_keeps_serving(start_envoy, moto):
    silent = SilentPeer()
    try:
        i = moto.info
        waiting = provider_upstream("waiting", i.port, credentials={"source": "container"},
                                    credentials_wait="1500ms")
        static = configs.aws_upstream("moto", i.port, configs.default_functions())
        fc = {"upstreams": [waiting, static]}
        routes = [("/wait", configs.module_per_route("waiting", "echo")),
                  ("/static", configs.module_per_route("moto", "echo"))]
        env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{silent.port}/creds",
               **NO_FILES}
        cfg = configs.module_config(
            i.port, fc, routes,
            secrets={"aws-creds": configs.seed_secret(i.access_key, i.secret_key)})
        envoy = start_envoy(cfg, name="startup-wait", env=env)

        result = {}

        def slow():
            t = time.monotonic()
            r = requests.get(envoy.url + "/wait", timeout=TIMEOUT)
            result["status"], result["body"] = r.status_code, r.json()
            result["elapsed"] = time.monotonic() - t

        th = threading.Thread(target=slow)
        th.start()
        time.sleep(0.2)
        # The one worker serves other streams while the first one is paused.
        t = time.monotonic()
        r = requests.get(envoy.url + "/static", timeout=TIMEOUT)
        quick = time.monotonic() - t
        assert r.status_code == 200, r.text
        th.join(TIMEOUT)
        assert result["status"] == 503, result
        assert result["body"]["error"] == "credentials_unavailable"
        assert result["body"]["message"] == (
            "no usable AWS credentials for upstream 'waiting' (source: container)")
        assert 1.4 <= result["elapsed"] < 3.0, result
        assert quick < 1.0, quick
        assert result["elapsed"] > quick
        print(f"paused stream answered after {result['elapsed'] * 1000:.0f} ms; "
              f"the other route meanwhile in {quick * 1000:.0f} ms")
    finally:
        silent.close()


def test_secret_ref_with_credentials_is_refused_naming_the_field(envoy_validate, moto):
    bad = configs.aws_upstream("moto", moto.port, configs.default_functions(),
                               credentials={"source": "env"})
    cfg = configs.module_config(moto.port, {"upstreams": [bad]}, configs.standard_routes(),
                                secrets={"aws-creds": configs.seed_secret("A", "B")})
    rc, out = envoy_validate(cfg)
    assert rc != 0, out
    assert "upstreams[0].spec.credentials: give either secret_ref" in out, out
