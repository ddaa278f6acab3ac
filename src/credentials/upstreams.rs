//! The credentials of every upstream of one filter config, whichever their source: the
//! request path and discovery both sign through [`ConfigCredentials::resolve`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::cache::CredentialCache;
use super::current::Lookup;
use super::providers::Providers;
use super::refresher::LogFn;
use super::registry::{Identity, identity};
use super::{AwsCredentials, CredentialsError};
use crate::config::{CredentialsFrom, FilterConfig, Upstream};

/// What an upstream can sign with now.
#[derive(Debug)]
pub enum Resolved {
    Ready(Arc<AwsCredentials>),
    /// Its provider has not delivered the first credentials yet: a request may wait.
    Pending(Arc<Identity>),
    /// Nothing usable: the text says why (the source or secret, never secret material).
    Unavailable(String),
}

/// A config and its credentials, for code that signs for its upstreams (discovery).
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub config: &'a FilterConfig,
    pub credentials: &'a ConfigCredentials,
}

impl Keys<'_> {
    pub fn resolve<'b>(
        &self,
        upstream: &Upstream,
        secret: impl FnOnce(usize) -> Option<&'b [u8]>,
        now: SystemTime,
    ) -> Resolved {
        self.credentials.resolve(self.config, upstream, secret, now)
    }
}

#[derive(Debug, Default)]
pub struct ConfigCredentials {
    /// One cache per entry of `config.secrets()`, same index.
    secrets: Vec<CredentialCache>,
    /// Upstream name → its provider-backed identity (once started).
    identities: HashMap<String, Arc<Identity>>,
}

impl ConfigCredentials {
    /// Secret caches only; provider identities join with [`Self::start`].
    pub fn new(config: &FilterConfig) -> Self {
        Self {
            secrets: config
                .secrets()
                .iter()
                .map(|_| CredentialCache::default())
                .collect(),
            identities: HashMap::new(),
        }
    }

    /// Joins (or starts) the identity of every provider-backed upstream (config load; never
    /// in `--mode validate`, so validating a config sends nothing anywhere).
    pub fn start(&mut self, config: &FilterConfig, log: &LogFn, providers: &Arc<dyn Providers>) {
        for u in config.upstreams() {
            if let CredentialsFrom::Provider(spec) = &u.credentials {
                if let Some(id) = identity(spec, u.region.as_str(), Arc::clone(log), providers) {
                    self.identities.insert(u.name.clone(), id);
                }
            }
        }
    }

    /// Test hook: an upstream's identity, set by hand.
    #[cfg(test)]
    pub(crate) fn insert_identity(&mut self, upstream: &str, identity: Arc<Identity>) {
        self.identities.insert(upstream.to_owned(), identity);
    }

    pub fn identity(&self, upstream: &str) -> Option<&Arc<Identity>> {
        self.identities.get(upstream)
    }

    /// Every provider-backed upstream with its identity, for stats.
    pub fn identities(&self) -> impl Iterator<Item = (&String, &Arc<Identity>)> {
        self.identities.iter()
    }

    /// The credentials `upstream` signs with at `now`. `secret` gives the bytes of the
    /// config's `index`-th Envoy secret as Envoy holds them now.
    pub fn resolve<'a>(
        &self,
        config: &FilterConfig,
        upstream: &Upstream,
        secret: impl FnOnce(usize) -> Option<&'a [u8]>,
        now: SystemTime,
    ) -> Resolved {
        match &upstream.credentials {
            CredentialsFrom::Secret(index) => {
                let name = &config.secret(*index).name;
                let parsed = secret(index.get())
                    .ok_or(CredentialsError::Unavailable)
                    .and_then(|bytes| match self.secrets.get(index.get()) {
                        Some(cache) => cache.get(bytes),
                        None => Err(CredentialsError::Unavailable),
                    });
                match parsed {
                    Ok(c) => Resolved::Ready(c),
                    Err(e) => Resolved::Unavailable(format!(
                        "no usable AWS credentials for upstream '{}' (secret '{name}'): {e}",
                        upstream.name
                    )),
                }
            }
            CredentialsFrom::Provider(spec) => {
                let unavailable = || {
                    Resolved::Unavailable(format!(
                        "no usable AWS credentials for upstream '{}' (source: {})",
                        upstream.name,
                        spec.source.name()
                    ))
                };
                let Some(id) = self.identities.get(&upstream.name) else {
                    return unavailable();
                };
                match id.current.lookup(now) {
                    Lookup::Ready(c) => Resolved::Ready(c),
                    Lookup::Pending => Resolved::Pending(Arc::clone(id)),
                    Lookup::Expired => unavailable(),
                }
            }
        }
    }
}
