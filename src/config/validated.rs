//! Validated configuration. Every rejection names the field (as a path), the value and why.

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::PathTemplate;
use super::credentials::{CredentialsFrom, RawIdentity, parse_identity};
use super::discovery::{DiscoverySettings, parse_discovery};
use super::duplicate_keys::first_duplicate_key;
use super::error::{ConfigError, err};
use super::raw::{RawEndpoint, RawFilterConfig, RawFunction, RawRouteTarget, RawUpstream};
use super::unresolved::UnresolvedNames;
use crate::field_path;
use crate::lambda::{
    FunctionName, InvocationType, InvokeMode, InvokeOptions, InvokeOverrides, LogType, Qualifier,
    Region, RequestFormat, ResponseFormat, encode_client_context, invoke_path, stream_path,
};

/// The whole filter config: upstreams by name, and the distinct secrets they reference.
#[derive(Debug)]
pub struct FilterConfig {
    upstreams: HashMap<String, Arc<Upstream>>,
    secrets: Vec<SecretRef>,
    /// Names routes asked for that this config does not define (logged once each).
    unresolved: UnresolvedNames,
}

/// An AWS Lambda upstream (Gloo's `type: aws`).
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    pub region: Region,
    /// Which credentials it signs with: one of [`FilterConfig::secrets`], or a provider.
    pub credentials: CredentialsFrom,
    pub endpoint: Endpoint,
    /// Invocation defaults; a route's overrides apply on top.
    pub options: InvokeOptions,
    /// Functions named in the config; they win over discovered ones with the same name.
    pub functions: HashMap<String, Arc<Function>>,
    /// Present when `spec.discovery.enabled`.
    pub discovery: Option<DiscoverySettings>,
    /// Mapped Lambda API errors also carry AWS's redacted message (`aws_message`).
    pub expose_aws_error_message: bool,
    /// How finely the per-function stats are labelled.
    pub function_stats: FunctionStats,
    /// Derive and send an `X-Amzn-Trace-Id` (see `filter::trace`).
    pub trace_propagation: bool,
    /// Set the `envoy_lambda` access-log metadata keys (`log_result` aside).
    pub access_log_metadata: bool,
}

/// How the per-function stats (`fn_*`) of an upstream are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionStats {
    /// `function` and `qualifier` labels name the function (one label set per function).
    #[default]
    PerFunction,
    /// `function` and `qualifier` are `*`: one label set per upstream (accounts with
    /// thousands of functions).
    PerUpstream,
    /// No per-function stats (the unlabelled counters remain).
    Off,
}

/// Where the Lambda API is: decides the `:authority` that is sent and signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: String,
    pub authority: String,
}

/// A function a route can invoke, with its Invoke paths computed once at load.
#[derive(Debug)]
pub struct Function {
    pub name: String,
    pub function_name: FunctionName,
    pub qualifier: Option<Qualifier>,
    pub invoke_path: String,
    /// The `InvokeWithResponseStream` path.
    pub stream_path: String,
    /// The function's own `invoke_mode`, between the upstream's and a route's.
    pub invoke_mode: Option<InvokeMode>,
}

/// The position of an upstream's secret in [`FilterConfig::secrets`] (and of the matching
/// subscription handle and credential cache, which follow the same order). Only the config
/// that defines the secret hands one out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretIndex(usize);

impl SecretIndex {
    pub fn get(self) -> usize {
        self.0
    }

    #[cfg(test)]
    pub(crate) fn for_test(index: usize) -> Self {
        Self(index)
    }
}

/// An Envoy generic secret holding the seed's credentials YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub name: String,
    /// `ConfigSource` JSON for SDS; `None` for a static secret in the bootstrap.
    pub config_source: Option<String>,
}

/// Per-route config: the function this route invokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    pub upstream: String,
    pub function: FunctionRef,
    pub overrides: InvokeOverrides,
}

/// How a route names its function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionRef {
    /// A function of the upstream's config, or a discovered one (`name`, `name:alias`).
    Named(String),
    /// Taken from the request path; resolved like `Named` at request time.
    FromPath(PathTemplate),
}

