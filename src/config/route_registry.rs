//! Cross-checks per-route configs against filter configs, so that a route naming an unknown
//! upstream or function is refused at load rather than answered with a 500 at request time.
//!
//! Envoy gives the per-route hook no link to the filter config, and the order differs: routes
//! inlined in an HCM are built *before* the HCM's filters, RDS routes after. So targets seen
//! before any filter config wait here and are checked by the next filter config; targets seen
//! afterwards are checked against every filter config loaded so far.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::{ConfigError, FilterConfig, FunctionRef, RouteTarget};

#[derive(Default)]
pub struct RouteRegistry {
    pending: Vec<RouteTarget>,
    /// upstream → what its routes may name, over every filter config loaded in this process.
    known: HashMap<String, Known>,
}

#[derive(Default)]
struct Known {
    functions: HashSet<String>,
    discovery: bool,
}

impl Known {
    fn allows(&self, function: &str) -> bool {
        self.discovery || self.functions.contains(function)
    }
}

static GLOBAL: Mutex<Option<RouteRegistry>> = Mutex::new(None);

/// Runs `f` on the process-wide registry.
pub fn with_global<T>(f: impl FnOnce(&mut RouteRegistry) -> T) -> T {
    let mut guard = GLOBAL.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(RouteRegistry::default))
}

impl RouteRegistry {
    /// A per-route config was loaded.
    pub fn add_route(&mut self, target: &RouteTarget) -> Result<(), ConfigError> {
        if self.known.is_empty() {
            self.pending.push(target.clone());
            return Ok(());
        }
        match self.known.get(&target.upstream) {
            None => Err(ConfigError {
                field: "upstream".into(),
                message: format!(
                    "'{}' is not an upstream of any envoy-lambda filter config",
                    target.upstream
                ),
            }),
            Some(entry) => match &target.function {
                FunctionRef::Named(f) if !entry.allows(f) => Err(ConfigError {
                    field: "function".into(),
                    message: format!("upstream '{}' has no function '{f}'", target.upstream),
                }),
                _ => Ok(()),
            },
        }
    }

    /// A filter config was loaded: checks the routes waiting for it, then remembers it.
    pub fn add_filter_config(&mut self, config: &FilterConfig) -> Result<(), ConfigError> {
        for target in std::mem::take(&mut self.pending) {
            let Some(upstream) = config.upstream(&target.upstream) else {
                return Err(ConfigError {
                    field: "typed_per_filter_config.upstream".into(),
                    message: format!(
                        "a route names upstream '{}', which this filter config does not define",
                        target.upstream
                    ),
                });
            };
            if let FunctionRef::Named(f) = &target.function {
                // With discovery on, any name may become valid later: checked per request.
                if upstream.discovery.is_none() && !upstream.functions.contains_key(f) {
                    return Err(ConfigError {
                        field: "typed_per_filter_config.function".into(),
                        message: format!(
                            "a route names function '{f}', which upstream '{}' does not define",
                            target.upstream
                        ),
                    });
                }
            }
        }
        for upstream in config.upstreams() {
            let known = self.known.entry(upstream.name.clone()).or_default();
            known.functions.extend(upstream.functions.keys().cloned());
            known.discovery |= upstream.discovery.is_some();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FilterConfig {
        FilterConfig::from_json(
            br#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s"},
                 "functions":[{"name":"f","spec":{"function_name":"f"}}]}"#,
        )
        .unwrap()
    }

    fn target(u: &str, f: &str) -> RouteTarget {
        RouteTarget {
            upstream: u.into(),
            function: FunctionRef::Named(f.into()),
            overrides: Default::default(),
        }
    }

    #[test]
    fn routes_before_the_filter_config_are_checked_by_it() {
        let mut r = RouteRegistry::default();
        r.add_route(&target("u", "f")).unwrap();
        r.add_route(&target("nope", "f")).unwrap();
        let e = r.add_filter_config(&config()).unwrap_err();
        assert!(e.to_string().contains("'nope'"), "{e}");

        let mut r = RouteRegistry::default();
        r.add_route(&target("u", "g")).unwrap();
        let e = r.add_filter_config(&config()).unwrap_err();
        assert_eq!(e.field, "typed_per_filter_config.function");
    }

    #[test]
    fn routes_after_a_filter_config_are_checked_at_once() {
        let mut r = RouteRegistry::default();
        r.add_filter_config(&config()).unwrap();
        r.add_route(&target("u", "f")).unwrap();
        assert_eq!(
            r.add_route(&target("x", "f")).unwrap_err().field,
            "upstream"
        );
        assert_eq!(
            r.add_route(&target("u", "x")).unwrap_err().field,
            "function"
        );
    }
}
