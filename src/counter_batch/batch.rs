//! One filter config's per-function counter adds, summed in the module between flushes.
//!
//! Workers add under their own shard's lock (a worker thread always picks the same shard, so
//! the lock is uncontended but for the flush); a hit costs one hash of the labels and no
//! allocation. The first add after a flush reports it ([`CounterBatch::add`] returns `true`) so
//! that the caller can ask for the next flush.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::host::FunctionStat;

/// Shards per config: more than the workers of most Envoys, so that two workers rarely share.
const SHARDS: usize = 16;

/// One counter's labels, owned (at most the three common labels and one more).
#[derive(Debug, PartialEq, Eq)]
struct Key {
    stat: FunctionStat,
    labels: Box<[Box<str>]>,
}

impl Key {
    fn matches(&self, stat: FunctionStat, labels: &[&str]) -> bool {
        self.stat == stat
            && self.labels.len() == labels.len()
            && self.labels.iter().zip(labels).all(|(a, b)| **a == **b)
    }
}

#[derive(Default)]
struct Shard {
    /// Hash of (stat, labels) → the keys with that hash and their sums since the last flush.
    counts: std::collections::HashMap<u64, Vec<(Key, u64)>, NoRehash>,
}

/// The map's keys are already hashes.
#[derive(Default, Clone)]
struct NoRehash;

impl BuildHasher for NoRehash {
    type Hasher = PassThrough;
    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a u64); fold anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub struct CounterBatch {
    shards: Box<[Mutex<Shard>]>,
    /// Something was added since the last flush began.
    dirty: AtomicBool,
}

impl Default for CounterBatch {
    fn default() -> Self {
        Self::new()
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// This thread's shard: threads take shards in turn, once.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

impl CounterBatch {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            dirty: AtomicBool::new(false),
        }
    }

    /// Adds `n` to the counter `stat{labels}`. `true` when this is the first add since the
    /// last flush began: the caller should see that a flush follows.
    pub fn add(&self, stat: FunctionStat, labels: &[&str], n: u64) -> bool {
        if n == 0 {
            return false;
        }
        let hash = self.hash(stat, labels);
        {
            let mut shard = lock(&self.shards[shard_index()]);
            let bucket = shard.counts.entry(hash).or_default();
            match bucket.iter_mut().find(|(k, _)| k.matches(stat, labels)) {
                Some((_, sum)) => *sum = sum.saturating_add(n),
                None => bucket.push((
                    Key {
                        stat,
                        labels: labels.iter().map(|l| Box::from(*l)).collect(),
                    },
                    n,
                )),
            }
        }
        // A plain load first: once dirty, workers only read the flag (no shared write).
        !self.dirty.load(Ordering::Relaxed) && !self.dirty.swap(true, Ordering::AcqRel)
    }

