"""The credentials world the issue-10 tests run in, all on 127.0.0.1:

- a moto of its own (``cred_moto``) with IAM roles whose trust policies name who may
  assume them, each role allowed ``lambda:*`` and ``sts:AssumeRole``; the IAM user of
  moto_peer.py gets ``sts:*`` on top of ``lambda:*``; then signature checking is ON;
- ``MotoTap`` in front of it (Envoy's Lambda cluster and ``AWS_ENDPOINT_URL_STS`` point
  at the tap), recording which key signed what and when;
- files: a web identity token, a shared config + credentials pair with a
  ``source_profile`` → ``role_arn`` chain;
- ``cred_env()``: the environment for Envoy, pointing STS at the tap and IMDS / container
  credentials at the project's peers, everything else off.

Import the fixtures into a test module: ``from cred_fixtures import cred_moto, tap  # noqa``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

import configs
from container_peer import ContainerPeer
from credential_peer import StsMinter
from imds_peer import ImdsPeer
from moto_peer import MotoPeer, PeerInfo
from moto_tap import MotoTap

ACCOUNT = "123456789012"
OIDC_PROVIDER = "oidc.eks.us-east-1.amazonaws.com/id/ENVOYLAMBDATEST"

# name -> who may assume it ("user" = moto's IAM user by ARN, "*" = any principal,
# "web" = the OIDC provider). External ids are checked by moto's trust evaluation.
ROLES = {
    "assumed-a": "user",
    "assumed-b": "user",
    "external": "user+external",
    "profile-chain": "user",
    "irsa": "web",
    "instance": "user",
    "task": "user",
    "chained": "*",
}
EXTERNAL_ID = "envoy-lambda-ext-7"

_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["lambda:*", "sts:AssumeRole"],
                   "Resource": "*"}],
}
_USER_STS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:*", "Resource": "*"}],
}


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/envoy-lambda-{name}"


def _trust(kind: str, user_arn: str) -> dict:
    if kind == "web":
        stmt = {"Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC_PROVIDER}"},
                "Action": "sts:AssumeRoleWithWebIdentity"}
    elif kind == "*":
        stmt = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    else:
        stmt = {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
        if kind == "user+external":
            stmt["Condition"] = {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
    return {"Version": "2012-10-17", "Statement": [stmt]}


@dataclass
class CredMoto:
    peer: MotoPeer
    info: PeerInfo
    user_arn: str

    @property
    def endpoint(self) -> str:
        return self.info.endpoint

    def minter(self, role: str, session: str = "peer") -> StsMinter:
        """Mints through moto's STS directly (not the tap), signed by the IAM user."""
        return StsMinter(self.endpoint, self.info.access_key, self.info.secret_key,
                         role_arn(role), session)

    def lambda_client(self, key: str, secret: str, token: Optional[str] = None):
        return self.peer.client("lambda", key, secret, token)


def start_cred_moto(log_path: str) -> CredMoto:
    peer = MotoPeer(functions=("echo", "hello"), auth=False, log_path=log_path)
    info = peer.start()
    try:
        iam = peer.client("iam")
        user_arn = iam.get_user(UserName=info.user_name)["User"]["Arn"]
        pol = iam.create_policy(PolicyName="envoy-lambda-sts",
                                PolicyDocument=json.dumps(_USER_STS_POLICY))["Policy"]
        iam.attach_user_policy(UserName=info.user_name, PolicyArn=pol["Arn"])
        for name, kind in ROLES.items():
            iam.create_role(RoleName=f"envoy-lambda-{name}",
                            AssumeRolePolicyDocument=json.dumps(_trust(kind, user_arn)))
            iam.put_role_policy(RoleName=f"envoy-lambda-{name}", PolicyName="invoke",
                                PolicyDocument=json.dumps(_ROLE_POLICY))
        peer.enable_auth()
        info.auth = True
        peer.verify_auth()
    except BaseException:
        peer.stop()
        raise
    return CredMoto(peer, info, user_arn)


@pytest.fixture(scope="module")
def cred_moto(tmp_path_factory):
    m = start_cred_moto(str(tmp_path_factory.mktemp("cred-moto") / "moto.log"))
    try:
        yield m
    finally:
        m.peer.stop()


@pytest.fixture
def tap(cred_moto):
    with MotoTap(cred_moto.endpoint, (cred_moto.info.access_key, cred_moto.info.secret_key)) as t:
        yield t


@pytest.fixture
def imds(cred_moto):
    """IMDSv2 peer minting keys of role ``instance`` from moto, 20 s lifetime."""
    with ImdsPeer(role_name="envoy-lambda-instance", minter=cred_moto.minter("instance"),
                  lifetime=20) as p:
        yield p


@pytest.fixture
def container(cred_moto):
    """Container credentials peer minting keys of role ``task`` from moto, 20 s lifetime."""
    with ContainerPeer(minter=cred_moto.minter("task"), role_arn=role_arn("task"),
                       lifetime=20) as p:
        yield p