impl FilterConfig {
    /// Parses and validates the filter config bytes Envoy hands over.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let doc = parse_object(bytes, "filter_config")?;
        let (raw_upstreams, prefix) = if doc.contains_key("upstreams") {
            let raw: RawFilterConfig = deserialize(serde_json::Value::Object(doc))?;
            (raw.upstreams, "upstreams")
        } else {
            // The seed's single upstream document, as written.
            let raw: RawUpstream = deserialize(serde_json::Value::Object(doc))?;
            (vec![raw], "")
        };
        if raw_upstreams.is_empty() {
            return Err(err("upstreams", "must list at least one upstream"));
        }
        let mut config = FilterConfig {
            upstreams: HashMap::new(),
            secrets: Vec::new(),
            unresolved: UnresolvedNames::default(),
        };
        let single = prefix.is_empty();
        for (i, raw) in raw_upstreams.into_iter().enumerate() {
            let at = if single {
                String::new()
            } else {
                format!("upstreams[{i}].")
            };
            let upstream = config.validate_upstream(raw, &at)?;
            if config.upstreams.contains_key(&upstream.name) {
                return Err(err(
                    format!("{at}name"),
                    format!("upstream '{}' is defined twice", upstream.name),
                ));
            }
            config
                .upstreams
                .insert(upstream.name.clone(), Arc::new(upstream));
        }
        Ok(config)
    }

    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.get(name)
    }

    pub fn upstreams(&self) -> impl Iterator<Item = &Arc<Upstream>> {
        self.upstreams.values()
    }

    pub fn secrets(&self) -> &[SecretRef] {
        &self.secrets
    }

    /// What makes two upstreams' credentials the same (for sharing a discovery): the secret's
    /// name and source, or the provider, the role and the region.
    pub fn credentials_key(&self, upstream: &Upstream) -> String {
        match &upstream.credentials {
            CredentialsFrom::Secret(index) => {
                let s = self.secret(*index);
                format!("secret {:?} {:?}", s.name, s.config_source)
            }
            CredentialsFrom::Provider(p) => format!(
                "provider {:?} {:?} {}",
                p.source,
                p.assume_role,
                upstream.region.as_str()
            ),
        }
    }

    /// The secret an upstream of this config signs with.
    pub fn secret(&self, index: SecretIndex) -> &SecretRef {
        &self.secrets[index.0]
    }

    pub fn unresolved(&self) -> &UnresolvedNames {
        &self.unresolved
    }

    fn validate_upstream(&mut self, raw: RawUpstream, at: &str) -> Result<Upstream, ConfigError> {
        check_name(&raw.name, &format!("{at}name"))?;
        if let Some(kind) = raw.kind.as_deref() {
            if kind != "aws" {
                return Err(err(
                    format!("{at}type"),
                    format!("'{kind}' is not supported: only 'aws' upstreams are"),
                ));
            }
        }
        let spec = raw.spec;
        if spec.region.is_empty() {
            return Err(err(format!("{at}spec.region"), "must not be empty"));
        }
        let region = Region::parse(&spec.region)
            .map_err(|e| err(format!("{at}spec.region"), e.to_string()))?;
        let config_source = match spec.secret_source {
            None => None,
            Some(_) if spec.secret_ref.is_none() => {
                return Err(err(
                    format!("{at}spec.secret_source"),
                    "needs a secret_ref: it says where Envoy gets that secret",
                ));
            }
            Some(v @ serde_json::Value::Object(_)) => Some(v.to_string()),
            Some(_) => {
                return Err(err(
                    format!("{at}spec.secret_source"),
                    "must be an Envoy ConfigSource object, e.g. {\"path_config_source\":{\"path\":\"/etc/envoy/sds.yaml\"}}",
                ));
            }
        };
        let credentials = parse_identity(
            RawIdentity {
                secret_ref: spec.secret_ref.as_deref(),
                credentials: spec.credentials.as_ref(),
                assume_role: spec.assume_role.as_ref(),
                credentials_wait: spec.credentials_wait.as_ref(),
            },
            &format!("{at}spec."),
            |name| {
                self.secret_index(SecretRef {
                    name: name.to_owned(),
                    config_source,
                })
            },
        )?;
        let endpoint = validate_endpoint(spec.endpoint, &region, at)?;
        let options = invoke_overrides(
            spec.invocation_type,
            spec.log_type,
            spec.client_context,
            spec.request_format,
            spec.response_format,
            spec.invoke_mode,
            &format!("{at}spec."),
        )?
        .apply_to(&InvokeOptions::default());
        let discovery = match &spec.discovery {
            None => None,
            Some(v) => Some(parse_discovery(v, &format!("{at}spec."))?).filter(|d| d.enabled),
        };

        let mut functions = HashMap::new();
        for (j, f) in raw.functions.into_iter().enumerate() {
            let f_at = format!("{at}functions[{j}]");
            let function = validate_function(f, &region, &f_at)?;
            if function.invoke_mode == Some(InvokeMode::ResponseStream)
                && options.invocation_type == InvocationType::Async
            {
                return Err(err(format!("{f_at}.spec.invoke_mode"), ASYNC_CANNOT_STREAM));
            }
            if functions.contains_key(&function.name) {
                return Err(err(
                    format!("{f_at}.name"),
                    format!("function '{}' is defined twice", function.name),
                ));
            }
            functions.insert(function.name.clone(), Arc::new(function));
        }
        Ok(Upstream {
            name: raw.name,
            region,
            credentials,
            endpoint,
            options,
            functions,
            discovery,
            expose_aws_error_message: spec.expose_aws_error_message,
            function_stats: spec.function_stats.unwrap_or_default(),
            trace_propagation: spec.trace_propagation,
            access_log_metadata: spec.access_log_metadata.unwrap_or(true),
        })
    }

    fn secret_index(&mut self, secret: SecretRef) -> SecretIndex {
        if let Some(i) = self.secrets.iter().position(|s| *s == secret) {
            return SecretIndex(i);
        }
        self.secrets.push(secret);
        SecretIndex(self.secrets.len() - 1)
    }
}