    /// Whether something waits for a flush.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Hands every non-zero sum to `publish` (once per counter and shard) and zeroes it; a counter that got nothing since
    /// the previous flush is forgotten (its label strings freed). An add racing with the flush
    /// lands in this flush or the next one, never in neither.
    pub fn flush(&self, mut publish: impl FnMut(FunctionStat, &[&str], u64)) {
        // Cleared first: an add from here on makes the batch dirty again.
        self.dirty.store(false, Ordering::Release);
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.counts.retain(|_, bucket| {
                bucket.retain_mut(|(key, sum)| {
                    if *sum == 0 {
                        return false;
                    }
                    let labels: Vec<&str> = key.labels.iter().map(|l| &**l).collect();
                    publish(key.stat, &labels, *sum);
                    *sum = 0;
                    true
                });
                !bucket.is_empty()
            });
        }
    }

    /// FNV-1a over the stat and the labels, each label closed by a 0xff (no byte of UTF-8):
    /// a few instructions per byte where SipHash took ~700 per add. Label values come from
    /// the config and discovery, never from a client, so a keyed hash buys nothing; equal
    /// hashes of different keys share a bucket and are told apart by [`Key::matches`].
    fn hash(&self, stat: FunctionStat, labels: &[&str]) -> u64 {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: u8| h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        eat(stat as u8);
        for label in labels {
            label.bytes().for_each(&mut eat);
            eat(0xff);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    type Seen = HashMap<(FunctionStat, Vec<String>), u64>;

    fn flushed(batch: &CounterBatch) -> Seen {
        let mut seen = Seen::new();
        // A counter added on several threads is published once per thread's shard.
        batch.flush(|stat, labels, n| {
            assert!(n > 0, "no zero adds");
            *seen.entry(key(stat, labels)).or_default() += n;
        });
        seen
    }

    fn key(stat: FunctionStat, labels: &[&str]) -> (FunctionStat, Vec<String>) {
        (stat, labels.iter().map(|l| l.to_string()).collect())
    }

    #[test]
    fn adds_are_summed_per_stat_and_labels_and_zeroed_by_a_flush() {
        let b = CounterBatch::new();
        assert!(b.add(FunctionStat::Invocations, &["u", "echo", "$LATEST"], 1));
        assert!(!b.add(FunctionStat::Invocations, &["u", "echo", "$LATEST"], 2));
        b.add(FunctionStat::Invocations, &["u", "echo", "live"], 5);
        b.add(FunctionStat::PayloadBytesIn, &["u", "echo", "$LATEST"], 30);
        // Same strings, different split: a different counter.
        b.add(FunctionStat::Invocations, &["u", "echo$", "LATEST"], 7);
        b.add(
            FunctionStat::LocalRejections,
            &["u", "*", "*", "bad_json"],
            1,
        );
        b.add(FunctionStat::Invocations, &["u", "nothing", "$LATEST"], 0);
        assert!(b.is_dirty());
        let seen = flushed(&b);
        assert!(!b.is_dirty());
        let want: Seen = [
            (key(FunctionStat::Invocations, &["u", "echo", "$LATEST"]), 3),
            (key(FunctionStat::Invocations, &["u", "echo", "live"]), 5),
            (
                key(FunctionStat::PayloadBytesIn, &["u", "echo", "$LATEST"]),
                30,
            ),
            (key(FunctionStat::Invocations, &["u", "echo$", "LATEST"]), 7),
            (
                key(FunctionStat::LocalRejections, &["u", "*", "*", "bad_json"]),
                1,
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(seen, want);
        assert_eq!(flushed(&b), Seen::new(), "nothing twice");
        // The next add is again the first of its flush.
        assert!(b.add(FunctionStat::Invocations, &["u", "echo", "$LATEST"], 1));
        assert_eq!(
            flushed(&b),
            [(key(FunctionStat::Invocations, &["u", "echo", "$LATEST"]), 1)]
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn a_counter_idle_for_a_whole_flush_is_forgotten() {
        let b = CounterBatch::new();
        b.add(FunctionStat::Invocations, &["u", "old", "$LATEST"], 1);
        flushed(&b);
        flushed(&b); // idle since: dropped here
        let held: usize = b
            .shards
            .iter()
            .map(|s| lock(s).counts.values().map(Vec::len).sum::<usize>())
            .sum();
        assert_eq!(held, 0);
    }

    #[test]
    fn adds_from_many_threads_racing_with_flushes_are_each_published_once() {
        let b = Arc::new(CounterBatch::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let f = if i % 2 == 0 { "a" } else { "b" };
                        b.add(FunctionStat::Invocations, &["u", f, "$LATEST"], 1);
                        b.add(FunctionStat::PayloadBytesOut, &["u", f, "$LATEST"], t + 1);
                    }
                })
            })
            .collect();
        let mut total = Seen::new();
        let mut merge = |seen: Seen| {
            for (k, n) in seen {
                *total.entry(k).or_default() += n;
            }
        };
        while threads.iter().any(|t| !t.is_finished()) {
            merge(flushed(&b));
        }
        for t in threads {
            t.join().unwrap();
        }
        merge(flushed(&b));
        for f in ["a", "b"] {
            assert_eq!(
                total[&key(FunctionStat::Invocations, &["u", f, "$LATEST"])],
                40_000
            );
            assert_eq!(
                total[&key(FunctionStat::PayloadBytesOut, &["u", f, "$LATEST"])],
                10_000 * (1 + 2 + 3 + 4)
            );
        }
    }
}
