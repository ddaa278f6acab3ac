"""Builders for the Envoy bootstrap configs the integration tests run.

Configs are built as Python dicts and written as JSON text (valid YAML, so the
files may keep a ``.yaml`` name) — no quoting surprises for secrets or the
module's JSON filter config. Listener and admin ports default to 0; the
harness (envoy_proc.py) reads the bound ports back.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional

DM = "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3"
LAMBDA_NATIVE = "type.googleapis.com/envoy.extensions.filters.http.aws_lambda.v3"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

MODULE_FILTER_NAME = "envoy-lambda"  # http_filters[].name, key of typed_per_filter_config
NODE = {"id": "envoy-lambda-test", "cluster": "envoy-lambda-test"}


def dump(cfg: dict) -> str:
    return json.dumps(cfg, indent=2) + "\n"


# -- generic pieces -----------------------------------------------------------
def socket_address(port: int, host: str = "127.0.0.1") -> dict:
    return {"socket_address": {"address": host, "port_value": port}}


def static_cluster(name: str, port: int, host: str = "127.0.0.1",
                   metadata: Optional[dict] = None, connect_timeout: str = "2s") -> dict:
    c = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(port, host)}}]}],
        },
    }
    if metadata:
        c["metadata"] = {"filter_metadata": metadata}
    return c


def route(prefix: str, cluster: str, timeout: str = "15s",
          per_filter: Optional[dict] = None) -> dict:
    r = {"match": {"prefix": prefix}, "route": {"cluster": cluster, "timeout": timeout}}
    if per_filter:
        r["typed_per_filter_config"] = per_filter
    return r


def http_listener(http_filters: list[dict], routes: list[dict], name: str = "main",
                  port: int = 0, buffer_limit: Optional[int] = None,
                  hcm_extra: Optional[dict] = None) -> dict:
    """hcm_extra: more HttpConnectionManager fields (e.g. use_remote_address)."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                 "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        "access_log": [{
            "name": "envoy.access_loggers.stdout",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers."
                                      "stream.v3.StdoutAccessLog"},
        }],
        "route_config": {
            "name": "local",
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}],
        },
        "http_filters": http_filters + [{
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http."
                                      "router.v3.Router"},
        }],
    }
    hcm.update(hcm_extra or {})
    lst = {
        "name": name,
        "address": socket_address(port),
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm}]}],
    }
    if buffer_limit is not None:
        lst["per_connection_buffer_limit_bytes"] = buffer_limit
    return lst


def bootstrap(listeners: list[dict], clusters: list[dict],
              secrets: Optional[list[dict]] = None) -> dict:
    sr: dict = {"listeners": listeners, "clusters": clusters}
    if secrets:
        sr["secrets"] = secrets
    return {
        "node": dict(NODE),  # SDS generic secrets need node id + cluster
        "admin": {"address": socket_address(0)},
        "static_resources": sr,
    }


# -- Envoy's built-in aws_lambda filter (the reference) ---------------------------
# Headers botocore leaves out of the canonical request (see test-peers.md).
NATIVE_EXCLUDED_HEADERS = ("user-agent", "expect", "connection", "keep-alive", "te", "trailer",
                           "transfer-encoding", "upgrade", "x-amzn-trace-id", "baggage",
                           "traceparent", "tracestate", "proxy-connection", "proxy-authorization")

