//! The per-route config (what `envoy_dynamic_module_on_http_filter_per_route_config_new`
//! parses), then resolving its names against a filter config, as each request does.
#![no_main]

use envoy_lambda::config::{FilterConfig, FunctionRef, RouteTarget};
use libfuzzer_sys::fuzz_target;

const FILTER_CONFIG: &str = r#"{"name": "local-lambda", "type": "aws",
  "spec": {"region": "us-east-1", "secret_ref": "lambda-credentials"},
  "functions": [{"name": "echo", "spec": {"function_name": "echo"}},
                {"name": "echo-live", "spec": {"function_name": "echo", "qualifier": "live"}}]}"#;

fuzz_target!(|data: &[u8]| {
    let target = match RouteTarget::from_json(data) {
        Ok(t) => t,
        Err(e) => {
            assert!(!e.message.is_empty(), "an error without a message: {e:?}");
            return;
        }
    };
    assert!(!target.upstream.is_empty());
    match &target.function {
        FunctionRef::Named(f) => assert!(!f.is_empty()),
        FunctionRef::FromPath(t) => {
            let _ = t.extract("/lambda/echo");
        }
    }
    let config =
        FilterConfig::from_json(FILTER_CONFIG.as_bytes()).expect("the fixed config is valid");
    if let (Some(upstream), FunctionRef::Named(f)) =
        (config.upstream(&target.upstream), &target.function)
    {
        let _ = upstream.functions.get(f.as_str());
    }
});
