//! Per-function counters summed in the module and published to Envoy once a period.
//!
//! A labelled counter add through Envoy's ABI costs ~3k instructions on the worker (Envoy
//! encodes the label values into a stat name and looks the counter up, under the symbol
//! table's lock), once per counter per request. Here a worker adds to its config's
//! [`CounterBatch`] instead; the process's `Flusher` thread wakes the config's main thread
//! one `FLUSH_PERIOD` (1 s) after the first add, and that main-thread event publishes each sum with
//! one config-level add per worker. What is in a batch when its config ends is published then. Histograms
//! are not batched: each sample is a value of its own.

mod batch;
mod flusher;

pub use batch::CounterBatch;
pub use flusher::{MemberId, global};