def native_lambda_config(moto_port: int, default_arn: str, access_key: str, secret_key: str,
                         routes: Iterable[tuple[str, Optional[str]]] = (("/", None),),
                         payload_passthrough: bool = True, session_token: str = "") -> str:
    """routes: (prefix, arn or None for the filter-level default_arn)."""
    creds = {"access_key_id": access_key, "secret_access_key": secret_key}
    if session_token:
        creds["session_token"] = session_token

    def invoke(arn: str) -> dict:
        return {
            "arn": arn,
            "payload_passthrough": payload_passthrough,
            "invocation_mode": "SYNCHRONOUS",
            "credentials": creds,
            # moto's botocore-based check drops these from the canonical request, so
            # signing them gives a false 403 (test-peers.md); AWS does not need them.
            "match_excluded_headers": [{"exact": h} for h in NATIVE_EXCLUDED_HEADERS],
        }

    filt = {"name": "envoy.filters.http.aws_lambda",
            "typed_config": {"@type": LAMBDA_NATIVE + ".Config", **invoke(default_arn)}}
    rts = []
    for prefix, arn in routes:
        per = None
        if arn:
            per = {"envoy.filters.http.aws_lambda": {
                "@type": LAMBDA_NATIVE + ".PerRouteConfig", "invoke_config": invoke(arn)}}
        rts.append(route(prefix, "lambda", per_filter=per))
    cluster = static_cluster("lambda", moto_port,
                             metadata={"com.amazonaws.lambda": {"egress_gateway": True}})
    return dump(bootstrap([http_listener([filt], rts)], [cluster]))


# -- our module -------------------------------------------------------------
def seed_secret(access_key: str, secret_key: str, session_token: Optional[str] = None) -> str:
    """The Gloo seed's AWS secret document (YAML)."""
    s = f"access_key: {access_key}\nsecret_key: {secret_key}\n"
    if session_token:
        s += f"session_token: {session_token}\n"
    return s


def static_secret(name: str, inline_string: str) -> dict:
    return {"name": name, "generic_secret": {"secret": {"inline_string": inline_string}}}


def sds_file_text(name: str, inline_string: str) -> str:
    return dump({"resources": [{"@type": SECRET_TYPE, "name": name,
                                "generic_secret": {"secret": {"inline_string": inline_string}}}]})