fn validate_endpoint(
    raw: Option<RawEndpoint>,
    region: &Region,
    at: &str,
) -> Result<Endpoint, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Endpoint {
            scheme: "https".into(),
            authority: format!("lambda.{region}.{}", region.partition().dns_suffix),
        });
    };
    let scheme = raw.scheme.unwrap_or_else(|| "https".into());
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        other => {
            return Err(err(
                format!("{at}spec.endpoint.scheme"),
                format!("'{other}' is not http or https"),
            ));
        }
    };
    let host_ok = !raw.host.is_empty()
        && raw
            .host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    if !host_ok {
        return Err(err(
            format!("{at}spec.endpoint.host"),
            format!("'{}' is not a host name or IP address", raw.host),
        ));
    }
    let authority = match raw.port {
        Some(0) => {
            return Err(err(
                format!("{at}spec.endpoint.port"),
                "must be between 1 and 65535",
            ));
        }
        Some(p) if p != default_port => format!("{}:{p}", raw.host),
        _ => raw.host,
    };
    Ok(Endpoint { scheme, authority })
}

fn validate_function(raw: RawFunction, region: &Region, at: &str) -> Result<Function, ConfigError> {
    check_name(&raw.name, &format!("{at}.name"))?;
    let name_field = format!("{at}.spec.function_name");
    let function_name = FunctionName::parse(&raw.spec.function_name)
        .map_err(|e| err(&name_field, e.to_string()))?;
    if let Some(arn_region) = function_name.arn_region() {
        if arn_region != region {
            return Err(err(
                name_field,
                format!("the ARN is in region '{arn_region}' but the upstream is in '{region}'"),
            ));
        }
    }
    let qualifier = if raw.spec.qualifier.is_empty() {
        None // Lambda then invokes $LATEST (or the qualifier written into the name).
    } else {
        let q = Qualifier::parse(&raw.spec.qualifier)
            .map_err(|e| err(format!("{at}.spec.qualifier"), e.to_string()))?;
        if let Some(embedded) = function_name.embedded_qualifier() {
            if *embedded != q {
                return Err(err(
                    format!("{at}.spec.qualifier"),
                    format!(
                        "'{}' conflicts with ':{}' already written in function_name",
                        q.as_str(),
                        embedded.as_str()
                    ),
                ));
            }
        }
        Some(q)
    };
    let invoke_path = invoke_path(&function_name, qualifier.as_ref());
    let stream_path = stream_path(&function_name, qualifier.as_ref());
    Ok(Function {
        name: raw.name,
        function_name,
        qualifier,
        invoke_path,
        stream_path,
        invoke_mode: raw.spec.invoke_mode,
    })
}

