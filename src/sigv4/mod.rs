//! SigV4: the payload hash, fed chunk by chunk, and the signer, one stage per module.
//!
//! `signer` runs the stages: `canonical_request` (with `canonical_uri` and `header_set`),
//! `string_to_sign`, `signing_key` (cached per thread) and `authorization`; `sink` is where
//! they write. `aws-sigv4` is only a dev-dependency: the oracle of the unit tests.

mod authorization;
mod canonical_request;
mod canonical_uri;
mod error;
mod header_set;
#[cfg(test)]
mod oracle;
mod payload_hash;
mod signer;
mod signing_key;
mod sink;
mod string_to_sign;

pub use error::SignError;
pub use payload_hash::{PayloadDigest, PayloadHasher};
pub use signer::{LAMBDA_SERVICE, RequestToSign, Signed, SigningStages, sign, sign_stages};
