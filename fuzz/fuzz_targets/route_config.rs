//! The per-route config (what `envoy_dynamic_module_on_http_filter_per_route_config_new`
//! parses), then the cross-check against a filter config, as the per-route hook does.
#![no_main]

use envoy_lambda::config::{route_registry::RouteRegistry, FilterConfig, FunctionRef, RouteTarget};
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
    // Both orders Envoy may load them in: route first (pending), or filter config first.
    let mut before = RouteRegistry::default();
    let _ = before.add_route(&target);
    let _ = before.add_filter_config(&config);
    let mut after = RouteRegistry::default();
    let _ = after.add_filter_config(&config);
    let _ = after.add_route(&target);
});
