//! Counts of the hooks Envoy runs, the ABI calls the module makes and the body slices it reads,
//! for `bench/count.py --counters`. Only with the cargo feature `abi-counters` (off by
//! default): without it every function here is empty and inlined away, so the release build
//! is unchanged.
//!
//! With the feature, the totals are written to the file named by `ENVOY_LAMBDA_COUNTS` every
//! [`DUMP_EVERY`] streams (at the destroy of a stream), as `name count` lines. Callgrind counts
//! the same calls exactly, but it runs Envoy ~50× slower, so a body arrives in fewer, larger
//! reads; these counters see the body hooks as they run at full speed.

#[cfg(feature = "abi-counters")]
mod on {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Streams between two snapshots of the counts.
    pub const DUMP_EVERY: u64 = 50;

    static COUNTS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

    pub fn note(name: &'static str) {
        note_n(name, 1);
    }

    pub fn note_n(name: &'static str, n: u64) {
        if let Ok(mut c) = COUNTS.lock() {
            *c.entry(name).or_default() += n;
        }
    }

    /// A stream ended: every DUMP_EVERY streams, the totals go to `$ENVOY_LAMBDA_COUNTS`.
    pub fn stream_done() {
        let text = {
            let Ok(mut c) = COUNTS.lock() else { return };
            let streams = c.entry("streams_destroyed").or_default();
            *streams += 1;
            if *streams % DUMP_EVERY != 0 {
                return;
            }
            c.iter()
                .map(|(k, v)| format!("{k} {v}\n"))
                .collect::<String>()
        };
        if let Some(path) = std::env::var_os("ENVOY_LAMBDA_COUNTS") {
            let tmp = std::path::PathBuf::from(&path).with_extension("tmp");
            // A counting aid only: a failed write is just a missing snapshot.
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }
}

#[cfg(feature = "abi-counters")]
pub use on::{note, note_n, stream_done};

#[cfg(not(feature = "abi-counters"))]
#[inline(always)]
pub fn note(_name: &'static str) {}

#[cfg(not(feature = "abi-counters"))]
#[inline(always)]
pub fn note_n(_name: &'static str, _n: u64) {}

#[cfg(not(feature = "abi-counters"))]
#[inline(always)]
pub fn stream_done() {}
