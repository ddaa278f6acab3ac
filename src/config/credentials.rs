//! Where an upstream's credentials come from: `secret_ref` (the seed's Envoy secret), or a
//! `credentials` block naming an AWS provider (the SDK chain by default), optionally with an
//! `assume_role` on top, and how long a request may wait for the first credentials.
//!
//! ```json
//! "spec": {
//!   "region": "us-east-1",
//!   "credentials": {"source": "profile", "profile": "prod", "config_file": "/etc/aws/config"},
//!   "assume_role": {"role_arn": "arn:aws:iam::123456789012:role/x", "external_id": "e",
//!                   "session_name": "envoy-lambda", "duration": "900s"},
//!   "credentials_wait": "1s"
//! }
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::discovery::parse_duration;
use super::error::{ConfigError, err};
use super::validated::SecretIndex;
use crate::field_path;

/// How long a request that finds no credentials yet waits for the first ones.
pub const DEFAULT_CREDENTIALS_WAIT: Duration = Duration::from_secs(1);
/// A request must not sit paused for long: the route timeout would answer instead.
pub const MAX_CREDENTIALS_WAIT: Duration = Duration::from_secs(30);
/// STS's own bounds for `DurationSeconds` (the role's maximum may be lower).
pub const MIN_ROLE_DURATION: Duration = Duration::from_secs(900);
pub const MAX_ROLE_DURATION: Duration = Duration::from_secs(43_200);
pub const DEFAULT_SESSION_NAME: &str = "envoy-lambda";

/// Which credentials an upstream signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsFrom {
    /// The seed's Envoy generic secret, read per request.
    Secret(SecretIndex),
    /// An AWS credential provider, refreshed in the background.
    Provider(ProviderSpec),
}

/// A provider-backed identity: its base source, an optional role on top, the start-up wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    pub source: CredentialSource,
    pub assume_role: Option<AssumeRole>,
    pub wait: Duration,
}

// The source and the role cross to the SDK library as they are: defined with its wire format.
pub use envoy_lambda_credentials_wire::{AssumeRole, CredentialSource};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    source: String,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    config_file: Option<String>,
    #[serde(default)]
    credentials_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssumeRole {
    role_arn: String,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    session_name: Option<String>,
    #[serde(default)]
    duration: Option<serde_json::Value>,
}

/// The spec's credential fields as written (`None` = absent).
pub(super) struct RawIdentity<'a> {
    pub secret_ref: Option<&'a str>,
    pub credentials: Option<&'a serde_json::Value>,
    pub assume_role: Option<&'a serde_json::Value>,
    pub credentials_wait: Option<&'a serde_json::Value>,
}

/// Validates the credential fields of one spec. `at` is the path up to them, dot included
/// (`"upstreams[0].spec."`). `secret` is called for a `secret_ref` to get its index.
pub(super) fn parse_identity(
    raw: RawIdentity<'_>,
    at: &str,
    secret: impl FnOnce(&str) -> SecretIndex,
) -> Result<CredentialsFrom, ConfigError> {
    if let Some(name) = raw.secret_ref {
        if name.trim().is_empty() {
            return Err(err(format!("{at}secret_ref"), "must not be empty"));
        }
        if raw.credentials.is_some() {
            return Err(err(
                format!("{at}credentials"),
                "give either secret_ref (an Envoy secret) or credentials (an AWS provider), not both",
            ));
        }
        if raw.assume_role.is_some() {
            return Err(err(
                format!("{at}assume_role"),
                "is not supported on top of secret_ref: put the static key in the Envoy \
                 process's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and use \
                 \"credentials\": {\"source\": \"env\"} with assume_role",
            ));
        }
        if raw.credentials_wait.is_some() {
            return Err(err(
                format!("{at}credentials_wait"),
                "applies to credentials from a provider only; a secret_ref is read per request",
            ));
        }
        return Ok(CredentialsFrom::Secret(secret(name)));
    }
    let source = match raw.credentials {
        None | Some(serde_json::Value::Null) => CredentialSource::Chain,
        Some(v) => parse_source(v, &format!("{at}credentials"))?,
    };
    let assume_role = match raw.assume_role {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(parse_assume_role(v, &format!("{at}assume_role"))?),
    };
    let wait = match raw.credentials_wait {
        None | Some(serde_json::Value::Null) => DEFAULT_CREDENTIALS_WAIT,
        Some(v) => {
            let field = format!("{at}credentials_wait");
            let d = duration(v).map_err(|m| err(&field, m))?;
            if d > MAX_CREDENTIALS_WAIT {
                return Err(err(
                    field,
                    format!("{d:?} is above the maximum of {MAX_CREDENTIALS_WAIT:?}"),
                ));
            }
            d
        }
    };
    Ok(CredentialsFrom::Provider(ProviderSpec {
        source,
        assume_role,
        wait,
    }))
}

