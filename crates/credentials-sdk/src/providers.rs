//! One fetch through the AWS SDK for Rust's providers (`aws-config`): the default chain, one
//! named link of it, and `sts:AssumeRole` on top.
//!
//! The providers are built afresh for every fetch and called once: no SDK identity cache (the
//! module keeps its own schedule), no provider-internal memory between fetches (the IMDS
//! provider's "static stability" would otherwise hand back a previous key with an extended
//! expiry when IMDS fails), and files (profiles, web identity tokens) are re-read each time,
//! as Kubernetes rotates the token file. One HTTP client (rustls over ring) is shared by all.

use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_runtime::env_config::file::{
    EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::region::Region;
use envoy_lambda_credentials_wire::{CredentialSource, FetchAnswer, FetchRequest};
use zeroize::Zeroizing;

/// A fetch that has not finished in this time counts as a timeout (the SDK's own timeouts
/// are shorter; this bounds a chain that tries several links).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IMDS_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The one HTTP client of every provider on the library's thread (TLS: rustls with ring).
pub fn http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Fetches once, within [`FETCH_TIMEOUT`]. Must run inside a tokio runtime with timers.
pub async fn fetch(request: &FetchRequest, http: SharedHttpClient) -> FetchAnswer {
    match tokio::time::timeout(FETCH_TIMEOUT, fetch_once(request, http)).await {
        Ok(Ok(c)) => answer(&c, request.assume_role.is_some()),
        Ok(Err(e)) => failure(&e),
        Err(_) => FetchAnswer::Failed {
            reason: "timeout".into(),
            message: format!("no credentials within {FETCH_TIMEOUT:?}"),
        },
    }
}

async fn fetch_once(
    request: &FetchRequest,
    http: SharedHttpClient,
) -> Result<Credentials, CredentialsError> {
    let region = Region::new(request.region.clone());
    let pc = ProviderConfig::default()
        .with_http_client(http.clone())
        .with_region(Some(region.clone()));
    let base = base(&request.source, &pc).await;
    match &request.assume_role {
        None => base.provide_credentials().await,
        Some(role) => {
            let sdk = aws_config::defaults(BehaviorVersion::latest())
                .region(region.clone())
                .http_client(http)
                .credentials_provider(base)
                .load()
                .await;
            let mut builder = AssumeRoleProvider::builder(role.role_arn.clone())
                .session_name(role.session_name.clone())
                .region(region)
                .configure(&sdk);
            if let Some(id) = &role.external_id {
                builder = builder.external_id(id.clone());
            }
            if let Some(d) = role.duration {
                builder = builder.session_length(d);
            }
            builder.build().await.provide_credentials().await
        }
    }
}

/// The SDK's IMDS client with a longer read timeout than its 1 s: fetches run in the
/// background, so a slow metadata service costs no request anything.
fn imds_client(pc: &ProviderConfig) -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .configure(pc)
        .connect_timeout(IMDS_CONNECT_TIMEOUT)
        .read_timeout(IMDS_READ_TIMEOUT)
        .build()
}

async fn base(source: &CredentialSource, pc: &ProviderConfig) -> SharedCredentialsProvider {
    match source {
        CredentialSource::Chain => SharedCredentialsProvider::new(
            DefaultCredentialsChain::builder()
                .configure(pc.clone())
                .imds_client(imds_client(pc))
                .build()
                .await,
        ),
        CredentialSource::Env => {
            SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new())
        }
        CredentialSource::Profile {
            name,
            config_file,
            credentials_file,
        } => {
            let mut files = ProfileFiles::builder()
                .include_default_config_file(config_file.is_none())
                .include_default_credentials_file(credentials_file.is_none());
            if let Some(path) = config_file {
                files = files.with_file(ProfileFileKind::Config, path);
            }
            if let Some(path) = credentials_file {
                files = files.with_file(ProfileFileKind::Credentials, path);
            }
            let mut builder = ProfileFileCredentialsProvider::builder()
                .configure(pc)
                .profile_files(files.build());
            if let Some(name) = name {
                builder = builder.profile_name(name);
            }
            SharedCredentialsProvider::new(builder.build())
        }
        CredentialSource::WebIdentity => SharedCredentialsProvider::new(
            WebIdentityTokenCredentialsProvider::builder()
                .configure(pc)
                .build(),
        ),
        CredentialSource::Container => {
            SharedCredentialsProvider::new(EcsCredentialsProvider::builder().configure(pc).build())
        }
        CredentialSource::Imds => SharedCredentialsProvider::new(
            ImdsCredentialsProvider::builder()
                .configure(pc)
                .imds_client(imds_client(pc))
                .build(),
        ),
    }
}

