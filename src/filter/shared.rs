//! What all streams of one filter config share: the validated config and credential caches.

use crate::config::FilterConfig;
use crate::credentials::CredentialCache;

#[derive(Debug)]
pub struct SharedConfig {
    pub config: FilterConfig,
    /// One cache per entry of `config.secrets()`, same index.
    pub credentials: Vec<CredentialCache>,
}

impl SharedConfig {
    pub fn new(config: FilterConfig) -> Self {
        let credentials = config
            .secrets()
            .iter()
            .map(|_| CredentialCache::default())
            .collect();
        Self {
            config,
            credentials,
        }
    }
}
