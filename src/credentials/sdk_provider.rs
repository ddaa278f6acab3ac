//! [`Fetch`] over the AWS SDK for Rust's providers (`aws-config`): the default chain, one
//! named link of it, and `sts:AssumeRole` on top.
//!
//! The providers are built afresh for every fetch and called once: no SDK identity cache (we
//! keep our own schedule), no provider-internal memory between fetches (the IMDS provider's
//! "static stability" would otherwise hand back a previous key with an extended expiry when
//! IMDS fails), and files (profiles, web identity tokens) are re-read each time, as Kubernetes
//! rotates the token file. One HTTP client (rustls over ring) is shared by all of them.

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
use zeroize::Zeroizing;

use super::AwsCredentials;
use super::refresher::{Fetch, FetchError, FetchFuture, Fetched};
use super::stats::{FailureReason, SourceName};
use crate::config::{CredentialSource, ProviderSpec};
use crate::lambda::aws_error::redact;

/// A fetch that has not finished in this time counts as a timeout (the SDK's own timeouts
/// are shorter; this bounds a chain that tries several links).
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IMDS_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Error texts are cut to this length in logs.
const MAX_MESSAGE: usize = 400;

/// The one HTTP client of every provider in the process (TLS: rustls with ring).
pub fn http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

pub struct SdkFetcher {
    spec: ProviderSpec,
    region: Region,
    http: SharedHttpClient,
}

impl SdkFetcher {
    pub fn new(spec: ProviderSpec, region: &str, http: SharedHttpClient) -> Self {
        Self {
            spec,
            region: Region::new(region.to_owned()),
            http,
        }
    }

    fn provider_config(&self) -> ProviderConfig {
        ProviderConfig::default()
            .with_http_client(self.http.clone())
            .with_region(Some(self.region.clone()))
    }

    /// The SDK's IMDS client with a longer read timeout than its 1 s: we fetch in the
    /// background, so a slow metadata service costs no request anything.
    fn imds_client(pc: &ProviderConfig) -> aws_config::imds::Client {
        aws_config::imds::Client::builder()
            .configure(pc)
            .connect_timeout(IMDS_CONNECT_TIMEOUT)
            .read_timeout(IMDS_READ_TIMEOUT)
            .build()
    }

    async fn base(&self, pc: &ProviderConfig) -> SharedCredentialsProvider {
        match &self.spec.source {
            CredentialSource::Chain => SharedCredentialsProvider::new(
                DefaultCredentialsChain::builder()
                    .configure(pc.clone())
                    .imds_client(Self::imds_client(pc))
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
            CredentialSource::Container => SharedCredentialsProvider::new(
                EcsCredentialsProvider::builder().configure(pc).build(),
            ),
            CredentialSource::Imds => SharedCredentialsProvider::new(
                ImdsCredentialsProvider::builder()
                    .configure(pc)
                    .imds_client(Self::imds_client(pc))
                    .build(),
            ),
        }
    }

    async fn fetch_once(&self) -> Result<Fetched, FetchError> {
        let pc = self.provider_config();
        let base = self.base(&pc).await;
        let creds = match &self.spec.assume_role {
            None => base.provide_credentials().await,
            Some(role) => {
                let sdk = aws_config::defaults(BehaviorVersion::latest())
                    .region(self.region.clone())
                    .http_client(self.http.clone())
                    .credentials_provider(base)
                    .load()
                    .await;
                let mut builder = AssumeRoleProvider::builder(role.role_arn.clone())
                    .session_name(role.session_name.clone())
                    .region(self.region.clone())
                    .configure(&sdk);
                if let Some(id) = &role.external_id {
                    builder = builder.external_id(id.clone());
                }
                if let Some(d) = role.duration {
                    builder = builder.session_length(d);
                }
                builder.build().await.provide_credentials().await
            }
        };
        match creds {
            Ok(c) => Ok(fetched(&c, self.spec.assume_role.is_some())),
            Err(e) => Err(fetch_error(&e)),
        }
    }
}

impl Fetch for SdkFetcher {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            match tokio::time::timeout(FETCH_TIMEOUT, self.fetch_once()).await {
                Ok(r) => r,
                Err(_) => Err(FetchError {
                    reason: FailureReason::Timeout,
                    message: format!("no credentials within {FETCH_TIMEOUT:?}"),
                }),
            }
        })
    }
}

