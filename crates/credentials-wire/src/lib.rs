//! The interface between the module (`libenvoy_lambda.so`) and the library that holds the AWS
//! SDK's credential providers (`libenvoy_lambda_credentials_sdk.so`).
//!
//! The SDK (aws-config, its HTTP client, rustls) is most of what the module would otherwise
//! map into every Envoy: 5.7 MB of the file and ~1 MB resident, for configs that may never
//! use a provider. So it lives in its own library, loaded the first time a config names a
//! provider. Two Rust libraries built apart share no Rust ABI, so they speak C: three
//! symbols, and JSON documents (the types below) passed as bytes.
//!
//! - [`SYMBOL_ABI_VERSION`] `u32 ()` — must equal [`ABI_VERSION`].
//! - [`SYMBOL_FETCH`] `void (const u8 *request, usize len, DoneFn done, void *ctx)` — starts
//!   one fetch of a [`FetchRequest`] on the library's own background thread; `done` is called
//!   exactly once with a [`FetchAnswer`] (on that thread, or at once if the request is bad).
//! - [`SYMBOL_STOP`] `void ()` — ends the library's thread and joins it; a fetch still
//!   running is answered first (`done` with [`FetchAnswer::Failed`]). After it returns, the
//!   library calls nothing of the module's. A later fetch starts the thread again.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Bumped on any change to the symbols or the documents.
pub const ABI_VERSION: u32 = 1;
/// The library's file name; the module looks for it next to itself.
pub const LIBRARY_FILE: &str = "libenvoy_lambda_credentials_sdk.so";

pub const SYMBOL_ABI_VERSION: &str = "envoy_lambda_credentials_sdk_abi_version";
pub const SYMBOL_FETCH: &str = "envoy_lambda_credentials_sdk_fetch";
pub const SYMBOL_STOP: &str = "envoy_lambda_credentials_sdk_stop";

/// `done(ctx, answer, len)`: `answer` is valid for the call only.
pub type DoneFn = extern "C" fn(ctx: *mut std::ffi::c_void, answer: *const u8, len: usize);
pub type AbiVersionFn = extern "C" fn() -> u32;
pub type FetchFn =
    unsafe extern "C" fn(request: *const u8, len: usize, done: DoneFn, ctx: *mut std::ffi::c_void);
pub type StopFn = extern "C" fn();

/// The base credentials: the AWS SDKs' default chain, or one of its links.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CredentialSource {
    /// env → profile files → web identity → container → IMDS, as the AWS SDKs order them.
    Chain,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    Env,
    /// Shared config and credentials files (`role_arn`/`source_profile`, `credential_process`).
    Profile {
        /// `None`: `AWS_PROFILE`, else `default`.
        name: Option<String>,
        config_file: Option<String>,
        credentials_file: Option<String>,
    },
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`): IRSA.
    WebIdentity,
    /// `AWS_CONTAINER_CREDENTIALS_{RELATIVE,FULL}_URI` (+ authorization token): ECS, EKS Pod Identity.
    Container,
    /// IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`, `AWS_EC2_METADATA_DISABLED`).
    Imds,
}

impl CredentialSource {
    /// The name users write in `credentials.source` (also the `source` label of the stats).
    pub fn name(&self) -> &'static str {
        match self {
            CredentialSource::Chain => "chain",
            CredentialSource::Env => "env",
            CredentialSource::Profile { .. } => "profile",
            CredentialSource::WebIdentity => "web_identity",
            CredentialSource::Container => "container",
            CredentialSource::Imds => "imds",
        }
    }
}

/// `sts:AssumeRole` on top of the base credentials (the cross-account case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
    /// `None`: STS's default (one hour).
    pub duration: Option<Duration>,
}

/// One fetch: the identity's providers, and the region (of STS and of the profile's SDK).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchRequest {
    pub source: CredentialSource,
    pub assume_role: Option<AssumeRole>,
    pub region: String,
}

/// What a fetch gave. No `Debug`: it holds the secret key and the session token.
#[derive(Serialize, Deserialize)]
pub enum FetchAnswer {
    Credentials {
        access_key: String,
        secret_key: Zeroizing<String>,
        session_token: Option<Zeroizing<String>>,
        expires: Option<SystemTime>,
        /// The link that answered, as the stats name it: `env`, `profile`, `web_identity`,
        /// `container`, `imds`, `assume_role`, `other`.
        source: String,
    },
    Failed {
        /// `not_loaded`, `timeout`, `invalid_configuration`, `provider_error`, `other`
        /// (the `reason` label of `credentials_refresh_failed`).
        reason: String,
        /// The provider's error and its causes, one line. The module redacts and bounds it
        /// before it logs it.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_read_back_as_written() {
        let req = FetchRequest {
            source: CredentialSource::Profile {
                name: Some("prod".into()),
                config_file: None,
                credentials_file: Some("/etc/aws/credentials".into()),
            },
            assume_role: Some(AssumeRole {
                role_arn: "arn:aws:iam::123456789012:role/x".into(),
                external_id: None,
                session_name: "envoy-lambda".into(),
                duration: Some(Duration::from_secs(900)),
            }),
            region: "eu-west-1".into(),
        };
        let back: FetchRequest =
            serde_json::from_slice(&serde_json::to_vec(&req).unwrap()).unwrap();
        assert_eq!(back, req);

        let expires = SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_123);
        let answer = FetchAnswer::Credentials {
            access_key: "ASIAEXAMPLE".into(),
            secret_key: Zeroizing::new("s\"e/c+r\\et".into()),
            session_token: None,
            expires: Some(expires),
            source: "imds".into(),
        };
        match serde_json::from_slice(&serde_json::to_vec(&answer).unwrap()).unwrap() {
            FetchAnswer::Credentials {
                access_key,
                secret_key,
                session_token,
                expires: e,
                source,
            } => {
                assert_eq!(access_key, "ASIAEXAMPLE");
                assert_eq!(secret_key.as_str(), "s\"e/c+r\\et");
                assert!(session_token.is_none());
                assert_eq!(e, Some(expires));
                assert_eq!(source, "imds");
            }
            FetchAnswer::Failed { .. } => panic!("read back as a failure"),
        }
    }
}
