//! Parsed credentials per secret, re-parsed only when the secret's bytes change.
//!
//! Envoy has no rotation hook for generic secrets, so every request reads the current bytes;
//! comparing them with the last ones seen is cheap, parsing YAML on every request is not.

use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use super::{AwsCredentials, CredentialsError};

/// The secret bytes last seen, and what they parsed to.
type Entry = (Zeroizing<Vec<u8>>, Arc<AwsCredentials>);

#[derive(Default)]
pub struct CredentialCache {
    last: Mutex<Option<Entry>>,
}

impl CredentialCache {
    /// Credentials for the secret's current bytes.
    pub fn get(&self, current: &[u8]) -> Result<Arc<AwsCredentials>, CredentialsError> {
        // A poisoned lock only means another thread panicked mid-update; the data is still a
        // consistent (bytes, credentials) pair or None, so keep using it.
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((bytes, creds)) = last.as_ref() {
            if bytes.as_slice() == current {
                return Ok(Arc::clone(creds));
            }
        }
        let creds = Arc::new(AwsCredentials::parse(current)?);
        *last = Some((Zeroizing::new(current.to_vec()), Arc::clone(&creds)));
        Ok(creds)
    }
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialCache")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_rotation_and_reuses_unchanged() {
        let cache = CredentialCache::default();
        let a = cache.get(b"access_key: A\nsecret_key: one\n").unwrap();
        let again = cache.get(b"access_key: A\nsecret_key: one\n").unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let b = cache.get(b"access_key: A\nsecret_key: two\n").unwrap();
        assert_eq!(b.secret_key.as_str(), "two");
        assert!(cache.get(b"nonsense: [").is_err());
    }
}
