"""Function discovery inside Envoy: the module lists the account's functions through Envoy's
own HTTP client (config-level callouts), keeps the table current, and a catch-all route
invokes whatever was discovered.

moto checks every listing's signature but ignores MaxItems/Marker; the project's paging peer
(tests/peers/paging_lambda.py) pages like AWS (50 per page, NextMarker) to prove pagination.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

import configs
from paging_lambda import PagingLambda
from moto_peer import MotoPeer

TIMEOUT = 20
pytestmark = pytest.mark.usefixtures("module_so")


def discovery_config(port: int, access_key: str, secret_key: str, static=None, **discovery):
    settings = {"enabled": True, "cluster": "lambda", "refresh_interval": "1s", **discovery}
    fcfg = {"upstreams": [configs.aws_upstream("acct", port, static or [], discovery=settings)]}
    routes = [
        ("/lambda/", configs.module_per_route("acct", None, path_template="/lambda/{function}")),
    ]
    text = configs.module_config(port, fcfg, routes,
                                 secrets={"aws-creds": configs.seed_secret(access_key, secret_key)})
    # module_per_route always writes "function"; a template route must not.
    cfg = json.loads(text)
    for vh in cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
            "typed_config"]["route_config"]["virtual_hosts"]:
        for r in vh["routes"]:
            per = r["typed_per_filter_config"][configs.MODULE_FILTER_NAME]["filter_config"]
            doc = json.loads(per["value"])
            doc.pop("function", None)
            per["value"] = json.dumps(doc)
    return json.dumps(cfg)


def wait_until(pred, timeout=15.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


def stat(envoy, name) -> int:
    return int(envoy.stats().get(name, 0))


def invoke(envoy, name, body=b'{"x":1}'):
    return requests.post(f"{envoy.url}/lambda/{name}", data=body, timeout=TIMEOUT,
                         headers={"content-type": "application/json"})


# -- against moto (signatures verified) ------------------------------------------------
@pytest.fixture(scope="module")
def moto120(tmp_path_factory):
    names = [f"fn-{i:03d}" for i in range(120)]
    log = tmp_path_factory.mktemp("moto120") / "moto.log"
    peer = MotoPeer(functions=names, aliases=[("fn-000", "live")], log_path=str(log))
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


def test_120_functions_are_discovered_and_invocable(start_envoy, moto120):
    i = moto120.info
    e = start_envoy(discovery_config(moto120.port, i.access_key, i.secret_key, aliases=True),
                    name="disc-moto")
    t0 = time.monotonic()
    wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") >= 121)
    took = time.monotonic() - t0
    n = stat(e, "envoy_lambda.discovery_functions.upstream.acct")
    assert n == 121, e.stats(r"discovery")  # 120 functions + fn-000:live
    print(f"first refresh complete after {took:.2f}s")
    assert stat(e, "envoy_lambda.discovered_function.upstream.acct.function.fn-119") == 1
    r = invoke(e, "fn-042")
    assert r.status_code == 200, r.text  # moto verified the signature of the invoke too
    assert r.json() == {"x": 1}
    r = invoke(e, "fn-000:live")
    assert r.status_code == 200, r.text
    r = invoke(e, "no-such-fn")
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "unknown_function"
    assert stat(e, "envoy_lambda.discovery_refresh_ok.upstream.acct") >= 1


def test_created_and_deleted_functions_follow_the_account(start_envoy, moto120):
    i = moto120.info
    e = start_envoy(discovery_config(moto120.port, i.access_key, i.secret_key),
                    name="disc-moto-churn")
    assert wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") >= 120)
    lam = moto120.client("lambda", i.access_key, i.secret_key)
    moto120.disable_auth()  # moto 403s boto3's body-less DELETE once checking is on
    try:
        lam.create_function(FunctionName="newcomer", Runtime="python3.12", Role=i.role_arn,
                            Handler="lambda_function.handler",
                            Code={"ZipFile": _zip()}, Timeout=3)
        lam.delete_function(FunctionName="fn-119")
    finally:
        moto120.enable_auth()
    t0 = time.monotonic()
    assert wait_until(lambda: invoke(e, "newcomer").status_code == 200, timeout=10)
    print(f"created function invocable after {time.monotonic() - t0:.2f}s")
    assert wait_until(lambda: invoke(e, "fn-119").status_code == 404, timeout=10)
    assert stat(e, "envoy_lambda.discovered_function.upstream.acct.function.fn-119") == 0
    moto120.disable_auth()
    try:  # put the shared peer back as it was
        lam.delete_function(FunctionName="newcomer")
        lam.create_function(FunctionName="fn-119", Runtime="python3.12", Role=i.role_arn,
                            Handler="lambda_function.handler", Code={"ZipFile": _zip()}, Timeout=3)
    finally:
        moto120.enable_auth()


def _zip() -> bytes:
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lambda_function.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


def test_include_exclude_patterns(start_envoy, moto120):
    i = moto120.info
    e = start_envoy(discovery_config(moto120.port, i.access_key, i.secret_key,
                                     include=["fn-00*", "fn-1??"], exclude=["fn-1*5"]),
                    name="disc-moto-filter")
    # fn-000..fn-009 (10) + fn-100..fn-119 (20) minus fn-105, fn-115 = 28
    assert wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 28)
    assert invoke(e, "fn-005").status_code == 200
    assert invoke(e, "fn-050").status_code == 404
    assert invoke(e, "fn-115").status_code == 404


# -- against the paging peer -------------------------------------------------------------
@pytest.fixture
def paging():
    with PagingLambda() as lam:
        lam.add_functions(f"pg-{i:03d}" for i in range(120))
        lam.add_function("orders", aliases={"live": "1", "blue": "1"})
        yield lam


def test_pagination_follows_next_marker(start_envoy, paging):
    e = start_envoy(discovery_config(paging.port, "AKIAPAGING", "s", aliases=True,
                                     refresh_interval="30s"), name="disc-paging")
    assert wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 123)
    lists = [r for r in paging.requests if r.operation == "ListFunctions"]
    assert len(lists) == 3, [r.path for r in lists]  # 50 + 50 + 21
    assert "Marker" not in lists[0].query()
    assert lists[1].query()["Marker"] and lists[2].query()["Marker"]
    assert all(r.header("authorization").startswith("AWS4-HMAC-SHA256") for r in paging.requests)
    assert invoke(e, "orders:blue").status_code == 200
    assert invoke(e, "pg-119").status_code == 200


def test_a_failed_refresh_keeps_the_last_good_list(start_envoy, paging):
    e = start_envoy(discovery_config(paging.port, "AKIAPAGING", "s"), name="disc-fail")
    assert wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 121)
    paging.fail_next(1000, 500)
    assert wait_until(lambda: stat(e, "envoy_lambda.discovery_refresh_failed.upstream.acct.reason.server") >= 1)
    assert stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 121
    # The list is still served; the invoke itself fails at the (failing) peer, mapped.
    assert invoke(e, "pg-001").status_code == 502
    assert invoke(e, "nope").status_code == 404
    paging.clear_failures()


def test_a_stopped_peer_keeps_the_list_and_counts_failures(start_envoy):
    """The peer process dies (connections included): the old list stays, failures count."""
    import subprocess
    import sys
    from pathlib import Path
    peer_py = Path(__file__).resolve().parents[1] / "peers" / "paging_lambda.py"
    proc = subprocess.Popen([sys.executable, str(peer_py), "--port", "0", "--functions", "alpha,beta"],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        port = json.loads(proc.stdout.readline())["port"]
        e = start_envoy(discovery_config(port, "AKIAPAGING", "s"), name="disc-stopped")
        assert wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 2)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    failed = lambda: sum(v for k, v in e.stats().items()
                         if k.startswith("envoy_lambda.discovery_refresh_failed.upstream.acct"))
    assert wait_until(lambda: failed() >= 2, timeout=10), e.stats("discovery")
    assert stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 2
    assert stat(e, "envoy_lambda.discovered_function.upstream.acct.function.alpha") == 1
    assert invoke(e, "gamma").status_code == 404  # still judged against the kept list
    # One rate-limited warning, not one per failure.
    assert e.log_text().count("discovery for upstream 'acct' failed") == 1, e.log_text()[-3000:]


def test_before_the_first_list_static_works_and_discovered_is_503(start_envoy, paging):
    paging.fail_next(100000, 503)
    static = [configs.fn("pinned", "pg-001")]
    e = start_envoy(discovery_config(paging.port, "AKIAPAGING", "s", static=static),
                    name="disc-notready")
    r = invoke(e, "pg-002")
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "discovery_pending"
    paging.clear_failures()
    # A static function does not depend on discovery (the peer answers the invoke).
    assert wait_until(lambda: invoke(e, "pinned").status_code == 200, timeout=5)


# -- config updates (filesystem LDS) -----------------------------------------------------
LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LdsDiscovery:
    """The discovery config with its listener served by filesystem LDS, so that a test can
    update the listener (each update is a new filter config; the old one drains for Envoy's
    default 600 s) while keeping the upstream as it is."""

    def __init__(self, tmp_path, port: int, **discovery):
        cfg = json.loads(discovery_config(port, "AKIAPAGING", "s", **discovery))
        self.listener = cfg["static_resources"].pop("listeners")[0]
        # A fixed port: the listener keeps its socket across updates.
        self.listener["address"]["socket_address"]["port_value"] = _free_port()
        self.path = tmp_path / "lds.json"
        self.version = 0
        self._write()
        cfg["dynamic_resources"] = {"lds_config": {"resource_api_version": "V3",
                                                   "path_config_source": {"path": str(self.path)}}}
        self.bootstrap = json.dumps(cfg)

    def _hcm(self) -> dict:
        return self.listener["filter_chains"][0]["filters"][0]["typed_config"]

    def _write(self) -> None:
        # Only the HCM's stat prefix changes: the filter config (and so the upstream) stays.
        self._hcm()["stat_prefix"] = f"ingress_v{self.version}"
        configs.write_atomically(self.path, configs.dump(
            {"resources": [{"@type": LISTENER_TYPE, **self.listener}]}))

    def update(self, envoy) -> int:
        """Writes the next version (atomic mv) and waits until Envoy serves it."""
        self.version += 1
        self._write()
        v = self.version
        assert wait_until(lambda: stat(envoy, "listener_manager.lds.update_success") >= v + 1
                          and stat(envoy, "listener_manager.total_listeners_warming") == 0,
                          timeout=10), envoy.stats("listener_manager")
        return v


def test_an_lds_update_keeps_discovered_functions_answering(start_envoy, paging, tmp_path):
    """Defect 5: a new filter config used to start with an empty table (503 discovery_pending
    until its own first listing). It now starts with the last good table of the same upstream."""
    lds = LdsDiscovery(tmp_path, paging.port, refresh_interval="30s")
    e = start_envoy(lds.bootstrap, name="disc-lds-carry")
    assert wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 121)
    paging.listing_delay = 3.0  # a large account: any new listing takes 3 s from now on
    statuses = []
    for _ in range(2):
        v = lds.update(e)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # new connections: the new filter config answers
            r = invoke(e, "pg-001")
            statuses.append((v, r.status_code, r.text[:80] if r.status_code != 200 else ""))
        assert stat(e, f"http.ingress_v{v}.downstream_rq_total") > 0, "served by the new config"
    failed = [s for s in statuses if s[1] != 200]
    print(f"{len(statuses)} requests across 2 LDS updates, {len(failed)} failed")
    assert not failed, failed[:5]
    assert invoke(e, "no-such-fn").status_code == 404  # judged against the carried list


def test_lds_updates_do_not_multiply_listfunctions_calls(start_envoy, paging, tmp_path):
    """Defect 6: every draining config kept polling (N updates → N+1 pollers). Now the newest
    config polls and the others read its table; stats and the log say which config polls."""
    lds = LdsDiscovery(tmp_path, paging.port, refresh_interval="1s")
    e = start_envoy(lds.bootstrap, name="disc-lds-rate")
    assert wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 121)
    updates = 5
    for _ in range(updates):
        lds.update(e)
    time.sleep(1.5)  # let a refresh of the new poller run
    t0 = time.time()
    window = 6.0
    time.sleep(window)
    lists = paging.count("ListFunctions", since=t0)
    refreshes = lists / 3  # 121 functions: 3 pages per refresh
    print(f"{updates} LDS updates, {updates + 1} configs alive: {lists} ListFunctions calls "
          f"in {window:.0f} s = {refreshes / window:.2f} refreshes/s at refresh_interval 1s")
    # One config's rate: 1 refresh per 1 s ± 10 % (and the pages of one refresh in a row).
    assert refreshes <= window * 1.25 + 1, lists
    assert refreshes >= window * 0.5, lists  # and it did not stop
    configs_alive = stat(e, "envoy_lambda.discovery_configs.upstream.acct")
    poller = stat(e, "envoy_lambda.discovery_poller_config.upstream.acct")
    assert configs_alive == updates + 1, e.stats("discovery")
    log = e.log_text()
    assert f"filter config #{poller} polls now instead of #{poller - 1}, starting with the " \
           f"last good list (121 names)" in log, log[-3000:]
    assert invoke(e, "pg-119").status_code == 200


def test_when_old_configs_are_destroyed_the_newest_keeps_polling(envoy_bin, paging, tmp_path):
    """With a 1 s drain the superseded configs are destroyed soon after each update: the
    survivor polls on, and the gauges it re-published outlive the old configs' stat scopes."""
    import envoy_proc
    lds = LdsDiscovery(tmp_path, paging.port, refresh_interval="1s")
    e = envoy_proc.EnvoyProcess(envoy_bin, lds.bootstrap, tmp_path / "drain", name="disc-drain",
                                extra_args=["--drain-time-s", "1"])
    e.start()
    try:
        assert wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 121)
        lds.update(e)
        lds.update(e)
        assert wait_until(lambda: stat(e, "envoy_lambda.discovery_configs.upstream.acct") == 1,
                          timeout=20), e.stats("discovery")
        log = e.log_text()
        assert "filter config #1 is gone" in log and "filter config #2 is gone" in log, log[-3000:]
        assert stat(e, "envoy_lambda.discovery_poller_config.upstream.acct") == 3
        ok = stat(e, "envoy_lambda.discovery_refresh_ok.upstream.acct")
        assert wait_until(lambda: stat(e, "envoy_lambda.discovery_refresh_ok.upstream.acct")
                          >= ok + 2, timeout=10), "the survivor polls"
        assert stat(e, "envoy_lambda.discovered_function.upstream.acct.function.pg-119") == 1
        assert stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 121
        assert invoke(e, "pg-119").status_code == 200
    finally:
        e.stop()


