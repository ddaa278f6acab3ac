//! What all streams of one filter config share: the validated config, their credentials and
//! the discovered-function tables.

use std::collections::HashMap;
use std::sync::Arc;

use super::log_pace::{AWS_ERROR_LOG_PERIOD, PacedLogs};
use crate::config::FilterConfig;
use crate::credentials::ConfigCredentials;
use crate::discovery::FunctionTable;
use crate::lambda::api_error::API_ERROR_CODES;

#[derive(Debug)]
pub struct SharedConfig {
    pub config: FilterConfig,
    /// What each upstream signs with: secret caches, provider identities.
    pub credentials: ConfigCredentials,
    /// Upstream name → its discovered functions, for upstreams with discovery enabled.
    /// Filled by the main thread's discovery; read lock-free by the workers.
    pub discovered: HashMap<String, Arc<FunctionTable>>,
    /// Paces the log line of each Lambda API error, per (upstream, code).
    pub aws_error_log: PacedLogs,
    /// Paces the warning of requests refused for want of credentials, per upstream: a secret
    /// SDS has not delivered yet would otherwise log one line per request.
    pub credentials_log: PacedLogs,
}

/// The code whose warning [`SharedConfig::credentials_log`] paces.
pub const CREDENTIALS_UNAVAILABLE: &str = "credentials_unavailable";

impl SharedConfig {
    pub fn new(config: FilterConfig) -> Self {
        let credentials = ConfigCredentials::new(&config);
        let discovered = config
            .upstreams()
            .filter(|u| u.discovery.is_some())
            .map(|u| (u.name.clone(), Arc::new(FunctionTable::new())))
            .collect();
        let aws_error_log = PacedLogs::new(
            config.upstreams().map(|u| u.name.as_str()),
            &API_ERROR_CODES,
            AWS_ERROR_LOG_PERIOD,
        );
        let credentials_log = PacedLogs::new(
            config.upstreams().map(|u| u.name.as_str()),
            &[CREDENTIALS_UNAVAILABLE],
            AWS_ERROR_LOG_PERIOD,
        );
        Self {
            config,
            credentials,
            discovered,
            aws_error_log,
            credentials_log,
        }
    }
}
