"""The AWS SDK's providers live in a library of their own (libenvoy_lambda_credentials_sdk.so),
which the module loads from its own directory the first time a config names a provider.

- A config that signs with Envoy secrets never maps it (the memory it would cost).
- A provider config maps it, and its fetches run on the library's own thread.
- Without the library next to the module, a provider config is rejected at load (also in
  `--mode validate`) naming the file; a file that is not the library is named as such.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

import configs
import envoy_proc

pytestmark = pytest.mark.usefixtures("module_so")

TIMEOUT = 20
LIBRARY = "libenvoy_lambda_credentials_sdk.so"
NO_FILES = {"AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"}


def mapped_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as f:
        return {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}


def thread_names(pid: int) -> list[str]:
    names = []
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            names.append((t / "comm").read_text().strip())
        except OSError:
            pass
    return names


def env_upstream(port: int) -> dict:
    return {"name": "moto", "type": "aws",
            "spec": {"region": "us-east-1", "credentials": {"source": "env"},
                     "endpoint": {"scheme": "http", "host": "127.0.0.1", "port": port}},
            "functions": configs.default_functions()}


def secret_config(moto) -> str:
    i = moto.info
    return configs.module_config(
        moto.port, {"upstreams": [configs.aws_upstream("moto", moto.port,
                                                       configs.default_functions())]},
        configs.standard_routes(),
        secrets={"aws-creds": configs.seed_secret(i.access_key, i.secret_key)})


def provider_config(moto) -> str:
    return configs.module_config(moto.port, {"upstreams": [env_upstream(moto.port)]},
                                 configs.standard_routes())


def test_the_library_is_mapped_only_for_provider_configs(start_envoy, moto):
    i = moto.info
    secrets = start_envoy(secret_config(moto), name="secrets-only")
    r = requests.get(secrets.url + "/echo", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    files = mapped_files(secrets.proc.pid)
    assert any(f.endswith("/libenvoy_lambda.so") for f in files), files
    assert not any(f.endswith("/" + LIBRARY) for f in files), files
    assert "envoy-lambda-sd" not in thread_names(secrets.proc.pid)

    env = {"AWS_ACCESS_KEY_ID": i.access_key, "AWS_SECRET_ACCESS_KEY": i.secret_key, **NO_FILES}
    provider = start_envoy(provider_config(moto), name="provider", env=env)
    r = requests.get(provider.url + "/echo", timeout=TIMEOUT)
    assert r.status_code == 200, r.text  # moto checked the signature made with the env keys
    files = mapped_files(provider.proc.pid)
    assert str(envoy_proc.MODULE_DIR / LIBRARY) in files, files
    # the fetch ran on the library's thread (comm is cut at 15 bytes)
    assert "envoy-lambda-sd" in thread_names(provider.proc.pid)


def module_alone(tmp_path: Path) -> Path:
    d = tmp_path / "module-alone"
    d.mkdir()
    shutil.copy(envoy_proc.MODULE_SO, d / "libenvoy_lambda.so")
    return d


def test_without_the_library_a_provider_config_is_rejected_naming_the_file(
        envoy_validate, moto, tmp_path):
    d = module_alone(tmp_path)
    env = {"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(d), **NO_FILES}
    rc, out = envoy_validate(provider_config(moto), env=env)
    assert rc != 0, out
    assert "credentials: a provider-backed upstream needs the AWS SDK library" in out, out
    assert f"cannot load {d / LIBRARY}" in out, out
    # the same module alone serves secret configs
    rc, out = envoy_validate(secret_config(moto), env=env)
    assert rc == 0, out


def test_a_file_that_is_not_the_library_is_named_as_such(envoy_validate, moto, tmp_path):
    d = module_alone(tmp_path)
    shutil.copy(envoy_proc.MODULE_SO, d / LIBRARY)  # a real library, but not that one
    env = {"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(d), **NO_FILES}
    rc, out = envoy_validate(provider_config(moto), env=env)
    assert rc != 0, out
    assert f"{d / LIBRARY} is not the credentials library" in out, out
