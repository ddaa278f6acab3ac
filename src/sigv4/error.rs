//! Why a request could not be signed.

use std::fmt;

/// Signing refused the request (its shape, never its secrets, is described).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    MethodNotAToken,
    TooManyPathSegments,
    TooManyQueryParameters,
    TooManyHeaders,
    InvalidHeaderName,
    /// The caller passed a header the signer sets itself (its canonical name).
    SetBySigner(&'static str),
    /// The value of this caller header has a control character.
    ControlCharacter(String),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigV4 signing failed: ")?;
        match self {
            Self::MethodNotAToken => f.write_str("the method is not an upper-case token"),
            Self::TooManyPathSegments => f.write_str("the path has too many segments to normalize"),
            Self::TooManyQueryParameters => {
                f.write_str("the query has too many parameters to sign")
            }
            Self::TooManyHeaders => f.write_str("too many headers to sign"),
            Self::InvalidHeaderName => f.write_str("a header to sign has an invalid name"),
            Self::SetBySigner(own) => write!(f, "'{own}' is set by the signer, not the caller"),
            Self::ControlCharacter(name) => {
                write!(f, "the value of '{name}' has a control character")
            }
        }
    }
}

impl std::error::Error for SignError {}
