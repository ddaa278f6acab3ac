"""Self-tests of the test peers and helpers (no module needed)."""

from __future__ import annotations

import time

import pytest
import requests

import configs
import rawhttp
from moto_peer import MotoPeer

TIMEOUT = 20


def test_moto_peer_checks_signatures(moto):
    """The session peer: right key → 200, wrong secret → 403, unknown key → 403."""
    from botocore.exceptions import ClientError

    i = moto.info
    moto.verify_auth()
    lam = moto.client("lambda", "AKIAUNKNOWNKEY000000", "whatever")
    with pytest.raises(ClientError) as ei:
        lam.invoke(FunctionName="echo", Payload=b"{}")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    good = moto.client("lambda", i.access_key, i.secret_key)
    # (no GET calls here: moto 403s any body-less request whose x-amz-content-sha256 is not
    # signed, and boto3 signs it only for S3 — so e.g. ListAliases fails once auth is on)
    assert good.invoke(FunctionName="echo", Qualifier="live",
                       Payload=b'{"x":1}')["Payload"].read() == b'{"x":1}'


def test_moto_peer_cli_stops_cleanly(tmp_path):
    """The CLI mode used by scripts/run.sh: JSON on stdout, clean stop on SIGTERM."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "peers" / "moto_peer.py"
    out = tmp_path / "peer.json"
    p = subprocess.Popen([sys.executable, str(script), "--functions", "a,b", "--alias", "a:live",
                          "--json-out", str(out), "--log", str(tmp_path / "moto.log")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.1)
        assert out.exists(), p.stderr.read().decode() if p.poll() is not None else "timeout"
        info = json.loads(out.read_text())
        assert info["functions"] == ["a", "b"] and info["aliases"] == {"a": {"live": "1"}}
        assert info["endpoint"] == f"http://127.0.0.1:{info['port']}"
        assert info["access_key"].startswith("AKIA") and info["secret_key"]
        p.terminate()
        assert p.wait(timeout=15) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(info["endpoint"] + "/moto-api/data.json", timeout=2)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def test_moto_peer_without_auth(tmp_path):
    with MotoPeer(functions=("f",), auth=False, log_path=str(tmp_path / "m.log")) as m:
        lam = m.client("lambda", "AKIAANY", "any")
        assert lam.invoke(FunctionName="f", Payload=b"{}")["StatusCode"] == 200


def test_capture_upstream_records_and_scripts(capture):
    capture.push(429, {"X-Test": "1"}, b'{"t":1}')
    r = requests.post(capture.url + "/a?b=c", data=(b"x" * 10 for _ in range(5)),
                      headers={"X-H": "v"}, timeout=TIMEOUT)
    assert r.status_code == 429 and r.headers["x-test"] == "1" and r.content == b'{"t":1}'
    r = requests.post(capture.url + "/echo", data=b"hello", timeout=TIMEOUT)
    assert r.status_code == 200 and r.content == b"hello"
    a, b = capture.wait_for(2)
    assert (a.method, a.path, a.body, a.chunked, a.header("x-h")) == \
        ("POST", "/a?b=c", b"x" * 50, True, "v")
    assert (b.body, b.chunked) == (b"hello", False)


def test_rawhttp_reads_early_413(start_envoy, capture):
    """Envoy's own buffer limit (native lambda filter, 1 MiB) answers before the body ends."""
    cfg = configs.native_lambda_config(
        capture.port, "arn:aws:lambda:us-east-1:123456789012:function:echo", "AKIAX", "s")
    e = start_envoy(cfg)
    for cl in (7 * 1024 * 1024, None):
        r = rawhttp.request(e.url, "POST", "/", content_length=cl, timeout=30,
                            chunks=rawhttp.repeat(b"x" * 65536, 7 * 1024 * 1024))
        assert r.status == 413 and not r.sent_all, r
    assert capture.requests == []


def test_sds_file_rotation_by_rename(start_envoy, capture, tmp_path):
    """The SDS file the module tests write is valid, and an atomic rename rotates it
    (checked with Envoy's credential_injector, which puts the secret in a header)."""
    sds = tmp_path / "sds" / "aws-creds.yaml"
    sds.parent.mkdir()
    configs.write_atomically(sds, configs.sds_file_text("aws-creds", "v1"))
    filt = {"name": "envoy.filters.http.credential_injector", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.credential_injector.v3."
                 "CredentialInjector",
        "overwrite": True,
        "credential": {"name": "envoy.http.injected_credentials.generic", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.http.injected_credentials.generic.v3."
                     "Generic",
            "credential": {"name": "aws-creds",
                           "sds_config": {"path_config_source": {"path": str(sds)}}},
            "header": "x-injected"}}}}
    e = start_envoy(configs.dump(configs.bootstrap(
        [configs.http_listener([filt], [configs.route("/", "lambda")])],
        [configs.static_cluster("lambda", capture.port)])))
    assert requests.get(e.url + "/", timeout=TIMEOUT).status_code == 200
    assert capture.requests[-1].header("x-injected") == "v1"
    configs.write_atomically(sds, configs.sds_file_text("aws-creds", "v2"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        requests.get(e.url + "/", timeout=TIMEOUT)
        if capture.requests[-1].header("x-injected") == "v2":
            break
        time.sleep(0.1)
    assert capture.requests[-1].header("x-injected") == "v2"
    assert e.counter("sds.aws-creds.update_success") >= 2

