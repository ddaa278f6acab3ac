//! The discovered names of one upstream, swapped in whole by the main thread and read by every
//! worker on every request without a lock.
//!
//! `arc_swap::ArcSwapOption` makes a read an atomic load plus a thread-local "debt" slot, no
//! reference-count write on a shared cache line and no lock that a refresh could hold while
//! workers wait. A reader sees either the old set or the new one, never a mix. Until the first
//! refresh succeeds the table is empty in a different way from "the account has no functions":
//! the filter answers 503 (not ready) for the first and 404 (no such function) for the second.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwapOption;

use super::set::DiscoveredSet;

/// One successful refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub set: DiscoveredSet,
    /// When the refresh that produced `set` completed (the caller's clock).
    pub refreshed_at: SystemTime,
}

/// Whether discovery has produced a set yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableState {
    /// No refresh has completed since the filter config was loaded.
    NotReady,
    Ready(Arc<Snapshot>),
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// No refresh has completed yet: 503, try again shortly.
    NotReady,
    Found,
    /// The last successful refresh did not list it: 404.
    NotFound,
}

/// The current discovered set of one upstream.
#[derive(Default)]
pub struct FunctionTable {
    current: ArcSwapOption<Snapshot>,
}

impl FunctionTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the set (main thread, after a successful refresh). Readers that already loaded
    /// the old one finish with it; the old set is freed by whichever thread drops it last.
    pub fn publish(&self, set: DiscoveredSet, refreshed_at: SystemTime) {
        self.current
            .store(Some(Arc::new(Snapshot { set, refreshed_at })));
    }

    /// The request-path check: lock-free, allocation-free, no reference-count traffic.
    pub fn lookup(&self, name: &str) -> Lookup {
        match self.current.load().as_deref() {
            None => Lookup::NotReady,
            Some(s) if s.set.contains(name) => Lookup::Found,
            Some(_) => Lookup::NotFound,
        }
    }

    /// The whole current state, for admin output or tests (clones an `Arc`).
    pub fn state(&self) -> TableState {
        match self.current.load_full() {
            None => TableState::NotReady,
            Some(s) => TableState::Ready(s),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.current.load().is_some()
    }

    /// Names in the current set, 0 before the first refresh (for a gauge).
    pub fn len(&self) -> usize {
        self.current.load().as_deref().map_or(0, |s| s.set.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the current set was published.
    pub fn last_success(&self) -> Option<SystemTime> {
        self.current.load().as_deref().map(|s| s.refreshed_at)
    }
}

impl fmt::Debug for FunctionTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current.load();
        match current.as_deref() {
            None => f.write_str("FunctionTable(not ready)"),
            Some(s) => write!(f, "FunctionTable({} names)", s.set.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn not_ready_until_the_first_publish() {
        let t = FunctionTable::new();
        assert_eq!(t.lookup("f"), Lookup::NotReady);
        assert_eq!(t.state(), TableState::NotReady);
        assert!(!t.is_ready() && t.is_empty());
        assert_eq!(t.last_success(), None);
        assert_eq!(format!("{t:?}"), "FunctionTable(not ready)");

        // An account with no functions is ready, and answers 404.
        t.publish(DiscoveredSet::default(), at(10));
        assert!(t.is_ready());
        assert_eq!(t.lookup("f"), Lookup::NotFound);
        assert_eq!(t.last_success(), Some(at(10)));

        t.publish(DiscoveredSet::from_names(["f", "f:live"]), at(70));
        assert_eq!(t.lookup("f:live"), Lookup::Found);
        assert_eq!(t.lookup("g"), Lookup::NotFound);
        assert_eq!(t.len(), 2);
        assert_eq!(t.last_success(), Some(at(70)));
        let TableState::Ready(s) = t.state() else {
            panic!("ready")
        };
        assert_eq!(s.set.iter().collect::<Vec<_>>(), ["f", "f:live"]);
        assert_eq!(format!("{t:?}"), "FunctionTable(2 names)");
    }

    #[test]
    fn readers_on_other_threads_see_whole_sets_only() {
        // Generation n publishes n names gen{n}-0 … gen{n}-{n-1}: a reader that ever saw a
        // length that does not match the names it finds would have seen a torn set.
        const LAST: usize = 200;
        let table = Arc::new(FunctionTable::new());
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let table = Arc::clone(&table);
                std::thread::spawn(move || {
                    let deadline = std::time::Instant::now() + Duration::from_secs(30);
                    let mut seen_max = 0usize;
                    while seen_max < LAST && std::time::Instant::now() < deadline {
                        if let TableState::Ready(s) = table.state() {
                            let n = s.set.len();
                            assert!(n >= seen_max, "went back from {seen_max} to {n}");
                            seen_max = n;
                            assert!(s.set.contains(&format!("gen{n}-0")));
                            assert!(s.set.contains(&format!("gen{n}-{}", n - 1)));
                            assert_eq!(table.lookup("never"), Lookup::NotFound);
                        }
                    }
                    seen_max
                })
            })
            .collect();
        for n in 1..=LAST {
            let names = (0..n).map(|i| format!("gen{n}-{i}"));
            table.publish(DiscoveredSet::from_names(names), at(n as u64));
        }
        for r in readers {
            assert_eq!(
                r.join().expect("reader thread"),
                LAST,
                "the last swap is visible"
            );
        }
        assert_eq!(table.lookup("gen200-199"), Lookup::Found);
    }
}