def test_aliases_refresh_interval_lists_aliases_of_new_functions_only(start_envoy, paging):
    e = start_envoy(discovery_config(paging.port, "AKIAPAGING", "s", aliases=True,
                                     aliases_refresh_interval="1h"), name="disc-alias-interval")
    assert wait_until(lambda: stat(e, "envoy_lambda.discovery_functions.upstream.acct") == 123)
    full = paging.count("ListAliases")
    assert full == 121  # the first refresh lists every function's aliases
    paging.add_function("newcomer", aliases={"live": "$LATEST"})
    paging.add_alias("orders", "green", "1")  # a known function: seen at the next full listing
    t0 = time.time()
    assert wait_until(lambda: invoke(e, "newcomer:live").status_code == 200, timeout=10)
    time.sleep(2.5)  # a few more 1 s refreshes
    aliases = [r.path for r in paging.requests if r.operation == "ListAliases" and r.time >= t0]
    assert paging.count("ListFunctions", since=t0) >= 3 * 2
    assert aliases == ["/2015-03-31/functions/newcomer/aliases?MaxItems=50"], aliases
    assert invoke(e, "orders:blue").status_code == 200  # kept from the full listing
    assert invoke(e, "orders:green").status_code == 404


def test_aliases_refresh_interval_below_refresh_interval_is_refused(envoy_validate, paging):
    text = discovery_config(paging.port, "AKIAPAGING", "s", aliases=True, refresh_interval="30s",
                            aliases_refresh_interval="10s")
    rc, out = envoy_validate(text)
    assert rc != 0
    assert "spec.discovery.aliases_refresh_interval: 10s is shorter than refresh_interval " \
           "(30s)" in out, out[-2000:]
