"""Issue 10 through real Envoy: upstreams whose credentials come from the AWS sources, not a
secret. moto (signature checking on) verifies every invocation behind the tap, which records
the key that signed it and when; the IMDSv2 and container peers hand out keys that expire
after a few seconds, so refreshes, failures and healing happen while the test watches.

Stat names are the README's (section "Credentials"); STAT_* below is the one place that
spells them. Loopback only: STS and every AWS endpoint go to the tap, IMDS and container
credentials to our peers, the rest is off (cred_fixtures.cred_env, envoy_proc.envoy_env).
"""

from __future__ import annotations

import calendar
import http.client
import json
import math
import threading
import time
from dataclasses import dataclass

import pytest

import configs
from cred_fixtures import (  # noqa: F401  (fixtures)
    EXTERNAL_ID, container, cred_config, cred_env, cred_moto, cred_upstream, imds, role_arn,
    tap, web_identity_token, write_profile_files, write_token_file,
)

pytestmark = pytest.mark.usefixtures("module_so")

NS = "envoy_lambda"
STAT_REFRESH_OK = NS + ".credentials_refresh_ok.upstream.{u}"
STAT_REFRESH_FAILED = NS + ".credentials_refresh_failed.upstream.{u}"  # .reason.<r>
STAT_EXPIRATION = NS + ".credentials_expiration_unix_seconds.upstream.{u}"
STAT_SOURCE = NS + ".credentials_source.upstream.{u}"  # .source.<s> = 1

PAYLOAD = b'{"probe":1}'


@dataclass
class Answer:
    status: int
    body: bytes
    sent: float      # epoch seconds
    elapsed: float   # seconds

    def json(self) -> dict:
        return json.loads(self.body)


def post(envoy, path: str, body: bytes = PAYLOAD, timeout: float = 15.0) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=timeout)
    t0, m0 = time.time(), time.monotonic()
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return Answer(r.status, data, t0, time.monotonic() - m0)
    finally:
        conn.close()


def stat(envoy, name: str) -> float:
    """A stat by exact name, else the sum of its labelled forms (``name.<label>.<v>``)."""
    s = envoy.stats()
    if name in s:
        return s[name]
    return sum(v for k, v in s.items() if k.startswith(name + "."))


def stat_labels(envoy, name: str) -> dict[str, float]:
    return {k[len(name) + 1:]: v for k, v in envoy.stats().items() if k.startswith(name + ".")}


def assert_unavailable(a: Answer, upstream: str) -> None:
    assert a.status == 503, (a.status, a.body)
    doc = a.json()
    assert doc["error"] == "credentials_unavailable", doc
    assert f"'{upstream}'" in doc["message"] and "source:" in doc["message"], doc
    # the agreed schema: request_id is Envoy's x-request-id (no Lambda request was made)
    assert set(doc) == {"error", "message", "request_id"} and doc["request_id"], doc


def assert_no_secret(texts: list[str], secrets: list[str]) -> None:
    for t in texts:
        for s in secrets:
            assert s not in t, "a secret reached a log or an answer"


def invocations_of(tap, function: str):
    return [e for e in tap.invocations() if f"/functions/{function}/invocations" in e.path]


def assert_signed_with_valid_keys(invs, peer) -> set[str]:
    """Every invocation was signed with a key the peer issued, valid at signing time
    (``X-Amz-Date``, second precision), and moto accepted it. Returns the keys used."""
    used = set()
    for e in invs:
        k = peer.issued_key(e.key_id)
        assert k is not None, f"signed with {e.key_id}, not a key the peer issued"
        assert e.has_session_token and e.status == 200, e
        assert math.floor(k.issued_at) <= e.amz_date < k.expires_at, (
            f"key {e.key_id} used at {e.amz_date}, valid [{k.issued_at}, {k.expires_at})")
        used.add(e.key_id)
    return used


def two_routes(a: str, b: str) -> list[tuple[str, dict]]:
    return [("/a", configs.module_per_route(a, "echo")),
            ("/b", configs.module_per_route(b, "hello"))]


