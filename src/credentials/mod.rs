//! AWS credentials from the seed's secret format, and a cache that follows secret rotation.

mod cache;
mod secret;

pub(crate) use cache::CredentialCache;
pub use secret::{AwsCredentials, CredentialsError};
