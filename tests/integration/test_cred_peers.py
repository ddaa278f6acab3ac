"""Self-tests of the credential peers and fixtures, with botocore as the reference client:
botocore's own IMDS and container providers, its STS client and its profile chain read our
peers and files, so the peers cannot share a misunderstanding with our filter. Each key a
peer hands out is then used against moto's Lambda (signature checking on): it must pass.
No Envoy here; loopback only."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request

import pytest

import envoy_proc
from container_peer import ContainerPeer
from credential_peer import iso8601
from cred_fixtures import (  # noqa: F401  (fixtures)
    EXTERNAL_ID, cred_env, cred_moto, role_arn, tap, web_identity_token, write_profile_files,
    write_token_file,
)
from imds_peer import ImdsPeer

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(method: str, url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, method=method, headers=headers or {},
                                 data=b"" if method == "PUT" else None)
    try:
        with _OPENER.open(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _invoke_ok(cred_moto, key: str, secret: str, token: str | None) -> None:
    r = cred_moto.lambda_client(key, secret, token).invoke(FunctionName="echo",
                                                           Payload=b'{"probe":1}')
    assert r["StatusCode"] == 200


def _imds_fetcher(peer: ImdsPeer):
    from botocore.utils import InstanceMetadataFetcher

    # env={}: not disabled; base_url: the peer (never 169.254.169.254)
    return InstanceMetadataFetcher(timeout=2, num_attempts=1, base_url=peer.endpoint, env={})


# -- IMDSv2 --------------------------------------------------------------------------------
def test_botocore_imds_provider_reads_the_imds_peer(cred_moto):
    with ImdsPeer(role_name="envoy-lambda-instance", minter=cred_moto.minter("instance"),
                  lifetime=3600) as peer:
        creds = _imds_fetcher(peer).retrieve_iam_role_credentials()
        assert creds, peer.control_json()
        [issued] = peer.issued
        assert creds["role_name"] == "envoy-lambda-instance"
        assert creds["access_key"] == issued.access_key_id
        assert creds["access_key"].startswith("ASIA")
        assert creds["expiry_time"] == iso8601(issued.expires_at)
        assert peer.count("token") == 1 and peer.count("role") == 1
        assert peer.count("credentials") == 1 and peer.count("unauthorized") == 0
        _invoke_ok(cred_moto, creds["access_key"], creds["secret_key"], creds["token"])


def test_imds_peer_speaks_imdsv2_only():
    with ImdsPeer(lifetime=20) as peer:
        base = peer.url
        creds_url = base + "/latest/meta-data/iam/security-credentials/"
        # no token → 401, a made-up token → 401
        assert _http("GET", creds_url)[0] == 401
        assert _http("GET", creds_url, {"X-aws-ec2-metadata-token": "nope"})[0] == 401
        # token PUT: TTL header required, 1..21600, echoed; proxied requests refused
        url = base + "/latest/api/token"
        assert _http("PUT", url)[0] == 400
        for bad in ("0", "21601", "x"):
            assert _http("PUT", url, {"X-aws-ec2-metadata-token-ttl-seconds": bad})[0] == 400
        assert _http("PUT", url, {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                  "X-Forwarded-For": "10.0.0.1"})[0] == 403
        st, hdrs, token = _http("PUT", url, {"X-aws-ec2-metadata-token-ttl-seconds": "1"})
        assert st == 200 and hdrs["X-aws-ec2-metadata-token-ttl-seconds"] == "1" and token
        tok = {"X-aws-ec2-metadata-token": token.decode()}
        st, _, role = _http("GET", creds_url, tok)
        assert (st, role) == (200, b"envoy-lambda-instance-role")
        assert _http("GET", creds_url + "other-role", tok)[0] == 404
        assert _http("GET", base + "/latest/meta-data/iam/security-credentials-extended/",
                     tok)[0] == 404
        time.sleep(1.2)  # the TTL was 1 s
        assert _http("GET", creds_url, tok)[0] == 401
        assert peer.count("unauthorized") == 3
        assert peer.issued == []  # nothing was handed out without a token


def test_imds_peer_expiration_rotation_and_revoked_tokens():
    with ImdsPeer(lifetime=15, rotate_before=5) as peer:
        f = _imds_fetcher(peer)
        a = f.retrieve_iam_role_credentials()
        b = f.retrieve_iam_role_credentials()
        [k] = peer.issued
        assert a["access_key"] == b["access_key"] == k.access_key_id  # not due yet
        # the peer's own Expiration: lifetime after issue, second precision, ISO 8601 Z
        assert k.expires_at - k.issued_at == pytest.approx(15, abs=1)
        peer.rotate_before = 15  # now due: the next fetch is a new key
        c = f.retrieve_iam_role_credentials()
        assert c["access_key"] != a["access_key"] and len(peer.issued) == 2
        peer.revoke_tokens()
        st, _, _ = _http("GET", peer.url + "/latest/meta-data/iam/security-credentials/",
                         {"X-aws-ec2-metadata-token": "revoked"})
        assert st == 401
    with ImdsPeer(lifetime=15) as peer:  # rotate_before=None: a new key per request
        f = _imds_fetcher(peer)
        keys = {f.retrieve_iam_role_credentials()["access_key"] for _ in range(3)}
        assert len(keys) == 3 == len(peer.issued)


def test_imds_peer_outages_and_recovery():
    with ImdsPeer(lifetime=20, hang_seconds=3) as peer:
        f = _imds_fetcher(peer)
        assert f.retrieve_iam_role_credentials()
        port = peer.port
        peer.go_down("refuse")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert f.retrieve_iam_role_credentials() == {}
        peer.come_back()
        assert peer.port == port and f.retrieve_iam_role_credentials()
        peer.go_down("error")
        assert _http("PUT", peer.url + "/latest/api/token",
                     {"X-aws-ec2-metadata-token-ttl-seconds": "60"})[0] == 500
        assert f.retrieve_iam_role_credentials() == {}
        peer.come_back()
        peer.go_down("hang")
        t0 = time.monotonic()
        assert f.retrieve_iam_role_credentials() == {}  # botocore's 2 s timeout
        assert time.monotonic() - t0 >= 1.5
        peer.come_back()
        assert f.retrieve_iam_role_credentials()
        assert peer.count("during_outage") >= 3
        assert len(peer.issued) == 3


# -- container credentials -------------------------------------------------------------------
def _container_provider(environ: dict):
    from botocore.credentials import ContainerProvider
    from botocore.utils import ContainerMetadataFetcher

    return ContainerProvider(environ=environ,
                             fetcher=ContainerMetadataFetcher(sleep=lambda _s: None))


def test_botocore_container_provider_reads_the_container_peer(cred_moto, tmp_path):
    with ContainerPeer(token="tok-1", minter=cred_moto.minter("task"),
                       role_arn=role_arn("task"), lifetime=3600) as peer:
        creds = _container_provider({
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": peer.full_uri,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "tok-1",
        }).load()
        frozen = creds.get_frozen_credentials()
        [issued] = peer.issued
        assert frozen.access_key == issued.access_key_id
        assert int(creds._expiry_time.timestamp()) == issued.expires_at
        _invoke_ok(cred_moto, frozen.access_key, frozen.secret_key, frozen.token)
        # EKS Pod Identity: the token comes from a file the kubelet rotates
        tf = write_token_file(tmp_path / "eks-pod-identity-token", "tok-2")
        peer.set_token("tok-2")
        creds = _container_provider({
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": peer.full_uri,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(tf),
        }).load()
        assert creds.get_frozen_credentials().access_key == peer.issued[-1].access_key_id
        assert peer.count("credentials") == 2


def test_container_peer_checks_the_authorization_header():
    from botocore.exceptions import CredentialRetrievalError

    with ContainerPeer(token="right") as peer:
        assert _http("GET", peer.full_uri)[0] == 401
        assert _http("GET", peer.full_uri, {"Authorization": "wrong"})[0] == 403
        assert _http("GET", peer.url + "/other", {"Authorization": "right"})[0] == 404
        with pytest.raises(CredentialRetrievalError):
            _container_provider({"AWS_CONTAINER_CREDENTIALS_FULL_URI": peer.full_uri,
                                 "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"}).load()
        assert peer.count("forbidden") == 1 + 3  # botocore tries 3 times
        assert peer.issued == []
        st, _, body = _http("GET", peer.full_uri, {"Authorization": "right"})
        assert st == 200 and b'"Expiration"' in body and b'"RoleArn"' in body
        peer.go_down("error")
        assert _http("GET", peer.full_uri, {"Authorization": "right"})[0] == 500
        peer.come_back()
        assert _http("GET", peer.full_uri, {"Authorization": "right"})[0] == 200


# -- moto STS through the tap ----------------------------------------------------------------
def _sts(url: str, key: str | None = None, secret: str | None = None,
         token: str | None = None):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    cfg = Config(retries={"max_attempts": 1})
    if key is None:
        cfg = cfg.merge(Config(signature_version=UNSIGNED))
    return boto3.client("sts", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key or "unused", aws_secret_access_key=secret or "unused",
                        aws_session_token=token, config=cfg)


def test_tap_assume_role_and_external_id_are_checked_by_moto(cred_moto, tap):
    from botocore.exceptions import ClientError

    i = cred_moto.info
    sts = _sts(tap.url, i.access_key, i.secret_key)
    c = sts.assume_role(RoleArn=role_arn("assumed-a"), RoleSessionName="tap-test")["Credentials"]
    _invoke_ok(cred_moto, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    # a wrong external id is refused (moto lets a *missing* one through; AWS would not)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role_arn("external"), RoleSessionName="tap-test",
                        ExternalId="wrong")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    sts.assume_role(RoleArn=role_arn("external"), RoleSessionName="tap-test",
                    ExternalId=EXTERNAL_ID)
    # the trust policy names the user: another principal (an assumed role) is refused
    other = _sts(tap.url, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    with pytest.raises(ClientError) as e:
        other.assume_role(RoleArn=role_arn("assumed-b"), RoleSessionName="tap-test")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    other.assume_role(RoleArn=role_arn("chained"), RoleSessionName="tap-test")  # trusts "*"
    calls = tap.sts_calls("AssumeRole")
    assert [x.status for x in calls] == [200, 403, 200, 403, 200]
    assert [x.key_id for x in calls] == [i.access_key] * 3 + [c["AccessKeyId"]] * 2
    assert tap.role_of(c["AccessKeyId"]) == role_arn("assumed-a")
    assert calls[0].form["RoleSessionName"] == "tap-test"
    # sts_lifetime: the client is told the key expires soon (moto itself never expires it)
    tap.sts_lifetime = 30
    d = sts.assume_role(RoleArn=role_arn("assumed-b"), RoleSessionName="tap-test")["Credentials"]
    left = d["Expiration"].timestamp() - time.time()
    assert 27 <= left <= 31, d["Expiration"]
    assert tap.sts_calls("AssumeRole")[-1].issued_key_id == d["AccessKeyId"]


def test_tap_lets_unsigned_web_identity_calls_through_with_accepted_tokens(cred_moto, tap):
    from botocore.exceptions import ClientError

    tap.accept_tokens(web_identity_token(1))
    sts = _sts(tap.url)  # unsigned, as the SDKs send it
    c = sts.assume_role_with_web_identity(RoleArn=role_arn("irsa"), RoleSessionName="web-test",
                                          WebIdentityToken=web_identity_token(1))["Credentials"]
    _invoke_ok(cred_moto, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    with pytest.raises(ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=role_arn("irsa"), RoleSessionName="web-test",
                                          WebIdentityToken=web_identity_token(2))
    assert e.value.response["Error"]["Code"] == "InvalidIdentityToken"
    calls = tap.sts_calls("AssumeRoleWithWebIdentity")
    assert [(x.status, x.key_id, x.web_identity_token) for x in calls] == [
        (200, None, web_identity_token(1)), (400, None, web_identity_token(2))]


def test_tap_records_which_key_signed_each_invocation(cred_moto, tap):
    import boto3
    from botocore.config import Config

    i = cred_moto.info
    c = _sts(tap.url, i.access_key, i.secret_key).assume_role(
        RoleArn=role_arn("assumed-b"), RoleSessionName="tap-test")["Credentials"]
    lam = boto3.client("lambda", endpoint_url=tap.url, region_name="us-east-1",
                       aws_access_key_id=c["AccessKeyId"],
                       aws_secret_access_key=c["SecretAccessKey"],
                       aws_session_token=c["SessionToken"],
                       config=Config(retries={"max_attempts": 1}))
    assert lam.invoke(FunctionName="echo", Payload=b"{}")["StatusCode"] == 200
    [inv] = tap.invocations()
    assert (inv.key_id, inv.service, inv.has_session_token, inv.status) == (
        c["AccessKeyId"], "lambda", True, 200)
    assert abs(inv.amz_date - inv.time) < 5


# -- the botocore chain over our files and env (the reference for the precedence test) -------
def _botocore_chain_key(env: dict, monkeypatch) -> tuple[str, str]:
    import botocore.session

    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    full = envoy_proc.envoy_env(env)
    for k, v in full.items():
        if k.startswith("AWS_"):
            monkeypatch.setenv(k, v)
    creds = botocore.session.Session().get_credentials()
    assert creds is not None, "botocore's chain found nothing"
    return creds.get_frozen_credentials().access_key, creds.method


def test_botocore_chain_over_the_fixture_env(cred_moto, tap, tmp_path, monkeypatch):
    """Each fixture source, alone and stacked, as botocore resolves it: env, profile chain
    (source_profile → role_arn), web identity, container, IMDS."""
    i = cred_moto.info
    config, creds = write_profile_files(tmp_path / "aws", cred_moto)
    token_file = write_token_file(tmp_path / "token", web_identity_token(1))
    tap.accept_tokens(web_identity_token(1))
    with ImdsPeer(role_name="envoy-lambda-instance", minter=cred_moto.minter("instance"),
                  lifetime=3600) as imds, \
            ContainerPeer(minter=cred_moto.minter("task"), lifetime=3600) as container:
        layers = [
            ("iam-role", dict(imds=imds)),
            ("container-role", dict(container=container)),
            ("assume-role-with-web-identity", dict(web_identity=(token_file, role_arn("irsa")))),
            ("assume-role", dict(profile="chain", config_file=config, credentials_file=creds)),
            ("env", dict(static=(i.access_key, i.secret_key))),
        ]
        kw: dict = {}
        for method, add in layers:
            kw.update(add)
            key, got = _botocore_chain_key(cred_env(tap, **kw), monkeypatch)
            assert got == method, (method, kw.keys())
            if method == "env":
                assert key == i.access_key
            elif method == "iam-role":
                assert key == imds.issued[-1].access_key_id
            elif method == "container-role":
                assert key == container.issued[-1].access_key_id
            else:
                assert key.startswith("ASIA") and key != i.access_key
    # the profile chain's AssumeRole was signed by the source profile's key, at the tap
    [ar] = tap.sts_calls("AssumeRole")
    assert ar.key_id == i.access_key and ar.status == 200


def test_envoy_env_keeps_shared_files_away_unless_given():
    env = envoy_proc.envoy_env()
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        assert not os.path.exists(env[k]), k
    given = envoy_proc.envoy_env({"AWS_CONFIG_FILE": "/x/config"})
    assert given["AWS_CONFIG_FILE"] == "/x/config"
    assert given["AWS_SHARED_CREDENTIALS_FILE"] == envoy_proc.NO_AWS_SHARED_CREDENTIALS_FILE