# -- moto STS: assume role, web identity, profile chain ---------------------------------------
def test_assume_role_on_top_of_a_static_key(start_envoy, cred_moto, tap):
    i = cred_moto.info
    up = cred_upstream("moto", tap.port, credentials={"source": "env"},
                       assume_role={"role_arn": role_arn("assumed-a"),
                                    "session_name": "envoy-lambda-it", "duration": "900s"})
    e = start_envoy(cred_config(tap.port, [up]), env=cred_env(tap, static=(i.access_key,
                                                                           i.secret_key)))
    answers = [post(e, "/echo") for _ in range(3)]
    assert [a.status for a in answers] == [200] * 3, answers[0].body
    assert answers[0].body == PAYLOAD
    [ar] = tap.sts_calls("AssumeRole")
    assert (ar.key_id, ar.status) == (i.access_key, 200)
    assert ar.form["RoleArn"] == role_arn("assumed-a")
    assert ar.form["RoleSessionName"] == "envoy-lambda-it"
    assert ar.form.get("DurationSeconds") == "900"
    invs = invocations_of(tap, "echo")
    assert len(invs) == 3
    assert {(x.key_id, x.has_session_token, x.status) for x in invs} == {
        (ar.issued_key_id, True, 200)}
    assert stat(e, STAT_REFRESH_OK.format(u="moto")) >= 1
    assert stat(e, STAT_REFRESH_FAILED.format(u="moto")) == 0
    assert stat_labels(e, STAT_SOURCE.format(u="moto")).get("source.assume_role") == 1
    # the gauge is the Expiration STS answered (duration 900 s)
    exp = stat(e, STAT_EXPIRATION.format(u="moto"))
    sts_exp = calendar.timegm(time.strptime(ar.issued_expiration[:19], "%Y-%m-%dT%H:%M:%S"))
    assert exp == sts_exp and abs(exp - (ar.time + 900)) < 5, (exp, ar.issued_expiration)


def test_assume_role_external_id_and_a_refused_role(start_envoy, cred_moto, tap):
    """The external id reaches STS (moto checks the trust condition); an upstream whose
    AssumeRole is refused answers 503 credentials_unavailable, the other keeps working."""
    i = cred_moto.info
    good = cred_upstream("ext", tap.port, credentials={"source": "env"}, credentials_wait="1s",
                         assume_role={"role_arn": role_arn("external"), "external_id": EXTERNAL_ID})
    bad = cred_upstream("wrongext", tap.port, credentials={"source": "env"},
                        credentials_wait="1s",
                        assume_role={"role_arn": role_arn("external"), "external_id": "wrong"})
    e = start_envoy(cred_config(tap.port, [good, bad], two_routes("ext", "wrongext")),
                    env=cred_env(tap, static=(i.access_key, i.secret_key)))
    a = post(e, "/a")
    assert a.status == 200, a.body
    b = post(e, "/b")
    assert_unavailable(b, "wrongext")
    assert_no_secret([b.body.decode(), e.log_text()], [i.secret_key])
    calls = tap.sts_calls("AssumeRole")
    assert {c.form.get("ExternalId") for c in calls if c.status == 200} == {EXTERNAL_ID}
    assert any(c.status == 403 and c.form.get("ExternalId") == "wrong" for c in calls)
    assert invocations_of(tap, "hello") == []  # nothing unsigned or half-signed went out
    assert stat(e, STAT_REFRESH_FAILED.format(u="wrongext")) >= 1


def test_web_identity_from_a_token_file_reread_at_refresh(start_envoy, cred_moto, tap, tmp_path):
    """IRSA: AssumeRoleWithWebIdentity with the file's token; STS keys live 12 s here, and
    when the kubelet rotates the file the next refresh sends the new token."""
    token_file = write_token_file(tmp_path / "token", web_identity_token(1))
    tap.accept_tokens(web_identity_token(1))
    tap.sts_lifetime = 12
    up = cred_upstream("irsa", tap.port, credentials={"source": "web_identity"})
    e = start_envoy(cred_config(tap.port, [up]),
                    env=cred_env(tap, web_identity=(token_file, role_arn("irsa")),
                                 role_session_name="envoy-lambda-irsa"))
    a = post(e, "/echo")
    assert a.status == 200, a.body
    [w] = tap.sts_calls("AssumeRoleWithWebIdentity")
    assert (w.status, w.web_identity_token) == (200, web_identity_token(1))
    assert w.form["RoleArn"] == role_arn("irsa")
    assert w.form["RoleSessionName"] == "envoy-lambda-irsa"
    # rotate: only the new token is accepted from now on
    write_token_file(token_file, web_identity_token(2))
    tap.accept_tokens(web_identity_token(2))
    statuses = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        statuses.append(post(e, "/echo").status)
        if any(c.web_identity_token == web_identity_token(2) and c.status == 200
               for c in tap.sts_calls("AssumeRoleWithWebIdentity")):
            break
        time.sleep(0.3)
    calls = tap.sts_calls("AssumeRoleWithWebIdentity")
    assert any(c.web_identity_token == web_identity_token(2) and c.status == 200 for c in calls), \
        [(c.status, c.web_identity_token[-7:]) for c in calls]
    assert statuses and set(statuses) == {200}
    time.sleep(0.5)  # the refresher installs what the tap just answered
    after = post(e, "/echo")
    assert after.status == 200
    issued = {c.issued_key_id for c in calls if c.status == 200}
    invs = invocations_of(tap, "echo")
    assert {x.key_id for x in invs} <= issued and invs[-1].key_id == calls[-1].issued_key_id
    assert_no_secret([e.log_text()], [web_identity_token(1), web_identity_token(2)])