fn parse_source(value: &serde_json::Value, here: &str) -> Result<CredentialSource, ConfigError> {
    if !value.is_object() {
        return Err(err(
            here,
            "must be an object such as {\"source\": \"chain\"}",
        ));
    }
    let raw: RawCredentials = field_path::deserialize(value)
        .map_err(|e| err(field_path::join(here, e.path()), e.message()))?;
    let source = match raw.source.as_str() {
        "chain" => CredentialSource::Chain,
        "env" => CredentialSource::Env,
        "profile" => {
            let field = |f: &str| format!("{here}.{f}");
            let non_empty = |v: Option<String>, f: &str| match v {
                Some(s) if s.trim().is_empty() => Err(err(field(f), "must not be empty")),
                other => Ok(other),
            };
            return Ok(CredentialSource::Profile {
                name: non_empty(raw.profile, "profile")?,
                config_file: non_empty(raw.config_file, "config_file")?,
                credentials_file: non_empty(raw.credentials_file, "credentials_file")?,
            });
        }
        "web_identity" => CredentialSource::WebIdentity,
        "container" => CredentialSource::Container,
        "imds" => CredentialSource::Imds,
        other => {
            return Err(err(
                format!("{here}.source"),
                format!(
                    "'{}' is not a credentials source: use chain, env, profile, web_identity, \
                     container or imds",
                    crate::lambda::shown_name(other)
                ),
            ));
        }
    };
    for (name, set) in [
        ("profile", raw.profile.is_some()),
        ("config_file", raw.config_file.is_some()),
        ("credentials_file", raw.credentials_file.is_some()),
    ] {
        if set {
            return Err(err(
                format!("{here}.{name}"),
                format!("applies to source 'profile' only, not '{}'", source.name()),
            ));
        }
    }
    Ok(source)
}

fn parse_assume_role(value: &serde_json::Value, here: &str) -> Result<AssumeRole, ConfigError> {
    if !value.is_object() {
        return Err(err(
            here,
            "must be an object such as {\"role_arn\": \"arn:aws:iam::123456789012:role/x\"}",
        ));
    }
    let raw: RawAssumeRole = field_path::deserialize(value)
        .map_err(|e| err(field_path::join(here, e.path()), e.message()))?;
    if !is_role_arn(&raw.role_arn) {
        return Err(err(
            format!("{here}.role_arn"),
            format!(
                "'{}' is not an IAM role ARN such as arn:aws:iam::123456789012:role/name",
                crate::lambda::shown_name(&raw.role_arn)
            ),
        ));
    }
    let session_name = match raw.session_name {
        None => DEFAULT_SESSION_NAME.to_owned(),
        Some(s) => {
            let ok = (2..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
            if !ok {
                return Err(err(
                    format!("{here}.session_name"),
                    "must be 2 to 64 characters of letters, digits and _+=,.@-",
                ));
            }
            s
        }
    };
    if let Some(id) = &raw.external_id {
        let ok = (2..=1224).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b));
        if !ok {
            return Err(err(
                format!("{here}.external_id"),
                "must be 2 to 1224 characters of letters, digits and _+=,.@:/-",
            ));
        }
    }
    let duration = match &raw.duration {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => {
            let field = format!("{here}.duration");
            let d = self::duration(v).map_err(|m| err(&field, m))?;
            if !(MIN_ROLE_DURATION..=MAX_ROLE_DURATION).contains(&d) || d.subsec_nanos() != 0 {
                return Err(err(
                    field,
                    format!("{d:?} is not a whole number of seconds between 900s and 43200s"),
                ));
            }
            Some(d)
        }
    };
    Ok(AssumeRole {
        role_arn: raw.role_arn,
        external_id: raw.external_id,
        session_name,
        duration,
    })
}

/// `arn:<partition>:iam::<12 digits>:role/<path/name>`.
fn is_role_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource
            .strip_prefix("role/")
            .is_some_and(|name| !name.is_empty() && !name.chars().any(char::is_control))
}