impl Function {
    /// A function found by discovery: `name`, `name:alias` or `name:version`.
    pub fn discovered(name: &str) -> Result<Self, String> {
        let function_name = FunctionName::parse(name).map_err(|e| e.to_string())?;
        Ok(Self {
            name: name.to_owned(),
            invoke_path: invoke_path(&function_name, None),
            stream_path: stream_path(&function_name, None),
            function_name,
            qualifier: None,
            invoke_mode: None,
        })
    }
}

impl RouteTarget {
    /// Parses a per-route config: `{"upstream": "...", "function": "..."}`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let doc = parse_object(bytes, "per-route filter_config")?;
        let raw: RawRouteTarget = deserialize(serde_json::Value::Object(doc))?;
        check_name(&raw.upstream, "upstream")?;
        let function = match (raw.function, raw.path_template) {
            (Some(f), None) => {
                check_name(&f, "function")?;
                FunctionRef::Named(f)
            }
            (None, Some(t)) => {
                FunctionRef::FromPath(PathTemplate::parse(&t).map_err(|m| err("path_template", m))?)
            }
            (Some(_), Some(_)) => {
                return Err(err(
                    "path_template",
                    "give either function or path_template, not both",
                ));
            }
            (None, None) => {
                return Err(err(
                    "function",
                    "missing: name a function, or give a path_template such as /lambda/{function}",
                ));
            }
        };
        let overrides = invoke_overrides(
            raw.invocation_type,
            raw.log_type,
            raw.client_context,
            raw.request_format,
            raw.response_format,
            raw.invoke_mode,
            "",
        )?;
        Ok(Self {
            upstream: raw.upstream,
            function,
            overrides,
        })
    }
}

const ASYNC_CANNOT_STREAM: &str = "response_stream cannot be combined with invocation_type async: \
     Lambda streams only synchronous (and dry-run) invocations";

fn invoke_overrides(
    invocation_type: Option<InvocationType>,
    log_type: Option<LogType>,
    client_context: Option<serde_json::Value>,
    request_format: Option<RequestFormat>,
    response_format: Option<ResponseFormat>,
    invoke_mode: Option<InvokeMode>,
    at: &str,
) -> Result<InvokeOverrides, ConfigError> {
    let client_context = client_context
        .map(|v| encode_client_context(&v))
        .transpose()
        .map_err(|m| err(format!("{at}client_context"), m))?;
    if invocation_type == Some(InvocationType::Async)
        && response_format == Some(ResponseFormat::Unwrap)
    {
        return Err(err(
            format!("{at}response_format"),
            "unwrap needs the function's result, which async invocations do not return",
        ));
    }
    if invocation_type == Some(InvocationType::Async)
        && invoke_mode == Some(InvokeMode::ResponseStream)
    {
        return Err(err(format!("{at}invoke_mode"), ASYNC_CANNOT_STREAM));
    }
    Ok(InvokeOverrides {
        invocation_type,
        log_type,
        client_context,
        request_format,
        response_format,
        invoke_mode,
    })
}

/// Names that routes and replies carry: not blank, no control characters (they would end up
/// in log lines and JSON replies).
fn check_name(name: &str, field: &str) -> Result<(), ConfigError> {
    if name.trim().is_empty() {
        return Err(err(field, "must not be empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(err(
            field,
            format!(
                "'{}' contains a control character",
                crate::lambda::shown_name(name)
            ),
        ));
    }
    Ok(())
}

fn parse_object(
    bytes: &[u8],
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(err(
            what,
            "is empty: expected a JSON object (google.protobuf.StringValue or Struct)",
        ));
    }
    if let Some(path) = first_duplicate_key(bytes) {
        return Err(err(
            path,
            format!("duplicate key in the {what} JSON: only one of its values could take effect"),
        ));
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(err(what, "must be a JSON object")),
        Err(e) => Err(err(what, format!("is not valid JSON: {e}"))),
    }
}

