//! Background work that never dies silently: each turn of a loop runs under `catch_unwind`;
//! a panic is logged (one line), reported to the caller (who counts it) and the loop goes on
//! after a back-off (1 s doubling to a minute), so a bug that panics on every turn costs a
//! line a minute, not a spinning thread, and a bug that panics once costs one turn.

use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use super::backoff::Backoff;

/// Longest pause between restarts.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);

/// Runs `turn` until it breaks. On a panic, `on_panic` gets the log line (naming `what` and
/// the panic message) and `sleep` the delay before the next turn.
pub fn supervise(
    what: &str,
    mut turn: impl FnMut() -> ControlFlow<()>,
    mut on_panic: impl FnMut(String),
    mut sleep: impl FnMut(Duration),
) {
    let mut backoff = Backoff::new(MAX_RESTART_DELAY);
    loop {
        match catch_unwind(AssertUnwindSafe(&mut turn)) {
            Ok(ControlFlow::Break(())) => return,
            Ok(ControlFlow::Continue(())) => {
                backoff.on_success(0);
            }
            Err(payload) => {
                let delay = backoff.on_failure(0);
                on_panic(format!(
                    "envoy-lambda: panic in {what}: {}; restarting it in {delay:?}",
                    panic_message(payload.as_ref())
                ));
                sleep(delay);
            }
        }
    }
}

pub use crate::panic_message::panic_message;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_are_logged_and_the_loop_restarts_after_a_growing_back_off() {
        let mut turns = 0;
        let mut lines = Vec::new();
        let mut sleeps = Vec::new();
        supervise(
            "the timer",
            || {
                turns += 1;
                match turns {
                    1..=3 => panic!("bug number {turns}"),
                    4 => ControlFlow::Continue(()),
                    5 => panic!("again"),
                    _ => ControlFlow::Break(()),
                }
            },
            |line| lines.push(line),
            |d| sleeps.push(d.as_secs()),
        );
        assert_eq!(turns, 6);
        assert_eq!(
            lines[0],
            "envoy-lambda: panic in the timer: bug number 1; restarting it in 1s"
        );
        assert_eq!(lines.len(), 4);
        // 1, 2, 4 s; a clean turn resets the back-off.
        assert_eq!(sleeps, [1, 2, 4, 1]);
    }
}
