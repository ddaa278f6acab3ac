//! How background work asks Envoy to run something on one of its threads: a config's
//! scheduler (main thread) or a stream's (its worker). Implemented over Envoy's schedulers in
//! `abi`, and by fakes in tests.

/// Asks Envoy to deliver `event` to the scheduler's owner (Envoy: `…scheduler_commit`,
/// callable from any thread). Callers wake only registrations that are still alive.
pub trait Wake: Send + Sync {
    fn wake(&self, event: u64);
}
