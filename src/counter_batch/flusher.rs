//! The process's one flush thread: once a batch has something, it waits one period and then
//! wakes that config's main thread (through the config's scheduler), which publishes the sums.
//! While no batch has anything it sleeps on a condition variable: an idle Envoy sees no
//! wake-ups from it.

use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::batch::CounterBatch;
use crate::panic_message::panic_message;
use crate::wake::Wake;

/// How long a count may wait in the module before Envoy's counter shows it.
pub const FLUSH_PERIOD: Duration = Duration::from_secs(1);

/// A config's place among the flusher's members (from [`Flusher::join`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberId(u64);

struct Member {
    id: MemberId,
    batch: Arc<CounterBatch>,
    wake: Arc<dyn Wake>,
    event: u64,
}

#[derive(Default)]
struct State {
    members: Vec<Member>,
    next_id: u64,
    /// A batch turned dirty since the last turn looked.
    poked: bool,
    stop: bool,
}

pub struct Flusher {
    state: Mutex<State>,
    changed: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    period: Duration,
}

impl Flusher {
    pub fn new(period: Duration) -> Self {
        Self {
            state: Mutex::default(),
            changed: Condvar::new(),
            thread: Mutex::new(None),
            period,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a config's batch; `wake(event)` asks for its flush. Starts the thread unless it
    /// runs; if it cannot start, counts are still published at the config's end.
    pub fn join(
        &'static self,
        batch: Arc<CounterBatch>,
        wake: Arc<dyn Wake>,
        event: u64,
        log_error: fn(&str),
    ) -> MemberId {
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            let id = MemberId(state.next_id);
            state.members.push(Member {
                id,
                batch,
                wake,
                event,
            });
            // Whatever the batch got before it joined is flushed by the next turn.
            state.poked = true;
            id
        };
        self.changed.notify_all();
        self.start(log_error);
        id
    }

    /// A batch turned dirty (a worker, once per flush).
    pub fn poke(&self) {
        let mut state = self.lock();
        if !state.poked {
            state.poked = true;
            drop(state);
            self.changed.notify_all();
        }
    }

    /// Removes a member; once this returns, its scheduler is never woken again (wakes happen
    /// under the same lock).
    pub fn leave(&self, id: MemberId) {
        self.lock().members.retain(|m| m.id != id);
    }

    fn start(&'static self, log_error: fn(&str)) {
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        self.lock().stop = false;
        let spawned = std::thread::Builder::new()
            .name("envoy-lambda-stats".into())
            .spawn(move || self.run(log_error));
        match spawned {
            Ok(handle) => *thread = Some(handle),
            Err(e) => log_error(&format!(
                "envoy-lambda: could not start the stats flush thread ({e}); per-function \
                 counters are published when their config ends"
            )),
        }
    }

    fn run(&self, log_error: fn(&str)) {
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.turn())) {
                Ok(ControlFlow::Break(())) => return,
                Ok(ControlFlow::Continue(())) => {}
                Err(payload) => {
                    log_error(&format!(
                        "envoy-lambda: panic in the stats flush thread: {}; going on",
                        panic_message(payload.as_ref())
                    ));
                    if self
                        .sleep_until(self.lock(), Instant::now() + self.period)
                        .is_none()
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Waits for a poke, lets one period pass, then wakes every member with something to
    /// publish. Breaks once told to stop.
    fn turn(&self) -> ControlFlow<()> {
        let mut state = self.lock();
        while !state.poked && !state.stop {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.stop {
            return ControlFlow::Break(());
        }
        let Some(mut state) = self.sleep_until(state, Instant::now() + self.period) else {
            return ControlFlow::Break(());
        };
        state.poked = false;
        for m in state.members.iter().filter(|m| m.batch.is_dirty()) {
            m.wake.wake(m.event);
        }
        ControlFlow::Continue(())
    }

    /// Sleeps until `deadline`; `None` when a stop cut it short.
    fn sleep_until<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        deadline: Instant,
    ) -> Option<MutexGuard<'a, State>> {
        loop {
            if state.stop {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return Some(state);
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Once no member is left, stops the thread and waits for it (config destroy): Envoy may
    /// unload the module after its last config, and no thread of ours may still run its code.
    /// Returns whether it stopped one.
    pub fn stop_when_idle(&self) -> bool {
        {
            let mut state = self.lock();
            if !state.members.is_empty() {
                return false;
            }
            state.stop = true;
        }
        self.changed.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        handle.is_some_and(|h| h.join().is_ok())
    }
}

/// The process's flusher.
pub fn global() -> &'static Flusher {
    static GLOBAL: std::sync::OnceLock<Flusher> = std::sync::OnceLock::new();
    GLOBAL.get_or_init(|| Flusher::new(FLUSH_PERIOD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FunctionStat;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Flushes its batch when woken, as the config's main-thread event does.
    struct FlushOnWake {
        batch: Arc<CounterBatch>,
        wakes: AtomicU64,
        published: AtomicU64,
    }

    impl Wake for FlushOnWake {
        fn wake(&self, _event: u64) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            self.batch
                .flush(|_, _, n| _ = self.published.fetch_add(n, Ordering::SeqCst));
        }
    }

    fn no_log(line: &str) {
        panic!("unexpected log line: {line}");
    }

    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn member(flusher: &'static Flusher) -> (Arc<FlushOnWake>, MemberId) {
        let batch = Arc::new(CounterBatch::new());
        let wake = Arc::new(FlushOnWake {
            batch: Arc::clone(&batch),
            wakes: AtomicU64::new(0),
            published: AtomicU64::new(0),
        });
        let id = flusher.join(batch, Arc::clone(&wake) as Arc<dyn Wake>, 7, no_log);
        (wake, id)
    }

    fn leaked(period_ms: u64) -> &'static Flusher {
        Box::leak(Box::new(Flusher::new(Duration::from_millis(period_ms))))
    }

    /// What a worker does: add, and poke the flusher on the first add since a flush.
    fn count(flusher: &Flusher, wake: &FlushOnWake, n: u64) {
        if wake
            .batch
            .add(FunctionStat::Invocations, &["u", "f", "q"], n)
        {
            flusher.poke();
        }
    }

    fn published(wake: &FlushOnWake) -> u64 {
        wake.published.load(Ordering::SeqCst)
    }

    fn wakes(wake: &FlushOnWake) -> u64 {
        wake.wakes.load(Ordering::SeqCst)
    }

    #[test]
    fn a_dirty_batch_is_flushed_one_period_later_and_an_idle_one_never_woken() {
        let flusher = leaked(50);
        let (busy, busy_id) = member(flusher);
        let (idle, idle_id) = member(flusher);
        let t0 = Instant::now();
        for _ in 0..10 {
            count(flusher, &busy, 1);
        }
        wait_for("the flush", || published(&busy) == 10);
        assert!(
            t0.elapsed() >= Duration::from_millis(50),
            "not before one period"
        );
        assert_eq!(wakes(&busy), 1, "ten adds, one wake");
        // Nothing new: the thread sleeps, nobody is woken again.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!((wakes(&busy), wakes(&idle)), (1, 0));
        // Later adds are flushed too.
        count(flusher, &busy, 5);
        wait_for("the second flush", || published(&busy) == 15);
        flusher.leave(busy_id);
        assert!(!flusher.stop_when_idle(), "a member is left");
        flusher.leave(idle_id);
        assert!(flusher.stop_when_idle(), "the thread stops and is joined");
    }

    #[test]
    fn a_member_that_left_is_never_woken_and_the_thread_restarts_for_a_new_one() {
        let flusher = leaked(30);
        let (gone, gone_id) = member(flusher);
        flusher.leave(gone_id);
        count(flusher, &gone, 1);
        flusher.poke();
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(wakes(&gone), 0);
        assert!(flusher.stop_when_idle());
        // Joining again starts a new thread.
        let (next, next_id) = member(flusher);
        count(flusher, &next, 2);
        wait_for("the flush after a restart", || published(&next) == 2);
        flusher.leave(next_id);
        assert!(flusher.stop_when_idle());
    }
}