fn answer(c: &Credentials, assumed: bool) -> FetchAnswer {
    FetchAnswer::Credentials {
        access_key: c.access_key_id().to_owned(),
        secret_key: Zeroizing::new(c.secret_access_key().to_owned()),
        session_token: c.session_token().map(|t| Zeroizing::new(t.to_owned())),
        expires: c.expiry().map(|e: SystemTime| e),
        source: if assumed { "assume_role" } else { source_of(c) }.to_owned(),
    }
}

/// Which link of the chain answered, from the SDK's provider name.
fn source_of(c: &Credentials) -> &'static str {
    // `Credentials`' Debug shows the provider name and never the secret; the name itself is
    // not exposed otherwise.
    let debug = format!("{c:?}");
    let name = debug
        .split("provider_name: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("");
    match name {
        "EnvironmentVariable" => "env",
        "ProfileFile" | "CredentialProcess" => "profile",
        "WebIdentityToken" => "web_identity",
        "EcsContainer" => "container",
        "IMDSv2" => "imds",
        "AssumeRoleProvider" => "profile", // a role chain of a profile
        _ => "other",
    }
}

/// The SDK's error as a reason and its text (the module redacts and bounds it).
fn failure(e: &CredentialsError) -> FetchAnswer {
    let reason = match e {
        CredentialsError::CredentialsNotLoaded(_) => "not_loaded",
        CredentialsError::ProviderTimedOut(_) => "timeout",
        CredentialsError::InvalidConfiguration(_) => "invalid_configuration",
        CredentialsError::ProviderError(_) => "provider_error",
        _ => "other",
    };
    FetchAnswer::Failed {
        reason: reason.into(),
        message: error_chain(e),
    }
}

/// The error and its sources, one line (what `DisplayErrorContext` prints).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answering_link_names_the_source() {
        let c = Credentials::new(
            "ASIAEXAMPLE",
            "wJalrXUtnFEMI",
            Some("tok".into()),
            None,
            "IMDSv2",
        );
        assert_eq!(source_of(&c), "imds");
        let FetchAnswer::Credentials {
            access_key,
            secret_key,
            session_token,
            source,
            ..
        } = answer(&c, false)
        else {
            panic!("credentials answered as a failure");
        };
        assert_eq!(access_key, "ASIAEXAMPLE");
        assert_eq!(secret_key.as_str(), "wJalrXUtnFEMI");
        assert_eq!(session_token.as_deref().map(String::as_str), Some("tok"));
        assert_eq!(source, "imds");
        let FetchAnswer::Credentials { source, .. } = answer(&c, true) else {
            panic!("credentials answered as a failure");
        };
        assert_eq!(source, "assume_role");
        let env = Credentials::new("A", "B", None, None, "EnvironmentVariable");
        assert_eq!(source_of(&env), "env");
    }

    #[test]
    fn errors_keep_their_kind_and_causes_on_one_line() {
        let e = CredentialsError::not_loaded("no AWS_ACCESS_KEY_ID\nset");
        let FetchAnswer::Failed { reason, message } = failure(&e) else {
            panic!("a failure answered as credentials");
        };
        assert_eq!(reason, "not_loaded");
        assert!(message.contains("no AWS_ACCESS_KEY_ID set"), "{message}");
        let e = CredentialsError::provider_error("STS said no");
        let FetchAnswer::Failed { reason, .. } = failure(&e) else {
            panic!("a failure answered as credentials");
        };
        assert_eq!(reason, "provider_error");
    }
}