/// A duration string (`"900s"`, `"500ms"`) or an integer number of seconds.
fn duration(value: &serde_json::Value) -> Result<Duration, String> {
    match value {
        serde_json::Value::String(s) => parse_duration(s),
        serde_json::Value::Number(n) => n.as_u64().map(Duration::from_secs).ok_or_else(|| {
            format!("{n} is not a whole, non-negative number of seconds; write e.g. 1 or \"500ms\"")
        }),
        other => Err(format!(
            "{other} is not a duration: write a string such as \"1s\" or \"500ms\", or an \
             integer number of seconds"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: serde_json::Value) -> Result<CredentialsFrom, ConfigError> {
        parse_identity(
            RawIdentity {
                secret_ref: spec.get("secret_ref").and_then(|v| v.as_str()),
                credentials: spec.get("credentials"),
                assume_role: spec.get("assume_role"),
                credentials_wait: spec.get("credentials_wait"),
            },
            "spec.",
            |_| SecretIndex::for_test(0),
        )
    }

    fn provider(spec: serde_json::Value) -> ProviderSpec {
        match parse(spec).unwrap() {
            CredentialsFrom::Provider(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chain_is_the_default_and_each_source_parses() {
        let p = provider(serde_json::json!({}));
        assert_eq!(p.source, CredentialSource::Chain);
        assert_eq!(p.wait, DEFAULT_CREDENTIALS_WAIT);
        assert!(p.assume_role.is_none());
        for name in [
            "chain",
            "env",
            "web_identity",
            "container",
            "imds",
            "profile",
        ] {
            let p = provider(serde_json::json!({"credentials": {"source": name}}));
            assert_eq!(p.source.name(), name);
        }
        let p = provider(serde_json::json!({
            "credentials": {"source": "profile", "profile": "prod", "config_file": "/c"},
            "assume_role": {"role_arn": "arn:aws:iam::123456789012:role/x", "external_id": "ext-1",
                            "duration": "900s"},
            "credentials_wait": "250ms"
        }));
        assert_eq!(
            p.source,
            CredentialSource::Profile {
                name: Some("prod".into()),
                config_file: Some("/c".into()),
                credentials_file: None
            }
        );
        let role = p.assume_role.unwrap();
        assert_eq!(role.session_name, DEFAULT_SESSION_NAME);
        assert_eq!(role.duration, Some(Duration::from_secs(900)));
        assert_eq!(role.external_id.as_deref(), Some("ext-1"));
        assert_eq!(p.wait, Duration::from_millis(250));
        assert!(matches!(
            parse(serde_json::json!({"secret_ref": "s"})).unwrap(),
            CredentialsFrom::Secret(_)
        ));
    }

    #[test]
    fn every_rejection_names_its_field() {
        let arn = "arn:aws:iam::123456789012:role/x";
        let cases = [
            (
                serde_json::json!({"secret_ref": "s", "credentials": {"source": "env"}}),
                "spec.credentials",
            ),
            (
                serde_json::json!({"secret_ref": "s", "assume_role": {"role_arn": arn}}),
                "spec.assume_role",
            ),
            (
                serde_json::json!({"secret_ref": "s", "credentials_wait": "1s"}),
                "spec.credentials_wait",
            ),
            (serde_json::json!({"secret_ref": " "}), "spec.secret_ref"),
            (
                serde_json::json!({"credentials": {"source": "sso"}}),
                "spec.credentials.source",
            ),
            (
                serde_json::json!({"credentials": {"source": "env", "colour": 1}}),
                "spec.credentials.colour",
            ),
            (serde_json::json!({"credentials": {}}), "spec.credentials"),
            (
                serde_json::json!({"credentials": "env"}),
                "spec.credentials",
            ),
            (
                serde_json::json!({"credentials": {"source": "env", "profile": "p"}}),
                "spec.credentials.profile",
            ),
            (
                serde_json::json!({"credentials": {"source": "profile", "config_file": ""}}),
                "spec.credentials.config_file",
            ),
            (
                serde_json::json!({"assume_role": {"role_arn": "arn:aws:iam::1:role/x"}}),
                "spec.assume_role.role_arn",
            ),
            (
                serde_json::json!({"assume_role": {"role_arn": "arn:aws:iam::123456789012:user/x"}}),
                "spec.assume_role.role_arn",
            ),
            (serde_json::json!({"assume_role": {}}), "spec.assume_role"),
            (
                serde_json::json!({"assume_role": {"role_arn": arn, "session_name": "a b"}}),
                "spec.assume_role.session_name",
            ),
            (
                serde_json::json!({"assume_role": {"role_arn": arn, "external_id": "x"}}),
                "spec.assume_role.external_id",
            ),
            (
                serde_json::json!({"assume_role": {"role_arn": arn, "duration": "60s"}}),
                "spec.assume_role.duration",
            ),
            (
                serde_json::json!({"assume_role": {"role_arn": arn, "duration": "13h"}}),
                "spec.assume_role.duration",
            ),
            (
                serde_json::json!({"assume_role": {"role_arn": arn, "ttl": 1}}),
                "spec.assume_role.ttl",
            ),
            (
                serde_json::json!({"credentials_wait": "forever"}),
                "spec.credentials_wait",
            ),
            (
                serde_json::json!({"credentials_wait": "31s"}),
                "spec.credentials_wait",
            ),
        ];
        for (spec, field) in cases {
            let e = parse(spec.clone()).unwrap_err();
            assert_eq!(e.field, field, "{spec} → {e}");
        }
    }
}