def test_profile_role_chain(start_envoy, cred_moto, tap, tmp_path):
    """``source_profile = base`` (a static key) → ``role_arn`` of profile ``chain``."""
    config, creds = write_profile_files(tmp_path / "aws", cred_moto)
    up = cred_upstream("prof", tap.port, credentials={
        "source": "profile", "profile": "chain",
        "config_file": str(config), "credentials_file": str(creds)})
    e = start_envoy(cred_config(tap.port, [up]), env=cred_env(tap))
    a = post(e, "/echo")
    assert a.status == 200, a.body
    [ar] = tap.sts_calls("AssumeRole")
    assert (ar.key_id, ar.status) == (cred_moto.info.access_key, 200)
    assert ar.form["RoleArn"] == role_arn("profile-chain")
    assert ar.form["RoleSessionName"] == "envoy-lambda-profile"
    [inv] = invocations_of(tap, "echo")
    assert (inv.key_id, inv.has_session_token, inv.status) == (ar.issued_key_id, True, 200)


def test_two_upstreams_with_different_roles_each_sign_with_their_own_key(start_envoy, cred_moto,
                                                                         tap):
    i = cred_moto.info
    ups = [cred_upstream(n, tap.port, credentials={"source": "env"},
                         assume_role={"role_arn": role_arn(r)})
           for n, r in (("ua", "assumed-a"), ("ub", "assumed-b"))]
    e = start_envoy(cred_config(tap.port, ups, two_routes("ua", "ub")),
                    env=cred_env(tap, static=(i.access_key, i.secret_key)))
    for _ in range(3):
        assert post(e, "/a").status == 200
        assert post(e, "/b").status == 200
    for fn_name, role in (("echo", "assumed-a"), ("hello", "assumed-b")):
        invs = invocations_of(tap, fn_name)
        assert len(invs) == 3
        assert {tap.role_of(x.key_id) for x in invs} == {role_arn(role)}, fn_name
        assert {x.status for x in invs} == {200}
    assert {x.key_id for x in invocations_of(tap, "echo")}.isdisjoint(
        {x.key_id for x in invocations_of(tap, "hello")})


# -- IMDS and container: keys that expire while requests flow ---------------------------------
def test_imds_and_container_keys_rotate_under_a_steady_stream(start_envoy, cred_moto, tap, imds,
                                                             container):
    """15 s keys, ~40 s of requests (two or more expiries each): no request fails and each is
    signed with the key valid at that moment."""
    imds.set_lifetime(15)
    imds.rotate_before = 5  # like EC2: the same key until shortly before it expires
    container.set_lifetime(15)  # a new key on every fetch
    ups = [cred_upstream("ec2", tap.port, credentials={"source": "imds"}),
           cred_upstream("ecs", tap.port, credentials={"source": "container"})]
    e = start_envoy(cred_config(tap.port, ups, two_routes("ec2", "ecs")),
                    env=cred_env(tap, imds=imds, container=container))
    answers: list[Answer] = []
    t_end = time.monotonic() + 40
    while time.monotonic() < t_end:
        answers.append(post(e, "/a"))
        answers.append(post(e, "/b"))
        time.sleep(0.2)
    bad = [(a.status, a.body[:200]) for a in answers if a.status != 200]
    assert not bad, f"{len(bad)} of {len(answers)} failed: {bad[:3]}"
    used_imds = assert_signed_with_valid_keys(invocations_of(tap, "echo"), imds)
    used_ecs = assert_signed_with_valid_keys(invocations_of(tap, "hello"), container)
    assert len(used_imds) >= 3 and len(used_ecs) >= 3, (len(used_imds), len(used_ecs))
    assert imds.count("token") >= 1 and container.count("forbidden") == 0
    # the expiry gauge names the current key's Expiration
    cur = stat(e, STAT_EXPIRATION.format(u="ec2"))
    assert cur in {k.expires_at for k in imds.issued}, cur
    assert stat(e, STAT_REFRESH_OK.format(u="ecs")) >= 3
    print(f"\nsteady stream: {len(answers)} requests, slowest {max(a.elapsed for a in answers):.3f} s,"
          f" imds keys {len(used_imds)}, container keys {len(used_ecs)}")
    assert_no_secret([e.log_text()], imds.secrets_issued() + container.secrets_issued())


