//! What an identity's refresher counts (atomics: written by the refresher thread, read by
//! the configs that publish them as Envoy stats on the main thread), and the labels.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// Why a fetch failed (the `reason` label of `credentials_refresh_failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The source has nothing (no variables, no profile, IMDS disabled …).
    NotLoaded,
    /// No answer in time.
    Timeout,
    /// The source is set up wrongly (a bad profile, a missing token file …).
    InvalidConfiguration,
    /// The provider answered with an error (STS refused, the endpoint failed …).
    ProviderError,
    /// The answer had expired already.
    Expired,
    /// Anything else.
    Other,
}

impl FailureReason {
    pub const ALL: [FailureReason; 6] = [
        FailureReason::NotLoaded,
        FailureReason::Timeout,
        FailureReason::InvalidConfiguration,
        FailureReason::ProviderError,
        FailureReason::Expired,
        FailureReason::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FailureReason::NotLoaded => "not_loaded",
            FailureReason::Timeout => "timeout",
            FailureReason::InvalidConfiguration => "invalid_configuration",
            FailureReason::ProviderError => "provider_error",
            FailureReason::Expired => "expired",
            FailureReason::Other => "other",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Which provider supplied a set of credentials (the `source` label of `credentials_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceName {
    Env,
    Profile,
    WebIdentity,
    Container,
    Imds,
    AssumeRole,
    Other,
}

impl SourceName {
    pub const ALL: [SourceName; 7] = [
        SourceName::Env,
        SourceName::Profile,
        SourceName::WebIdentity,
        SourceName::Container,
        SourceName::Imds,
        SourceName::AssumeRole,
        SourceName::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourceName::Env => "env",
            SourceName::Profile => "profile",
            SourceName::WebIdentity => "web_identity",
            SourceName::Container => "container",
            SourceName::Imds => "imds",
            SourceName::AssumeRole => "assume_role",
            SourceName::Other => "other",
        }
    }

    fn index(self) -> u8 {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) as u8 + 1
    }
}

/// Counters since the refresher started, and the current set's expiry and source.
#[derive(Debug, Default)]
pub struct RefreshStats {
    ok: AtomicU64,
    failed: [AtomicU64; FailureReason::ALL.len()],
    /// Unix seconds; 0 = none, or no expiry.
    expiration: AtomicU64,
    /// `SourceName` index + 1; 0 = none yet.
    source: AtomicU8,
}

/// A copy of [`RefreshStats`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub ok: u64,
    pub failed: [u64; FailureReason::ALL.len()],
    pub expiration_unix_seconds: u64,
    pub source: Option<SourceName>,
}

impl RefreshStats {
    pub(super) fn succeeded(&self, expiration_unix_seconds: u64, source: SourceName) {
        self.expiration
            .store(expiration_unix_seconds, Ordering::Relaxed);
        self.source.store(source.index(), Ordering::Relaxed);
        self.ok.fetch_add(1, Ordering::Release);
    }

    pub(super) fn failed(&self, reason: FailureReason) {
        self.failed[reason.index()].fetch_add(1, Ordering::Release);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut failed = [0; FailureReason::ALL.len()];
        for (out, n) in failed.iter_mut().zip(&self.failed) {
            *out = n.load(Ordering::Acquire);
        }
        let source = match self.source.load(Ordering::Relaxed) {
            0 => None,
            i => SourceName::ALL.get(usize::from(i) - 1).copied(),
        };
        StatsSnapshot {
            ok: self.ok.load(Ordering::Acquire),
            failed,
            expiration_unix_seconds: self.expiration.load(Ordering::Relaxed),
            source,
        }
    }
}

/// The stats a config publishes per provider-backed upstream (names in README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsStat {
    /// Counter `credentials_refresh_ok` `[upstream]`.
    RefreshOk,
    /// Counter `credentials_refresh_failed` `[upstream, reason]`.
    RefreshFailed,
    /// Gauge `credentials_expiration_unix_seconds` `[upstream]` (0: no expiry).
    Expiration,
    /// Gauge `credentials_source` `[upstream, source]`: 1 for the source of the current set.
    Source,
}

/// Where [`publish`] writes (Envoy's config stats; a fake in tests).
pub trait StatsSink {
    fn add(&mut self, stat: CredentialsStat, labels: &[&str], n: u64);
    fn set(&mut self, stat: CredentialsStat, labels: &[&str], value: u64);
}

/// Publishes `now` for `upstream`. Counters grow by their increase since `last`, and only
/// when `counts` (one config per identity counts, or configs sharing it would count every
/// refresh twice); gauges are set always (each config keeps its own reference to them).
pub fn publish(
    sink: &mut impl StatsSink,
    upstream: &str,
    last: &mut StatsSnapshot,
    now: StatsSnapshot,
    counts: bool,
) {
    if counts {
        if now.ok > last.ok {
            sink.add(CredentialsStat::RefreshOk, &[upstream], now.ok - last.ok);
        }
        for (reason, (new, old)) in FailureReason::ALL
            .iter()
            .zip(now.failed.iter().zip(last.failed.iter()))
        {
            if new > old {
                sink.add(
                    CredentialsStat::RefreshFailed,
                    &[upstream, reason.name()],
                    new - old,
                );
            }
        }
    }
    if let Some(source) = now.source {
        sink.set(
            CredentialsStat::Expiration,
            &[upstream],
            now.expiration_unix_seconds,
        );
        if let Some(old) = last.source.filter(|old| *old != source) {
            sink.set(CredentialsStat::Source, &[upstream, old.name()], 0);
        }
        sink.set(CredentialsStat::Source, &[upstream, source.name()], 1);
    }
    *last = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Sink(Vec<String>);

    impl StatsSink for Sink {
        fn add(&mut self, stat: CredentialsStat, labels: &[&str], n: u64) {
            self.0.push(format!("{stat:?} {labels:?} +{n}"));
        }
        fn set(&mut self, stat: CredentialsStat, labels: &[&str], value: u64) {
            self.0.push(format!("{stat:?} {labels:?} ={value}"));
        }
    }

    #[test]
    fn publishes_increases_once_and_moves_the_source_gauge() {
        let s = RefreshStats::default();
        let mut last = StatsSnapshot::default();
        let mut sink = Sink::default();
        s.succeeded(100, SourceName::Env);
        s.failed(FailureReason::Timeout);
        publish(&mut sink, "u", &mut last, s.snapshot(), true);
        assert_eq!(
            sink.0,
            [
                r#"RefreshOk ["u"] +1"#,
                r#"RefreshFailed ["u", "timeout"] +1"#,
                r#"Expiration ["u"] =100"#,
                r#"Source ["u", "env"] =1"#,
            ]
        );
        sink.0.clear();
        // A config that does not count still follows, so it counts from here on later.
        s.succeeded(200, SourceName::Imds);
        publish(&mut sink, "u", &mut last, s.snapshot(), false);
        assert_eq!(
            sink.0,
            [
                r#"Expiration ["u"] =200"#,
                r#"Source ["u", "env"] =0"#,
                r#"Source ["u", "imds"] =1"#,
            ]
        );
        sink.0.clear();
        publish(&mut sink, "u", &mut last, s.snapshot(), true);
        assert!(!sink.0.iter().any(|l| l.contains('+')), "{:?}", sink.0);
    }

    #[test]
    fn counts_by_reason_and_keeps_the_source() {
        let s = RefreshStats::default();
        assert_eq!(s.snapshot(), StatsSnapshot::default());
        s.failed(FailureReason::Timeout);
        s.failed(FailureReason::Timeout);
        s.succeeded(1_800_000_030, SourceName::Imds);
        let snap = s.snapshot();
        assert_eq!(snap.ok, 1);
        assert_eq!(snap.failed[FailureReason::Timeout.index()], 2);
        assert_eq!(snap.expiration_unix_seconds, 1_800_000_030);
        assert_eq!(snap.source, Some(SourceName::Imds));
    }
}
