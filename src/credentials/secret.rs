//! The seed's secret content: a YAML (or JSON) map with `access_key`, `secret_key` and an
//! optional `session_token`. Nothing here ever formats secret bytes: errors name fields only.

use std::fmt;

use serde::Deserialize;
use zeroize::Zeroizing;

/// Static or temporary AWS credentials. `Debug` shows the access key id only.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key: String,
    pub secret_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// Why a secret could not be used. The text never contains the secret's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsError {
    /// Envoy has no value for the secret (unknown name, or SDS not yet delivered).
    Unavailable,
    /// The content is not a YAML/JSON map of strings.
    Malformed,
    /// A required key is missing or empty.
    MissingField(&'static str),
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable => f.write_str("the secret has no value in Envoy yet"),
            Self::Malformed => f.write_str(
                "the secret is not a YAML map with access_key, secret_key and optional session_token",
            ),
            Self::MissingField(field) => write!(f, "the secret has no '{field}'"),
        }
    }
}

impl std::error::Error for CredentialsError {}

#[derive(Deserialize)]
struct RawSecret {
    #[serde(default, alias = "aws_access_key_id")]
    access_key: Option<String>,
    #[serde(default, alias = "aws_secret_access_key")]
    secret_key: Option<Zeroizing<String>>,
    #[serde(default, alias = "aws_session_token")]
    session_token: Option<Zeroizing<String>>,
}

impl AwsCredentials {
    /// Parses the secret bytes. YAML is a superset of JSON, so both forms are accepted.
    pub fn parse(bytes: &[u8]) -> Result<Self, CredentialsError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(CredentialsError::Unavailable);
        }
        // The parser's own error text may quote the input, so it is dropped here.
        let raw: RawSecret =
            serde_yaml_ng::from_slice(bytes).map_err(|_| CredentialsError::Malformed)?;
        let access_key = raw
            .access_key
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or(CredentialsError::MissingField("access_key"))?;
        let secret_key = raw
            .secret_key
            .map(|s| Zeroizing::new(s.trim().to_owned()))
            .filter(|s| !s.is_empty())
            .ok_or(CredentialsError::MissingField("secret_key"))?;
        let session_token = raw
            .session_token
            .map(|s| Zeroizing::new(s.trim().to_owned()))
            .filter(|s| !s.is_empty());
        Ok(Self {
            access_key,
            secret_key,
            session_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_format() {
        let c =
            AwsCredentials::parse(b"access_key: AKIDEXAMPLE\nsecret_key: wJalr/K7MDENG+bPxRfiCY\n")
                .unwrap();
        assert_eq!(c.access_key, "AKIDEXAMPLE");
        assert_eq!(c.secret_key.as_str(), "wJalr/K7MDENG+bPxRfiCY");
        assert!(c.session_token.is_none());
    }

    #[test]
    fn session_token_and_json_form() {
        let c = AwsCredentials::parse(
            br#"{"access_key":"ASIA1","secret_key":"s","session_token":"tok"}"#,
        )
        .unwrap();
        assert_eq!(c.session_token.as_deref().map(String::as_str), Some("tok"));
    }

    #[test]
    fn errors_name_fields_and_never_the_secret() {
        assert_eq!(
            AwsCredentials::parse(b"secret_key: hunter2\n").unwrap_err(),
            CredentialsError::MissingField("access_key")
        );
        assert_eq!(
            AwsCredentials::parse(b"access_key: A\nsecret_key: ''\n").unwrap_err(),
            CredentialsError::MissingField("secret_key")
        );
        assert_eq!(
            AwsCredentials::parse(b"").unwrap_err(),
            CredentialsError::Unavailable
        );
        let e = AwsCredentials::parse(b"access_key: [hunter2\n").unwrap_err();
        assert_eq!(e, CredentialsError::Malformed);
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn debug_redacts() {
        let c = AwsCredentials::parse(b"access_key: A\nsecret_key: hunter2\nsession_token: tok\n")
            .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("tok\""), "{d}");
    }
}