def test_refresh_failure_serves_cached_keys_until_expiry_then_503_then_heals(
        start_envoy, cred_moto, tap, container):
    container.set_lifetime(12)
    up = cred_upstream("ecs", tap.port, credentials={"source": "container"})
    e = start_envoy(cred_config(tap.port, [up]), env=cred_env(tap, container=container))
    assert post(e, "/echo").status == 200
    container.go_down("refuse")
    key = container.issued[-1]  # the last key Envoy could get
    answers: list[Answer] = []
    came_back = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        a = post(e, "/echo")
        answers.append(a)
        if came_back is None and time.time() > key.expires_at + 3:
            container.come_back()
            came_back = time.time()
        if came_back and a.status == 200:
            break
        time.sleep(0.25)
    before = [a for a in answers if a.sent + a.elapsed < key.expires_at - 1]
    after = [a for a in answers if a.sent > key.expires_at + 1 and
             (came_back is None or a.sent < came_back)]
    assert before and all(a.status == 200 for a in before), \
        [a.status for a in before]
    assert after, "no request between expiry and come-back"
    for a in after:
        assert_unavailable(a, "ecs")
    assert answers[-1].status == 200, "no success after the peer came back"
    healed_after = answers[-1].sent - came_back
    print(f"\nrefresh failure: healed {healed_after:.1f} s after the peer came back")
    # the key used after healing is new and valid; none was used past its expiry
    assert_signed_with_valid_keys(invocations_of(tap, "echo"), container)
    assert invocations_of(tap, "echo")[-1].key_id != key.access_key_id
    assert stat(e, STAT_REFRESH_FAILED.format(u="ecs")) >= 2
    reasons = {k: v for k, v in stat_labels(e, STAT_REFRESH_FAILED.format(u="ecs")).items() if v}
    assert reasons and all(k.startswith("reason.") for k in reasons), reasons
    # one warning for the whole failure streak, one line when it heals
    log = e.log_text().splitlines()
    warned = [ln for ln in log if "[warning]" in ln and "source: container failed" in ln]
    assert len(warned) == 1, warned
    assert any("source: container refreshed again" in ln for ln in log)
    assert_no_secret([e.log_text()] + [a.body.decode() for a in answers],
                     container.secrets_issued())


def test_pod_identity_token_file_is_reread_at_each_fetch(start_envoy, cred_moto, tap, container,
                                                        tmp_path):
    """EKS Pod Identity: ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE``; the kubelet rotates the
    file and the agent accepts only the new token: the next refresh sends it."""
    container.set_lifetime(8)
    container.set_token("pod-token-1")
    tf = write_token_file(tmp_path / "eks-pod-identity-token", "pod-token-1")
    up = cred_upstream("eks", tap.port, credentials={"source": "container"})
    e = start_envoy(cred_config(tap.port, [up]),
                    env=cred_env(tap, container=container, container_token_file=tf))
    assert post(e, "/echo").status == 200
    first = len(container.issued)
    write_token_file(tf, "pod-token-2")
    container.set_token("pod-token-2")
    statuses = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(container.issued) <= first:
        statuses.append(post(e, "/echo").status)
        time.sleep(0.3)
    assert len(container.issued) > first, "no fetch with the rotated token"
    # at most one fetch may fall between the file's rename and the agent's switch
    assert container.count("forbidden") <= 1, "the old token kept being sent after rotation"
    assert set(statuses) <= {200}
    time.sleep(0.3)
    assert post(e, "/echo").status == 200
    assert_signed_with_valid_keys(invocations_of(tap, "echo"), container)
    assert_no_secret([e.log_text()], ["pod-token-1", "pod-token-2"])


