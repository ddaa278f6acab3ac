"""The shipped configs in envoy/ and the README's main job, exactly as a user runs them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import envoy_proc

ROOT = Path(__file__).resolve().parents[2]
SDS_EMPTY = "resources: []\n"

pytestmark = pytest.mark.usefixtures("module_so")


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "envoy").glob("*.yaml")))
def test_shipped_config_validates(envoy_bin, tmp_path, name):
    """Every file in envoy/ passes `envoy --mode validate` with the module loaded."""
    text = (ROOT / "envoy" / name).read_text()
    # The SDS files the configs name must exist; point absolute ones into the temp dir.
    (tmp_path / "run" / "sds").mkdir(parents=True)
    (tmp_path / "run" / "sds" / "lambda-credentials.yaml").write_text(SDS_EMPTY)
    text = text.replace("/etc/envoy/lambda-credentials.yaml",
                        str(tmp_path / "run" / "sds" / "lambda-credentials.yaml"))
    rc, out = envoy_proc.validate(envoy_bin, text, tmp_path, name=name.removesuffix(".yaml"))
    assert rc == 0, out[-3000:]
    assert " OK" in out.splitlines()[-1], out[-500:]


def test_readme_main_job(tmp_path):
    """`scripts/run.sh --check`: moto + Envoy + module from scratch, the printed curl lines work."""
    for port in (5000, 9901, 10000):
        import socket
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port} is busy; the main job needs it", pytrace=False)
    r = subprocess.run([str(ROOT / "scripts" / "run.sh"), "--check"], cwd=ROOT,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out[-4000:]
    assert out.count("ok   ") == 7, out[-2000:]  # the 7th: the streamed /stream
