//! The per-upstream `discovery` block: raw serde document, then validated settings.
//!
//! ```json
//! "discovery": {
//!   "enabled": true, "cluster": "lambda_us_east_1", "refresh_interval": "30s",
//!   "include": ["orders-*"], "exclude": ["*-test"],
//!   "aliases": true, "versions": false, "aliases_refresh_interval": "10m"
//! }
//! ```
//!
//! Every field is optional; an absent or `null` block is discovery switched off.

use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, err};
use super::glob::{Glob, NameFilter};
use crate::field_path;

pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Below this the account's ListFunctions quota (15 requests/s) is spent on polling.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// The document as written. Unknown fields are errors, so `refresh_intreval` is caught.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    #[serde(default)]
    enabled: bool,
    /// The Envoy cluster the Lambda API calls go through (Envoy's own HTTP client).
    #[serde(default)]
    cluster: Option<String>,
    /// A duration string (`"30s"`) or an integer number of seconds; checked by hand so that the
    /// error says which forms are accepted.
    #[serde(default)]
    refresh_interval: Option<serde_json::Value>,
    #[serde(default)]
    include: Option<Vec<String>>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    aliases: bool,
    #[serde(default)]
    versions: bool,
    /// How often the per-function listings (aliases, versions) are redone; same forms as
    /// `refresh_interval`.
    #[serde(default)]
    aliases_refresh_interval: Option<serde_json::Value>,
}

/// Validated discovery settings of one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySettings {
    pub enabled: bool,
    /// The Envoy cluster that reaches the Lambda API endpoint (required when enabled).
    pub cluster: String,
    pub refresh_interval: Duration,
    /// Applied to the function's own name (not to `name:alias`).
    pub filter: NameFilter,
    /// Also list each included function's aliases and offer `name:alias`.
    pub aliases: bool,
    /// Also list each included function's published versions and offer `name:version`.
    pub versions: bool,
    /// With `aliases`/`versions`: redo the per-function listings only this often (at least
    /// `refresh_interval`); the refreshes in between list functions only and keep the known
    /// aliases and versions of functions already listed (new functions are listed in full).
    /// `None`: on every refresh.
    pub aliases_refresh_interval: Option<Duration>,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            cluster: String::new(),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            filter: NameFilter::default(),
            aliases: false,
            versions: false,
            aliases_refresh_interval: None,
        }
    }
}

/// Parses the value of a `discovery` key. `at` is the path up to it, dot included
/// (`"upstreams[0].spec."`, or `"spec."` for the single-upstream document), so errors name
/// fields such as `upstreams[0].spec.discovery.refresh_interval`. `null` means "not set".
pub fn parse_discovery(
    value: &serde_json::Value,
    at: &str,
) -> Result<DiscoverySettings, ConfigError> {
    let here = format!("{at}discovery");
    let raw: RawDiscovery = match value {
        serde_json::Value::Null => RawDiscovery::default(),
        serde_json::Value::Object(_) => field_path::deserialize(value)
            .map_err(|e| err(field_path::join(&here, e.path()), e.message()))?,
        _ => return Err(err(here, "must be an object such as {\"enabled\": true}")),
    };

    let refresh_interval = match &raw.refresh_interval {
        None => DEFAULT_REFRESH_INTERVAL,
        Some(v) => refresh_interval(v).map_err(|m| err(format!("{here}.refresh_interval"), m))?,
    };
    let aliases_refresh_interval = match &raw.aliases_refresh_interval {
        None => None,
        Some(v) => {
            let field = format!("{here}.aliases_refresh_interval");
            if !(raw.aliases || raw.versions) {
                return Err(err(
                    field,
                    "has no effect unless \"aliases\" or \"versions\" is true",
                ));
            }
            let d = self::refresh_interval(v).map_err(|m| err(field.clone(), m))?;
            if d < refresh_interval {
                return Err(err(
                    field,
                    format!(
                        "{d:?} is shorter than refresh_interval ({refresh_interval:?}); \
                         aliases and versions cannot be listed more often than functions"
                    ),
                ));
            }
            Some(d)
        }
    };
    let include = match raw.include {
        None => None,
        Some(list) if list.is_empty() => {
            return Err(err(
                format!("{here}.include"),
                "must list at least one pattern; leave it out to include every function",
            ));
        }
        Some(list) => Some(globs(&list, &format!("{here}.include"))?),
    };
    let exclude = globs(&raw.exclude, &format!("{here}.exclude"))?;
    let cluster = raw.cluster.unwrap_or_default();
    if raw.enabled && cluster.trim().is_empty() {
        return Err(err(
            format!("{here}.cluster"),
            "is required when discovery is enabled: the Envoy cluster that reaches the Lambda API",
        ));
    }
    Ok(DiscoverySettings {
        enabled: raw.enabled,
        cluster,
        refresh_interval,
        filter: NameFilter { include, exclude },
        aliases: raw.aliases,
        versions: raw.versions,
        aliases_refresh_interval,
    })
}