/// Deserializes with the path of the failing field in the error (e.g. `upstreams[1].spec`).
fn deserialize<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ConfigError> {
    field_path::deserialize(value).map_err(|e| err(e.field(), e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{
        "name": "my-lambda-upstream",
        "spec": {"region": "us-east-1", "secret_ref": "my-aws-secrets"},
        "type": "aws",
        "functions": [
            {"name": "func1", "spec": {"function_name": "func1"}},
            {"name": "func2", "spec": {"function_name": "func2", "qualifier": "v1"}}
        ]
    }"#;

    fn reject(json: &str) -> ConfigError {
        FilterConfig::from_json(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn accepts_the_seed_document_as_written() {
        let c = FilterConfig::from_json(SEED.as_bytes()).unwrap();
        let u = c.upstream("my-lambda-upstream").unwrap();
        assert_eq!(u.region.as_str(), "us-east-1");
        assert_eq!(u.endpoint.authority, "lambda.us-east-1.amazonaws.com");
        let CredentialsFrom::Secret(secret) = u.credentials else {
            panic!("{:?}", u.credentials)
        };
        assert_eq!(c.secret(secret).name, "my-aws-secrets");
        assert_eq!(c.secret(secret).config_source, None);
        assert_eq!(
            u.functions["func1"].invoke_path,
            "/2015-03-31/functions/func1/invocations"
        );
        assert_eq!(
            u.functions["func2"].invoke_path,
            "/2015-03-31/functions/func2/invocations?Qualifier=v1"
        );
    }

    #[test]
    fn several_upstreams_share_one_secret_subscription() {
        let json = format!(
            r#"{{"upstreams":[{SEED}, {{"name":"b","spec":{{"region":"eu-west-1","secret_ref":"my-aws-secrets"}}}}]}}"#
        );
        let c = FilterConfig::from_json(json.as_bytes()).unwrap();
        assert_eq!(c.upstreams().count(), 2);
        assert_eq!(c.secrets().len(), 1);
        assert_eq!(
            c.upstream("b").unwrap().endpoint.authority,
            "lambda.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn endpoint_override_and_sds_source() {
        let c = FilterConfig::from_json(
            br#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s",
                 "endpoint":{"scheme":"http","host":"127.0.0.1","port":5000},
                 "secret_source":{"path_config_source":{"path":"/x/s.yaml"}}}}"#,
        )
        .unwrap();
        let u = c.upstream("u").unwrap();
        assert_eq!(u.endpoint.authority, "127.0.0.1:5000");
        assert_eq!(
            c.secrets()[0].config_source.as_deref(),
            Some(r#"{"path_config_source":{"path":"/x/s.yaml"}}"#)
        );
        let c = FilterConfig::from_json(
            br#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s",
                 "endpoint":{"host":"vpce-1.lambda.us-east-1.vpce.amazonaws.com","port":443}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.upstream("u").unwrap().endpoint.authority,
            "vpce-1.lambda.us-east-1.vpce.amazonaws.com"
        );
    }

    #[test]
    fn every_rejection_names_its_field() {
        let cases: &[(&str, &str)] = &[
            (r#"{"name":"u","spec":{"secret_ref":"s"}}"#, "spec.region"),
            (
                r#"{"name":"u","spec":{"region":"","secret_ref":"s"}}"#,
                "spec.region",
            ),
            (
                r#"{"name":"u","spec":{"region":"moon-1","secret_ref":"s"}}"#,
                "spec.region",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_source":{"path_config_source":{"path":"/s"}}}}"#,
                "spec.secret_source",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s","credentials":{"source":"env"}}}"#,
                "spec.credentials",
            ),
            (
                r#"{"upstreams":[{"name":"u","spec":{"region":"us-east-1","credentials":{"source":"nope"}}}]}"#,
                "upstreams[0].spec.credentials.source",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":" "}}"#,
                "spec.secret_ref",
            ),
            (
                r#"{"name":"u","type":"gcp","spec":{"region":"us-east-1","secret_ref":"s"}}"#,
                "type",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s","colour":1}}"#,
                "spec.colour",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s"},
                 "functions":[{"name":"f","spec":{"function_name":""}}]}"#,
                "functions[0].spec.function_name",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s"},
                 "functions":[{"name":"f","spec":{"function_name":"f","qualifier":"a/b"}}]}"#,
                "functions[0].spec.qualifier",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s"},
                 "functions":[{"name":"f","spec":{"function_name":"f:live","qualifier":"v1"}}]}"#,
                "functions[0].spec.qualifier",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s"},
                 "functions":[{"name":"f","spec":{"function_name":"arn:aws:lambda:eu-west-1:123456789012:function:f"}}]}"#,
                "functions[0].spec.function_name",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s"},
                 "functions":[{"name":"f","spec":{"function_name":"f"}},{"name":"f","spec":{"function_name":"g"}}]}"#,
                "functions[1].name",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s","endpoint":{"scheme":"ftp","host":"h"}}}"#,
                "spec.endpoint.scheme",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s","endpoint":{"host":"a b"}}}"#,
                "spec.endpoint.host",
            ),
            (
                r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s","secret_source":"x"}}"#,
                "spec.secret_source",
            ),
            (r#"{"upstreams":[]}"#, "upstreams"),
            (
                r#"{"upstreams":[{"name":"u","spec":{"region":"us-east-1","secret_ref":"s"}},
                              {"name":"u","spec":{"region":"us-east-1","secret_ref":"s"}}]}"#,
                "upstreams[1].name",
            ),
            (
                r#"{"upstreams":[{"name":"u","spec":{"secret_ref":"s"}}]}"#,
                "upstreams[0].spec.region",
            ),
            (r#"{"upstreams":[],"extra":1}"#, "extra"),
            ("", "filter_config"),
            ("[1]", "filter_config"),
            ("{not json", "filter_config"),
        ];
        for (json, field) in cases {
            let e = reject(json);
            assert_eq!(e.field, *field, "{json} → {e}");
            assert!(e.to_string().starts_with(field), "{e}");
        }
        // serde's own text names the unknown field too.
        assert!(
            reject(r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s","colour":1}}"#)
                .message
                .contains("colour")
        );
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let e = reject(
            r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s","region":"eu-west-1"}}"#,
        );
        assert_eq!(e.field, "spec.region", "{e}");
        assert!(e.message.contains("duplicate key"), "{e}");
        let e = reject(
            r#"{"upstreams":[{"name":"u","spec":{"region":"us-east-1","secret_ref":"s"},
                 "functions":[{"name":"f","spec":{"function_name":"f","function_name":"g"}}]}]}"#,
        );
        assert_eq!(
            e.field, "upstreams[0].functions[0].spec.function_name",
            "{e}"
        );
        let e = reject(r#"{"name":"a","name":"b","spec":{"region":"us-east-1","secret_ref":"s"}}"#);
        assert_eq!(e.field, "name");
        let e = RouteTarget::from_json(br#"{"upstream":"u","function":"f","upstream":"v"}"#)
            .unwrap_err();
        assert_eq!(e.field, "upstream");
        assert!(e.to_string().contains("per-route filter_config"), "{e}");
        let e = RouteTarget::from_json(
            br#"{"upstream":"u","function":"f","client_context":{"a":1,"a":2}}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "client_context.a");
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        let e = reject(
            r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s"},
                 "functions":[{"name":"f\n","spec":{"function_name":"f"}}]}"#,
        );
        assert_eq!(e.field, "functions[0].name");
        assert!(e.message.contains(r"'f\n'"), "{e}");
        let e = reject(r#"{"name":"u\u001b","spec":{"region":"us-east-1","secret_ref":"s"}}"#);
        assert_eq!(e.field, "name");
        for (bad, field) in [
            (&br#"{"upstream":"u\t","function":"f"}"#[..], "upstream"),
            (br#"{"upstream":"u","function":"f\r"}"#, "function"),
        ] {
            assert_eq!(RouteTarget::from_json(bad).unwrap_err().field, field);
        }
    }

    #[test]
    fn the_default_endpoint_uses_the_partition_dns_suffix() {
        let host = |region: &str| {
            let json = format!(r#"{{"name":"u","spec":{{"region":"{region}","secret_ref":"s"}}}}"#);
            let c = FilterConfig::from_json(json.as_bytes()).unwrap();
            c.upstream("u").unwrap().endpoint.authority.clone()
        };
        assert_eq!(host("us-east-1"), "lambda.us-east-1.amazonaws.com");
        assert_eq!(host("cn-north-1"), "lambda.cn-north-1.amazonaws.com.cn");
        assert_eq!(host("us-gov-west-1"), "lambda.us-gov-west-1.amazonaws.com");
        assert_eq!(host("eusc-de-east-1"), "lambda.eusc-de-east-1.amazonaws.eu");
    }

    #[test]
    fn alb_multi_value_is_a_request_format_per_upstream_and_per_route() {
        let c = FilterConfig::from_json(
            br#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s",
                 "request_format":"alb_multi_value","response_format":"unwrap"}}"#,
        )
        .unwrap();
        assert_eq!(
            c.upstream("u").unwrap().options.request_format,
            RequestFormat::AlbMultiValue
        );
        let t = RouteTarget::from_json(
            br#"{"upstream":"u","function":"f","request_format":"alb_multi_value"}"#,
        )
        .unwrap();
        assert_eq!(
            t.overrides.request_format,
            Some(RequestFormat::AlbMultiValue)
        );
        let e = RouteTarget::from_json(
            br#"{"upstream":"u","function":"f","request_format":"alb_multivalue"}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "request_format");
        assert!(e.message.contains("alb_multi_value"), "{e}");
    }

    #[test]
    fn invoke_mode_per_upstream_function_and_route() {
        let c = FilterConfig::from_json(
            br#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s","invoke_mode":"response_stream"},
                 "functions":[{"name":"f","spec":{"function_name":"f","qualifier":"live","invoke_mode":"buffered"}}]}"#,
        )
        .unwrap();
        let u = c.upstream("u").unwrap();
        assert_eq!(u.options.invoke_mode, InvokeMode::ResponseStream);
        assert_eq!(u.functions["f"].invoke_mode, Some(InvokeMode::Buffered));
        assert_eq!(
            u.functions["f"].stream_path,
            "/2021-11-15/functions/f/response-streaming-invocations?Qualifier=live"
        );
        let t = RouteTarget::from_json(
            br#"{"upstream":"u","function":"f","invoke_mode":"response_stream"}"#,
        )
        .unwrap();
        assert_eq!(t.overrides.invoke_mode, Some(InvokeMode::ResponseStream));
        let e =
            RouteTarget::from_json(br#"{"upstream":"u","function":"f","invoke_mode":"stream"}"#)
                .unwrap_err();
        assert_eq!(e.field, "invoke_mode");
    }

    #[test]
    fn async_cannot_stream() {
        let e = reject(
            r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s",
                 "invocation_type":"async","invoke_mode":"response_stream"}}"#,
        );
        assert_eq!(e.field, "spec.invoke_mode");
        assert!(e.message.contains("async"), "{e}");
        let e = reject(
            r#"{"name":"u","spec":{"region":"us-east-1","secret_ref":"s","invocation_type":"async"},
                 "functions":[{"name":"f","spec":{"function_name":"f","invoke_mode":"response_stream"}}]}"#,
        );
        assert_eq!(e.field, "functions[0].spec.invoke_mode");
        let e = RouteTarget::from_json(
            br#"{"upstream":"u","function":"f","invocation_type":"async","invoke_mode":"response_stream"}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "invoke_mode");
        // Dry runs stream (Lambda accepts DryRun on InvokeWithResponseStream).
        RouteTarget::from_json(
            br#"{"upstream":"u","function":"f","invocation_type":"dry_run","invoke_mode":"response_stream"}"#,
        )
        .unwrap();
    }

    #[test]
    fn route_target() {
        let t = RouteTarget::from_json(br#"{"upstream":"u","function":"f"}"#).unwrap();
        assert_eq!(t.upstream, "u");
        assert_eq!(t.function, FunctionRef::Named("f".into()));
        let t =
            RouteTarget::from_json(br#"{"upstream":"u","path_template":"/l/{function}"}"#).unwrap();
        assert!(matches!(t.function, FunctionRef::FromPath(_)));
        for (bad, field) in [
            (
                &br#"{"upstream":"u","path_template":"/l/x"}"#[..],
                "path_template",
            ),
            (
                br#"{"upstream":"u","function":"f","path_template":"/l/{function}"}"#,
                "path_template",
            ),
            (br#"{"upstream":"u","function":""}"#, "function"),
        ] {
            assert_eq!(RouteTarget::from_json(bad).unwrap_err().field, field);
        }
        assert_eq!(
            RouteTarget::from_json(br#"{"upstream":"u"}"#)
                .unwrap_err()
                .field,
            "function"
        );
        assert_eq!(
            RouteTarget::from_json(br#"{"upstream":"","function":"f"}"#)
                .unwrap_err()
                .field,
            "upstream"
        );
        assert_eq!(
            RouteTarget::from_json(br#"{"upstream":"u","function":"f","x":1}"#)
                .unwrap_err()
                .field,
            "x"
        );
    }
}
