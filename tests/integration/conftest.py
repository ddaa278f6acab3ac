"""Fixtures for the integration tests: a real Envoy, moto as Lambda, a capture upstream.

Run: ``scripts/bootstrap.sh && .venv/bin/python -m pytest tests/integration -q``
(the module tests need ``target/release/libenvoy_lambda.so``, built first by
``cargo build --release``).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "peers"))

import envoy_proc  # noqa: E402
from capture_upstream import CaptureUpstream  # noqa: E402
from moto_peer import MotoPeer  # noqa: E402

_counter = itertools.count()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep


def _failed(request) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


@pytest.fixture(scope="session")
def envoy_bin() -> str:
    try:
        return envoy_proc.find_envoy()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def module_so() -> Path:
    """Our module. Missing is an error, not a skip: the test command builds it first."""
    so = envoy_proc.MODULE_SO
    if not so.is_file():
        pytest.fail(
            f"{so} does not exist: build it first with `cargo build --release` "
            f"(the module tests load it through ENVOY_DYNAMIC_MODULES_SEARCH_PATH="
            f"{envoy_proc.MODULE_DIR})",
            pytrace=False,
        )
    return so


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """moto as Lambda with signature checking ON: functions echo, hello; echo:live → v1."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    peer = MotoPeer(functions=("echo", "hello"), aliases=[("echo", "live")], log_path=str(log))
    peer.start()
    try:
        peer.verify_auth()  # right key → 200, wrong secret → 403: the peer is fair
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def capture():
    """A recording upstream (default reply: 200 JSON echo of the request body)."""
    with CaptureUpstream() as up:
        yield up


@pytest.fixture
def start_envoy(envoy_bin, tmp_path, request):
    """Factory: start_envoy(config_text, name=None, env=None, extra_args=None) -> EnvoyProcess
    (serving)."""
    procs: list[envoy_proc.EnvoyProcess] = []

    def _start(config_text: str, name: str | None = None, env: dict | None = None,
               timeout: float = 30.0,
               extra_args: list[str] | None = None) -> envoy_proc.EnvoyProcess:
        name = name or f"envoy{next(_counter)}"
        p = envoy_proc.EnvoyProcess(envoy_bin, config_text, tmp_path / name, name=name, env=env,
                                    extra_args=extra_args)
        procs.append(p)
        p.start(timeout=timeout)
        return p

    yield _start
    failed = _failed(request)
    for p in procs:
        p.stop()
        if failed:
            print(f"\n===== {p.name} log ({p.log_path}) =====\n{p.log_tail(80)}")


@pytest.fixture
def envoy_validate(envoy_bin, tmp_path):
    """envoy_validate(config_text) -> (rc, output) of `envoy --mode validate`."""
    def _validate(config_text: str, name: str | None = None,
                  env: dict | None = None) -> tuple[int, str]:
        name = name or f"validate{next(_counter)}"
        return envoy_proc.validate(envoy_bin, config_text, tmp_path / name, name=name, env=env)

    return _validate
