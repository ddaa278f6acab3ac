//! Why a request could not be signed.

use std::fmt;

/// Signing refused the request (its shape, never its secrets, is described).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignError(pub String);

impl SignError {
    pub(crate) fn new(message: &str) -> Self {
        Self(message.to_owned())
    }
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigV4 signing failed: {}", self.0)
    }
}

impl std::error::Error for SignError {}
