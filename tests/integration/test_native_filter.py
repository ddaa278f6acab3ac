"""The reference: Envoy's built-in aws_lambda filter against the same moto.

If these pass, moto (with signature checking on) accepts a correct SigV4
signer, and rejects a wrong secret — so a module failure against the same peer
is the module's, not the peer's.
"""

from __future__ import annotations

import json

import requests

import configs

TIMEOUT = 20


def _native(start_envoy, moto, secret=None, access_key=None, port=None):
    i = moto.info
    arn = i.function_arns["echo"]
    cfg = configs.native_lambda_config(
        port or moto.port, arn, access_key or i.access_key, secret or i.secret_key,
        routes=[("/live", f"{arn}:live"), ("/hello", i.function_arns["hello"]), ("/", None)],
    )
    return start_envoy(cfg, name="native")


def test_get_without_body_is_signed_and_accepted(start_envoy, moto):
    e = _native(start_envoy, moto)
    r = requests.get(e.url + "/anything", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.text == "Simple Lambda happy path OK"


def test_post_json_is_echoed(start_envoy, moto):
    e = _native(start_envoy, moto)
    body = {"hello": "world", "n": [1, 2, 3]}
    r = requests.post(e.url + "/echo", json=body, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json() == body
    r = requests.post(e.url + "/hello", json={"x": 1}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text


def test_alias_qualified_arn(start_envoy, moto, capture):
    e = _native(start_envoy, moto)
    r = requests.post(e.url + "/live", data=b'{"q":"live"}', timeout=TIMEOUT,
                      headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json() == {"q": "live"}
    # What the native filter sends for an alias: the qualified ARN in the path.
    e2 = _native(start_envoy, moto, port=capture.port)
    r = requests.post(e2.url + "/live", data=b"{}", timeout=TIMEOUT)
    assert r.status_code == 200
    req = capture.wait_for(1)[0]
    assert req.path == ("/2015-03-31/functions/"
                        f"{moto.info.function_arns['echo']}:live/invocations")
    assert req.header("authorization").startswith("AWS4-HMAC-SHA256 Credential=")
    assert "x-amz-content-sha256" in req.header("authorization")


def test_wrong_secret_is_rejected_by_moto(start_envoy, moto):
    e = _native(start_envoy, moto, secret=moto.info.secret_key[:-1] + "X")
    r = requests.post(e.url + "/echo", json={"a": 1}, timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    assert "SignatureDoesNotMatch" in r.text


def test_unknown_key_is_rejected_by_moto(start_envoy, moto):
    e = _native(start_envoy, moto, access_key="AKIAUNKNOWNKEY000000")
    r = requests.get(e.url + "/echo", timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    assert "InvalidClientTokenId" in r.text


def test_stats_show_upstream_requests(start_envoy, moto):
    e = _native(start_envoy, moto)
    for _ in range(3):
        assert requests.post(e.url + "/echo", data=json.dumps({"k": 1}),
                             timeout=TIMEOUT).status_code == 200
    assert e.wait_counter("cluster.lambda.upstream_rq_200", 3) == 3


# -- Envoy's built-in aws_request_signing filter, sending the module's request shape ---------
def _signing_reference(start_envoy, moto):
    """Envoy's generic SigV4 signer in front of moto. The client sends the exact Invoke
    paths our module is expected to produce, so moto's verdict on that shape is known."""
    i = moto.info
    filt = {"name": "envoy.filters.http.aws_request_signing", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.aws_request_signing.v3."
                 "AwsRequestSigning",
        "service_name": "lambda",
        "region": i.region,
        "use_unsigned_payload": False,
        "match_excluded_headers": [{"exact": h} for h in configs.NATIVE_EXCLUDED_HEADERS],
        "credential_provider": {"inline_credential": {
            "access_key_id": i.access_key, "secret_access_key": i.secret_key}},
    }}
    cfg = configs.dump(configs.bootstrap(
        # the signer buffers the body to hash it: let 1 MiB through
        [configs.http_listener([filt], [configs.route("/", "lambda")],
                               buffer_limit=4 * 1024 * 1024)],
        [configs.static_cluster("lambda", moto.port)]))
    return start_envoy(cfg, name="signing-reference")


def test_reference_signer_module_paths_pass_moto(start_envoy, moto):
    e = _signing_reference(start_envoy, moto)
    base = e.url + "/2015-03-31/functions/echo/invocations"
    r = requests.post(base, data=b"", timeout=TIMEOUT)  # empty body: sha256 must be signed
    assert r.status_code == 200 and r.text == "Simple Lambda happy path OK", r.text
    r = requests.post(base + "?Qualifier=live", json={"q": 1}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"q": 1}, r.text
    # client credential headers are overwritten by the signer; the cookie is signed along
    r = requests.post(base, json={"h": 1}, timeout=TIMEOUT, headers={
        "Authorization": "Bearer xyz", "X-Amz-Date": "20000101T000000Z", "Cookie": "s=1"})
    assert r.status_code == 200 and r.json() == {"h": 1}, r.text
    # a function ARN, percent-encoded in the path (canonical URI is encoded twice)
    arn = moto.info.function_arns["echo"].replace(":", "%3A")
    r = requests.post(e.url + f"/2015-03-31/functions/{arn}/invocations", json={"arn": 1},
                      timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"arn": 1}, r.text


def test_reference_signer_one_mib_chunked(start_envoy, moto):
    e = _signing_reference(start_envoy, moto)
    body = b'{"data":"' + b"z" * (1024 * 1024 - 11) + b'"}'
    chunks = (body[k:k + 1024] for k in range(0, len(body), 1024))
    r = requests.post(e.url + "/2015-03-31/functions/echo/invocations", data=chunks, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert r.content == body