# -- start-up ------------------------------------------------------------------------------
def test_startup_requests_are_held_until_the_first_fetch(start_envoy, cred_moto, tap, imds):
    # each IMDS answer 0.6 s (aws-config gives IMDS 1 s per answer): the first fetch, a token
    # PUT and two GETs, takes about 2 s
    imds.delay = 0.6
    up = cred_upstream("ec2", tap.port, credentials={"source": "imds"}, credentials_wait="8s")
    e = start_envoy(cred_config(tap.port, [up]), env=cred_env(tap, imds=imds))
    results: list[Answer] = []
    threads = [threading.Thread(target=lambda: results.append(post(e, "/echo")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert [a.status for a in results] == [200] * 3, [a.body for a in results]
    first = imds.issued[0]
    # they were sent before the first key existed, and answered after
    assert all(a.sent < first.issued_at for a in results), (
        [a.sent for a in results], first.issued_at)
    waited = max(a.elapsed for a in results)
    print(f"\nstart-up: the longest held request waited {waited:.2f} s")
    assert len(imds.issued) == 1  # one fetch served all the held requests


def test_startup_with_the_peer_down_answers_503_after_the_wait_others_keep_serving(
        start_envoy, cred_moto, tap, imds):
    """``credentials_wait: 2s`` with IMDS down: 503 after about 2 s; meanwhile the same
    worker (--concurrency 1) keeps answering a route of an upstream with a static secret."""
    i = cred_moto.info
    imds.go_down("refuse")
    held = cred_upstream("ec2", tap.port, credentials={"source": "imds"}, credentials_wait="2s")
    static = configs.aws_upstream("static", tap.port, configs.default_functions())
    rts = [("/a", configs.module_per_route("ec2", "echo")),
           ("/b", configs.module_per_route("static", "hello"))]
    text = configs.module_config(tap.port, {"upstreams": [held, static]}, rts,
                                 secrets={"aws-creds": configs.seed_secret(i.access_key,
                                                                           i.secret_key)})
    e = start_envoy(text, env=cred_env(tap, imds=imds))
    out: list[Answer] = []
    t = threading.Thread(target=lambda: out.append(post(e, "/a")))
    t.start()
    time.sleep(0.2)
    meanwhile = []
    while t.is_alive() and len(meanwhile) < 20:
        meanwhile.append(post(e, "/b"))
        time.sleep(0.1)
    t.join(10)
    [a] = out
    assert_unavailable(a, "ec2")
    assert 1.7 <= a.elapsed <= 4.0, a.elapsed
    print(f"\nstart-up, peer down: 503 after {a.elapsed:.2f} s (credentials_wait 2s); "
          f"{len(meanwhile)} other requests meanwhile, slowest {max(m.elapsed for m in meanwhile):.3f} s")
    assert len(meanwhile) >= 5 and all(m.status == 200 for m in meanwhile), \
        [m.status for m in meanwhile]
    assert max(m.elapsed for m in meanwhile) < 1.0
    assert "source: imds" in a.json()["message"]
    # later requests (no first credentials yet) also wait at most the bound
    again = post(e, "/a")
    assert_unavailable(again, "ec2")
    assert again.elapsed <= 4.0
    imds.come_back()
    deadline = time.monotonic() + 35
    while time.monotonic() < deadline and post(e, "/a").status != 200:
        time.sleep(0.5)
    assert post(e, "/a").status == 200, "no heal after IMDS came back"


# -- the chain -----------------------------------------------------------------------------
def test_chain_precedence_env_profile_web_identity_container_imds(start_envoy, cred_moto, tap,
                                                                  imds, container, tmp_path):
    """No ``credentials`` block (the default chain); sources are added one by one, the newest
    always the strongest: IMDS < container < web identity < profile < env."""
    i = cred_moto.info
    config, creds = write_profile_files(tmp_path / "aws", cred_moto)
    token_file = write_token_file(tmp_path / "token", web_identity_token(1))
    tap.accept_tokens(web_identity_token(1))
    layers = [
        ("imds", dict(imds=imds)),
        ("container", dict(container=container)),
        ("web_identity", dict(web_identity=(token_file, role_arn("irsa")))),
        ("profile", dict(profile="chain", config_file=config, credentials_file=creds)),
        ("env", dict(static=(i.access_key, i.secret_key))),
    ]
    kw: dict = {}
    for n, (source, add) in enumerate(layers):
        kw.update(add)
        tap.clear_exchanges()
        up = cred_upstream("chain", tap.port)
        e = start_envoy(cred_config(tap.port, [up]), name=f"chain-{source}",
                        env=cred_env(tap, **kw))
        a = post(e, "/echo")
        assert a.status == 200, (source, a.body)
        [inv] = invocations_of(tap, "echo")
        if source == "imds":
            assert imds.issued_key(inv.key_id) is not None
        elif source == "container":
            assert container.issued_key(inv.key_id) is not None
        elif source == "web_identity":
            assert tap.role_of(inv.key_id) == role_arn("irsa")
        elif source == "profile":
            assert tap.role_of(inv.key_id) == role_arn("profile-chain")
        else:
            assert inv.key_id == i.access_key and not inv.has_session_token
        labels = stat_labels(e, STAT_SOURCE.format(u="chain"))
        if labels:  # which source supplied them, when the stat exists
            assert any(source in k and v == 1 for k, v in labels.items()), (source, labels)
        e.stop()


def test_explicit_source_ignores_stronger_sources(start_envoy, cred_moto, tap, imds, container):
    """``source: imds`` reads IMDS even with a container endpoint and env keys set."""
    i = cred_moto.info
    up = cred_upstream("ec2", tap.port, credentials={"source": "imds"})
    e = start_envoy(cred_config(tap.port, [up]),
                    env=cred_env(tap, imds=imds, container=container,
                                 static=(i.access_key, i.secret_key)))
    assert post(e, "/echo").status == 200
    [inv] = invocations_of(tap, "echo")
    assert imds.issued_key(inv.key_id) is not None
    assert container.count("credentials") == 0


# -- config --------------------------------------------------------------------------------
def _validate_spec(envoy_validate, spec_extra: dict) -> tuple[int, str]:
    up = cred_upstream("u", 9)
    up["spec"].update(spec_extra)
    text = configs.module_config(9, {"upstreams": [up]}, configs.standard_routes("u"),
                                 secrets={"aws-creds": configs.seed_secret("AKIDEXAMPLE", "x")})
    return envoy_validate(text)


@pytest.mark.parametrize("spec_extra", [
    {},
    {"credentials": {"source": "chain"}},
    {"credentials": {"source": "env"}},
    {"credentials": {"source": "profile", "profile": "p", "config_file": "/nonexistent/c",
                     "credentials_file": "/nonexistent/k"}},
    {"credentials": {"source": "web_identity"}},
    {"credentials": {"source": "container"}},
    {"credentials": {"source": "imds"}},
    {"credentials": {"source": "env"}, "credentials_wait": "1500ms",
     "assume_role": {"role_arn": "arn:aws:iam::123456789012:role/x", "external_id": "ext-1",
                     "session_name": "envoy-it", "duration": "900s"}},
], ids=["none", "chain", "env", "profile", "web_identity", "container", "imds", "assume_role"])
def test_credentials_configs_load(envoy_validate, spec_extra):
    """Every source of the schema loads (``--mode validate`` fetches nothing)."""
    rc, out = _validate_spec(envoy_validate, spec_extra)
    assert rc == 0, out[-2000:]


@pytest.mark.parametrize("spec_extra, needles", [
    ({"secret_ref": "aws-creds", "credentials": {"source": "env"}},
     ["spec.credentials", "secret_ref"]),
    ({"credentials": {"source": "vault"}}, ["credentials", "vault"]),
    ({"credentials": {"source": "env", "colour": "red"}}, ["credentials", "colour"]),
    ({"assume_role": {"role_arn": "arn:aws:iam::123456789012:role/x", "colour": "red"}},
     ["assume_role", "colour"]),
], ids=["secret_ref+credentials", "unknown source", "unknown key", "assume_role unknown key"])
def test_bad_credentials_config_is_refused_naming_the_field(envoy_validate, spec_extra, needles):
    rc, out = _validate_spec(envoy_validate, spec_extra)
    assert rc != 0, out[-2000:]
    line = next((ln for ln in out.splitlines() if "invalid filter config" in ln), out)
    for n in needles:
        assert n in line, line