# -- files ---------------------------------------------------------------------------------
def write_token_file(path: Path, token: str) -> Path:
    """A web identity token file, replaced atomically (as the kubelet does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    configs.write_atomically(path, token)
    return path


def web_identity_token(n: int = 1) -> str:
    """A JWT-shaped test token (STS would check it; moto does not, the tap does)."""
    return f"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dGVzdCJ9.sig{n:04d}"


def write_profile_files(dirpath: Path, cm: CredMoto, chain_role: str = "profile-chain"
                        ) -> tuple[Path, Path]:
    """(config, credentials): profile ``chain`` = role ``chain_role`` assumed with
    ``source_profile = base`` (moto's IAM user key, in the credentials file); profile
    ``static`` = the same key directly; ``default`` = ``chain``."""
    dirpath.mkdir(parents=True, exist_ok=True)
    config = dirpath / "config"
    creds = dirpath / "credentials"
    config.write_text(
        "[default]\n"
        f"role_arn = {role_arn(chain_role)}\nsource_profile = base\n"
        "role_session_name = envoy-lambda-profile\n\n"
        "[profile chain]\n"
        f"role_arn = {role_arn(chain_role)}\nsource_profile = base\n"
        "role_session_name = envoy-lambda-profile\n\n"
        "[profile static]\nregion = us-east-1\n"
    )
    creds.write_text(
        f"[base]\naws_access_key_id = {cm.info.access_key}\n"
        f"aws_secret_access_key = {cm.info.secret_key}\n\n"
        f"[static]\naws_access_key_id = {cm.info.access_key}\n"
        f"aws_secret_access_key = {cm.info.secret_key}\n"
    )
    return config, creds


# -- Envoy's environment -------------------------------------------------------------------
def cred_env(tap: MotoTap, *, static: Optional[tuple[str, str]] = None,
             static_session_token: Optional[str] = None,
             profile: Optional[str] = None, config_file: Optional[Path] = None,
             credentials_file: Optional[Path] = None,
             web_identity: Optional[tuple[Path, str]] = None, role_session_name: str = "",
             container: Optional[ContainerPeer] = None,
             container_token_file: Optional[Path] = None,
             imds: Optional[ImdsPeer] = None, region: str = "us-east-1") -> dict:
    """Envoy's env for one credentials test: STS (and any other AWS endpoint) → the tap,
    the named sources set, every other source off. envoy_proc.envoy_env() drops the parent's
    AWS_* and points the shared files at non-existent paths for what is not set here."""
    env = {
        "AWS_ENDPOINT_URL_STS": tap.url,
        "AWS_ENDPOINT_URL": tap.url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if static:
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = static
        if static_session_token:
            env["AWS_SESSION_TOKEN"] = static_session_token
    if profile:
        env["AWS_PROFILE"] = profile
    if config_file:
        env["AWS_CONFIG_FILE"] = str(config_file)
    if credentials_file:
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials_file)
    if web_identity:
        env["AWS_WEB_IDENTITY_TOKEN_FILE"] = str(web_identity[0])
        env["AWS_ROLE_ARN"] = web_identity[1]
        if role_session_name:
            env["AWS_ROLE_SESSION_NAME"] = role_session_name
    if container:
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = container.full_uri
        if container_token_file:
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(container_token_file)
        elif container.token is not None:
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = container.token
    if imds:
        env["AWS_EC2_METADATA_DISABLED"] = "false"
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.endpoint
    # never the link-local addresses: IMDS only ever enabled together with a loopback endpoint
    assert env["AWS_EC2_METADATA_DISABLED"] == "true" or \
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"].startswith("http://127.0.0.1:")
    return env


# -- Envoy config --------------------------------------------------------------------------
def cred_upstream(name: str, port: int, credentials: Optional[dict] = None,
                  assume_role: Optional[dict] = None, credentials_wait: Optional[str] = None,
                  functions: Optional[list[dict]] = None) -> dict:
    """An upstream without ``secret_ref``: its credentials come from ``credentials``
    (absent = the default chain) and optionally ``assume_role`` on top."""
    extra: dict = {}
    if credentials is not None:
        extra["credentials"] = credentials
    if assume_role is not None:
        extra["assume_role"] = assume_role
    if credentials_wait is not None:
        extra["credentials_wait"] = credentials_wait
    up = configs.aws_upstream(name, port, functions or configs.default_functions(), **extra)
    del up["spec"]["secret_ref"]
    return up


def cred_config(tap_port: int, upstreams: list[dict],
                routes: Optional[list[tuple[str, dict]]] = None) -> str:
    """Our module in front of the tap; routes default to /echo, /hello of the first upstream."""
    rts = routes or configs.standard_routes(upstreams[0]["name"])
    return configs.module_config(tap_port, {"upstreams": upstreams}, rts)