fn globs(patterns: &[String], field: &str) -> Result<Vec<Glob>, ConfigError> {
    patterns
        .iter()
        .enumerate()
        .map(|(i, p)| Glob::parse(p).map_err(|m| err(format!("{field}[{i}]"), m)))
        .collect()
}

fn refresh_interval(value: &serde_json::Value) -> Result<Duration, String> {
    let d = match value {
        serde_json::Value::String(s) => parse_duration(s)?,
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(secs) => Duration::from_secs(secs),
            None => {
                return Err(format!(
                    "{n} is not a whole, non-negative number of seconds; write e.g. 30 or \"1500ms\""
                ));
            }
        },
        other => {
            return Err(format!(
                "{other} is not a duration: write a string such as \"30s\", \"500ms\", \"2m\", \
                 or an integer number of seconds"
            ));
        }
    };
    if d < MIN_REFRESH_INTERVAL {
        // Duration's Debug form is the short one users write: `500ms`, `1.5s`.
        return Err(format!("{d:?} is below the minimum of 1s"));
    }
    Ok(d)
}

/// `<number><unit>`: the number is decimal digits with an optional fraction (`1.5m`), the unit
/// one of `ms`, `s`, `m`, `h`. No sign, no spaces, no compound forms (`1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "'{text}' is not a duration: write a number and a unit (ms, s, m or h), \
             such as \"30s\", \"500ms\" or \"2m\""
        )
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let unit_nanos: u128 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(bad()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || fraction.len() > 9 {
        return Err(bad());
    }
    if number.ends_with('.') {
        return Err(bad());
    }
    let whole: u128 = whole.parse().map_err(|_| bad())?;
    let (frac_value, frac_scale) = if fraction.is_empty() {
        (0u128, 1u128)
    } else {
        let v: u128 = fraction.parse().map_err(|_| bad())?;
        (v, 10u128.pow(fraction.len() as u32))
    };
    let nanos = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(frac_value * unit_nanos / frac_scale))
        .ok_or_else(|| format!("'{text}' is too long"))?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| format!("'{text}' is too long"))?;
    // The remainder is below 10^9 and so fits a u32.
    let sub = u32::try_from(nanos % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<DiscoverySettings, ConfigError> {
        parse_discovery(&v, "upstreams[0].spec.")
    }

    #[test]
    fn defaults_when_absent_or_empty() {
        assert_eq!(parse(json!(null)).unwrap(), DiscoverySettings::default());
        let d = parse(json!({})).unwrap();
        assert_eq!(d, DiscoverySettings::default());
        assert!(!d.enabled && !d.aliases && !d.versions);
        assert_eq!(d.refresh_interval, Duration::from_secs(60));
        assert!(d.filter.allows("anything"));
    }

    #[test]
    fn full_document() {
        let d = parse(json!({
            "enabled": true, "cluster": "lambda", "refresh_interval": "30s",
            "include": ["orders-*", "billing"], "exclude": ["*-test"],
            "aliases": true, "versions": true
        }))
        .unwrap();
        assert!(d.enabled && d.aliases && d.versions);
        assert_eq!(d.cluster, "lambda");
        assert_eq!(d.refresh_interval, Duration::from_secs(30));
        assert!(d.filter.allows("orders-api"));
        assert!(!d.filter.allows("orders-test"));
        assert!(!d.filter.allows("shipping"));
    }

    #[test]
    fn enabled_needs_a_cluster() {
        let e = parse(json!({"enabled": true})).unwrap_err();
        assert_eq!(e.field, "upstreams[0].spec.discovery.cluster");
        assert!(parse(json!({"enabled": false})).is_ok());
    }

    #[test]
    fn refresh_interval_forms() {
        let ri = |v: serde_json::Value| {
            parse(json!({ "refresh_interval": v })).map(|d| d.refresh_interval)
        };
        assert_eq!(ri(json!(45)).unwrap(), Duration::from_secs(45));
        assert_eq!(ri(json!("45s")).unwrap(), Duration::from_secs(45));
        assert_eq!(ri(json!("1500ms")).unwrap(), Duration::from_millis(1500));
        assert_eq!(ri(json!("2m")).unwrap(), Duration::from_secs(120));
        assert_eq!(ri(json!("1.5m")).unwrap(), Duration::from_secs(90));
        assert_eq!(ri(json!("1h")).unwrap(), Duration::from_secs(3600));
        assert_eq!(ri(json!(null)).unwrap(), DEFAULT_REFRESH_INTERVAL);
    }

    #[test]
    fn refresh_interval_rejections_name_the_field() {
        for (v, needle) in [
            (json!("500ms"), "below the minimum of 1s"),
            (json!(0), "below the minimum"),
            (json!(-5), "non-negative"),
            (json!(1.5), "whole"),
            (json!("30"), "number and a unit"),
            (json!("30 s"), "number and a unit"),
            (json!("+30s"), "number and a unit"),
            (json!("1m30s"), "number and a unit"),
            (json!("1.s"), "number and a unit"),
            (json!(".5s"), "number and a unit"),
            (json!("3d"), "number and a unit"),
            (json!(true), "not a duration"),
            (json!("99999999999999999999999999h"), "too long"),
        ] {
            let e = parse(json!({ "refresh_interval": v })).unwrap_err();
            assert_eq!(
                e.field, "upstreams[0].spec.discovery.refresh_interval",
                "{v}"
            );
            assert!(e.message.contains(needle), "{v}: {}", e.message);
        }
    }

    #[test]
    fn aliases_refresh_interval_defaults_to_and_may_not_undercut_refresh_interval() {
        let d = parse(json!({"refresh_interval": "30s", "aliases": true})).unwrap();
        assert_eq!(d.aliases_refresh_interval, None, "every refresh");
        let d = parse(json!({"refresh_interval": "30s", "versions": true,
                             "aliases_refresh_interval": "10m"}))
        .unwrap();
        assert_eq!(d.aliases_refresh_interval, Some(Duration::from_secs(600)));
        for (doc, needle) in [
            (
                json!({"refresh_interval": "30s", "aliases": true, "aliases_refresh_interval": "10s"}),
                "shorter than refresh_interval (30s)",
            ),
            (
                json!({"aliases_refresh_interval": "10m"}),
                "no effect unless \"aliases\" or \"versions\"",
            ),
            (
                json!({"aliases": true, "aliases_refresh_interval": "10"}),
                "number and a unit",
            ),
        ] {
            let e = parse(doc.clone()).unwrap_err();
            assert_eq!(
                e.field,
                "upstreams[0].spec.discovery.aliases_refresh_interval"
            );
            assert!(e.message.contains(needle), "{doc}: {}", e.message);
        }
    }

    #[test]
    fn glob_errors_name_the_element() {
        let e = parse(json!({"include": ["ok-*", "bad/*"]})).unwrap_err();
        assert_eq!(e.field, "upstreams[0].spec.discovery.include[1]");
        let e = parse(json!({"exclude": [""]})).unwrap_err();
        assert_eq!(e.field, "upstreams[0].spec.discovery.exclude[0]");
        let e = parse(json!({"include": []})).unwrap_err();
        assert_eq!(e.field, "upstreams[0].spec.discovery.include");
    }

    #[test]
    fn unknown_and_mistyped_fields_are_refused() {
        let e = parse(json!({"refresh_intreval": "30s"})).unwrap_err();
        assert_eq!(e.field, "upstreams[0].spec.discovery.refresh_intreval");
        assert!(
            e.message.contains("unknown field `refresh_intreval`"),
            "{}",
            e.message
        );
        let e = parse(json!({"enabled": "yes"})).unwrap_err();
        assert_eq!(e.field, "upstreams[0].spec.discovery.enabled");
        let e = parse(json!({"include": "orders-*"})).unwrap_err();
        assert_eq!(e.field, "upstreams[0].spec.discovery.include");
        let e = parse(json!(true)).unwrap_err();
        assert_eq!(e.field, "upstreams[0].spec.discovery");
        let e = parse_discovery(&json!([]), "spec.").unwrap_err();
        assert_eq!(e.field, "spec.discovery");
    }
}