def write_atomically(path: Path | str, text: str) -> None:
    """Write a file by rename, the only way Envoy's file-based SDS sees a rotation."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".tmp-" + path.name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def aws_upstream(name: str, port: int, functions: list[dict], region: Optional[str] = "us-east-1",
                 secret_ref: str = "aws-creds", sds_path: Optional[str] = None,
                 host: str = "127.0.0.1", scheme: str = "http", **spec_extra) -> dict:
    """One entry of the filter config's ``upstreams`` (the Gloo seed's Upstream)."""
    spec: dict = {}
    if region is not None:
        spec["region"] = region
    spec["secret_ref"] = secret_ref
    spec["endpoint"] = {"scheme": scheme, "host": host, "port": port}
    if sds_path:
        spec["secret_source"] = {"path_config_source": {"path": str(sds_path)}}
    spec.update(spec_extra)
    return {"name": name, "type": "aws", "spec": spec, "functions": functions}


def fn(name: str, function_name: str, qualifier: Optional[str] = None, **extra) -> dict:
    spec = {"function_name": function_name}
    if qualifier is not None:
        spec["qualifier"] = qualifier
    spec.update(extra)
    return {"name": name, "spec": spec}


def default_functions() -> list[dict]:
    return [fn("echo", "echo"), fn("hello", "hello"), fn("echo-live", "echo", "live")]


def module_per_route(upstream: str, function: str, **extra) -> dict:
    return {MODULE_FILTER_NAME: {
        "@type": DM + ".DynamicModuleFilterPerRoute",
        "dynamic_module_config": {"name": "envoy_lambda"},
        "filter_name": "lambda",
        "filter_config": {"@type": STRING_VALUE,
                          "value": json.dumps({"upstream": upstream, "function": function,
                                               **extra})},
    }}


def module_per_route_text(text: str) -> dict:
    """A per-route config whose JSON is given as written (e.g. with a repeated key)."""
    return {MODULE_FILTER_NAME: {
        "@type": DM + ".DynamicModuleFilterPerRoute",
        "dynamic_module_config": {"name": "envoy_lambda"},
        "filter_name": "lambda",
        "filter_config": {"@type": STRING_VALUE, "value": text},
    }}


def lds_file_text(listeners: list[dict]) -> str:
    """A file-based LDS resource file (``path_config_source``) holding these listeners."""
    return dump({"resources": [
        {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **lst}
        for lst in listeners]})


def lds_bootstrap(lds_path: Path | str, clusters: list[dict],
                  secrets: Optional[list[dict]] = None) -> dict:
    """Listeners from a file Envoy watches (replace it with write_atomically to update)."""
    cfg = bootstrap([], clusters, secrets)
    del cfg["static_resources"]["listeners"]
    cfg["dynamic_resources"] = {"lds_config": {"resource_api_version": "V3",
                                               "path_config_source": {"path": str(lds_path)}}}
    return cfg


def module_filter(filter_config: dict | str) -> dict:
    value = filter_config if isinstance(filter_config, str) else json.dumps(filter_config)
    return {
        "name": MODULE_FILTER_NAME,
        "typed_config": {
            "@type": DM + ".DynamicModuleFilter",
            "dynamic_module_config": {"name": "envoy_lambda", "metrics_namespace": "envoy_lambda"},
            "filter_name": "lambda",
            "filter_config": {"@type": STRING_VALUE, "value": value},
        },
    }


def module_config(cluster_port: int, filter_config: dict | str,
                  routes: Iterable[tuple[str, Optional[dict]]],
                  secrets: Optional[dict[str, str]] = None,
                  route_timeout: str = "15s", buffer_limit: Optional[int] = None) -> str:
    """Bootstrap with our module in front of cluster ``lambda`` → 127.0.0.1:cluster_port.

    routes: (prefix, per-route dict from module_per_route() or None).
    secrets: static generic secrets {name: inline_string}.
    """
    rts = [route(p, "lambda", timeout=route_timeout, per_filter=per) for p, per in routes]
    sec = [static_secret(n, v) for n, v in (secrets or {}).items()]
    return dump(bootstrap([http_listener([module_filter(filter_config)], rts,
                                         buffer_limit=buffer_limit)],
                          [static_cluster("lambda", cluster_port)], sec))


def echo_routes(**per_route: dict) -> list[tuple[str, dict]]:
    """One route per entry: /<name> → function echo of upstream moto with the given overrides."""
    return [(f"/{name}", module_per_route("moto", "echo", **opts))
            for name, opts in per_route.items()]


def standard_routes(upstream: str = "moto") -> list[tuple[str, dict]]:
    """/echo, /hello, /echo-live → the functions of default_functions()."""
    return [
        ("/echo-live", module_per_route(upstream, "echo-live")),
        ("/echo", module_per_route(upstream, "echo")),
        ("/hello", module_per_route(upstream, "hello")),
    ]


# -- response streaming (issue 11) ---------------------------------------------------------
def with_file_access_log(cfg_text: str, path: Path | str, line_format: str) -> str:
    """Every listener logs to `path` (one line per request, `line_format` + newline) instead of
    stdout, e.g. with ``%DYNAMIC_METADATA(envoy_lambda)%``."""
    cfg = json.loads(cfg_text)
    for lst in cfg["static_resources"]["listeners"]:
        hcm = lst["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["access_log"] = [{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": str(path),
                "log_format": {"text_format_source": {"inline_string": line_format + "\n"}},
            },
        }]
    return dump(cfg)


def streaming_config(peer_port: int, access_key: str, secret_key: str,
                     functions: list[dict], routes: Iterable[tuple[str, Optional[dict]]],
                     upstream: str = "stream", route_timeout: str = "60s", **spec_extra) -> str:
    """Our module in front of the streaming Lambda peer (upstream `upstream`, static secret).
    A route's timeout covers the whole response, so streams get a long one."""
    fcfg = {"upstreams": [aws_upstream(upstream, peer_port, functions, **spec_extra)]}
    return module_config(peer_port, fcfg, routes, route_timeout=route_timeout,
                         secrets={"aws-creds": seed_secret(access_key, secret_key)})
