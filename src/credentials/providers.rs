//! Where an identity's fetches go: the AWS SDK's providers, which live in a library of their
//! own (`crates/credentials-sdk`, loaded by `abi::credentials_library`), behind the
//! [`Providers`] seam so that the registry runs against fakes in tests. What crosses to the
//! library is JSON (`envoy_lambda_credentials_wire`); this file turns our spec into its
//! request and its answer into a [`Fetched`] or a redacted, bounded [`FetchError`].

use std::time::Duration;

use envoy_lambda_credentials_wire::{FetchAnswer, FetchRequest};

use super::AwsCredentials;
use super::refresher::{Fetch, FetchError, Fetched};
use super::stats::{FailureReason, SourceName};
use crate::config::ProviderSpec;
use crate::lambda::aws_error::redact;

/// Error texts are cut to this length in logs.
const MAX_MESSAGE: usize = 400;
/// The library answers every fetch within its own 20 s; past this one the module stops
/// waiting (a library that lost a fetch must not stall the refresher).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The providers of every identity in the process.
pub trait Providers: Send + Sync + 'static {
    /// A fetcher of `request`'s credentials, called once per fetch.
    fn fetcher(&self, request: FetchRequest) -> Box<dyn Fetch>;
    /// No identity is left: end the background work and answer what is pending. Called
    /// after the refreshers have stopped; a later fetcher starts it again.
    fn stop(&self);
}

/// What the library is asked for `spec` in `region`.
pub fn request_for(spec: &ProviderSpec, region: &str) -> FetchRequest {
    FetchRequest {
        source: spec.source.clone(),
        assume_role: spec.assume_role.clone(),
        region: region.to_owned(),
    }
}

/// The library's answer (JSON) as a fetch result. The message is redacted and bounded here,
/// whatever the library sent.
pub fn read_answer(bytes: &[u8]) -> Result<Fetched, FetchError> {
    match serde_json::from_slice::<FetchAnswer>(bytes) {
        Ok(FetchAnswer::Credentials {
            access_key,
            secret_key,
            session_token,
            expires,
            source,
        }) => Ok(Fetched {
            credentials: AwsCredentials {
                access_key,
                secret_key,
                session_token,
            },
            expires,
            source: SourceName::ALL
                .into_iter()
                .find(|s| s.name() == source)
                .unwrap_or(SourceName::Other),
        }),
        Ok(FetchAnswer::Failed { reason, message }) => Err(FetchError {
            reason: FailureReason::ALL
                .into_iter()
                .find(|r| r.name() == reason)
                .unwrap_or(FailureReason::Other),
            message: bounded(&redact(&message)),
        }),
        Err(e) => Err(FetchError {
            reason: FailureReason::Other,
            // serde's message names the position and the expected type, never the bytes
            message: format!("unreadable answer from the credentials library: {e}"),
        }),
    }
}

fn bounded(message: &str) -> String {
    let one_line = message.replace(['\n', '\r'], " ");
    if one_line.len() <= MAX_MESSAGE {
        return one_line;
    }
    let mut cut = MAX_MESSAGE;
    while !one_line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &one_line[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_lambda_credentials_wire::CredentialSource;
    use std::time::SystemTime;
    use zeroize::Zeroizing;

    fn bytes(answer: &FetchAnswer) -> Vec<u8> {
        serde_json::to_vec(answer).unwrap()
    }

    #[test]
    fn credentials_come_back_with_their_expiry_and_source() {
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let got = read_answer(&bytes(&FetchAnswer::Credentials {
            access_key: "ASIAEXAMPLE".into(),
            secret_key: Zeroizing::new("wJalrXUtnFEMI".into()),
            session_token: Some(Zeroizing::new("tok".into())),
            expires: Some(expires),
            source: "web_identity".into(),
        }))
        .unwrap();
        assert_eq!(got.credentials.access_key, "ASIAEXAMPLE");
        assert_eq!(got.credentials.secret_key.as_str(), "wJalrXUtnFEMI");
        assert_eq!(
            got.credentials.session_token.as_deref().map(String::as_str),
            Some("tok")
        );
        assert_eq!(got.expires, Some(expires));
        assert_eq!(got.source, SourceName::WebIdentity);
        let odd = read_answer(&bytes(&FetchAnswer::Credentials {
            access_key: "A".into(),
            secret_key: Zeroizing::new("B".into()),
            session_token: None,
            expires: None,
            source: "sso".into(),
        }))
        .unwrap();
        assert_eq!(odd.source, SourceName::Other);
    }

    #[test]
    fn failures_are_redacted_bounded_and_keep_their_reason() {
        let err = read_answer(&bytes(&FetchAnswer::Failed {
            reason: "provider_error".into(),
            message: "STS said: Credential=ASIAQWERTYUIOPASDFGH/20260101 and token \
                      IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD\nnext line"
                .into(),
        }))
        .unwrap_err();
        assert_eq!(err.reason, FailureReason::ProviderError);
        assert!(
            !err.message.contains("ASIAQWERTYUIOPASDFGH"),
            "{}",
            err.message
        );
        assert!(
            !err.message.contains("IQoJb3JpZ2luX2VjEJr"),
            "{}",
            err.message
        );
        assert!(!err.message.contains('\n'), "{}", err.message);
        let long = read_answer(&bytes(&FetchAnswer::Failed {
            reason: "not_loaded".into(),
            message: "é".repeat(1000),
        }))
        .unwrap_err();
        assert_eq!(long.reason, FailureReason::NotLoaded);
        assert!(long.message.len() <= MAX_MESSAGE + '…'.len_utf8());
        let unknown = read_answer(&bytes(&FetchAnswer::Failed {
            reason: "new_kind".into(),
            message: String::new(),
        }))
        .unwrap_err();
        assert_eq!(unknown.reason, FailureReason::Other);
    }

    #[test]
    fn an_unreadable_answer_is_a_failure_that_echoes_nothing() {
        let err = read_answer(br#"{"Credentials":{"access_key":"AKIDSECRETISH","#).unwrap_err();
        assert_eq!(err.reason, FailureReason::Other);
        assert!(!err.message.contains("AKIDSECRETISH"), "{}", err.message);
    }

    #[test]
    fn the_request_carries_the_spec_and_region() {
        let spec = ProviderSpec {
            source: CredentialSource::WebIdentity,
            assume_role: None,
            wait: Duration::from_secs(1),
        };
        let r = request_for(&spec, "eu-central-1");
        assert_eq!(r.source, CredentialSource::WebIdentity);
        assert_eq!(r.region, "eu-central-1");
    }
}