fn fetched(c: &Credentials, assumed: bool) -> Fetched {
    let source = if assumed {
        SourceName::AssumeRole
    } else {
        source_of(c)
    };
    Fetched {
        credentials: AwsCredentials {
            access_key: c.access_key_id().to_owned(),
            secret_key: Zeroizing::new(c.secret_access_key().to_owned()),
            session_token: c.session_token().map(|t| Zeroizing::new(t.to_owned())),
        },
        expires: c.expiry().map(|e: SystemTime| e),
        source,
    }
}

/// Which link of the chain answered, from the SDK's provider name.
fn source_of(c: &Credentials) -> SourceName {
    // `Credentials`' Debug shows the provider name and never the secret; the name itself is
    // not exposed otherwise.
    let debug = format!("{c:?}");
    let name = debug
        .split("provider_name: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("");
    match name {
        "EnvironmentVariable" => SourceName::Env,
        "ProfileFile" | "CredentialProcess" => SourceName::Profile,
        "WebIdentityToken" => SourceName::WebIdentity,
        "EcsContainer" => SourceName::Container,
        "IMDSv2" => SourceName::Imds,
        "AssumeRoleProvider" => SourceName::Profile, // a role chain of a profile
        _ => SourceName::Other,
    }
}

/// The SDK's error as a reason and a redacted, bounded message.
fn fetch_error(e: &CredentialsError) -> FetchError {
    let reason = match e {
        CredentialsError::CredentialsNotLoaded(_) => FailureReason::NotLoaded,
        CredentialsError::ProviderTimedOut(_) => FailureReason::Timeout,
        CredentialsError::InvalidConfiguration(_) => FailureReason::InvalidConfiguration,
        CredentialsError::ProviderError(_) => FailureReason::ProviderError,
        _ => FailureReason::Other,
    };
    let full = aws_smithy_types_display(e);
    let mut message = redact(&full);
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    FetchError { reason, message }
}

/// The error and its sources, one line (what `DisplayErrorContext` prints).
fn aws_smithy_types_display(e: &(dyn std::error::Error + 'static)) -> String {
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
    fn the_answering_link_names_the_source_and_nothing_secret_is_kept_in_errors() {
        let c = Credentials::new(
            "ASIAEXAMPLE",
            "wJalrXUtnFEMI",
            Some("tok".into()),
            None,
            "IMDSv2",
        );
        assert_eq!(source_of(&c), SourceName::Imds);
        let f = fetched(&c, false);
        assert_eq!(f.credentials.access_key, "ASIAEXAMPLE");
        assert_eq!(f.source, SourceName::Imds);
        assert_eq!(fetched(&c, true).source, SourceName::AssumeRole);
        let env = Credentials::new("A", "B", None, None, "EnvironmentVariable");
        assert_eq!(source_of(&env), SourceName::Env);

        let e = CredentialsError::provider_error(
            "STS said: Credential=ASIAQWERTYUIOPASDFGH/20260101 and token \
             IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD",
        );
        let f = fetch_error(&e);
        assert_eq!(f.reason, FailureReason::ProviderError);
        assert!(!f.message.contains("ASIAQWERTYUIOPASDFGH"), "{}", f.message);
        assert!(!f.message.contains("IQoJb3JpZ2luX2VjEJr"), "{}", f.message);
        let e = CredentialsError::not_loaded("no AWS_ACCESS_KEY_ID");
        assert_eq!(fetch_error(&e).reason, FailureReason::NotLoaded);
    }
}
