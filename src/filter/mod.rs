//! The per-stream state machine: find the route's function, hash the body as it arrives, sign
//! at end of stream, rewrite the request into an Invoke call, and flag function errors.

mod client_headers;
mod log_pace;
mod observe;
mod reply;
mod shared;
mod stream;
mod trace;
mod upstream_failure;

pub use reply::LocalReply;
pub use shared::SharedConfig;
pub use stream::{BodyStatus, HeadersStatus, LambdaFilter, STREAM_CUT_EVENT, TrailersStatus};
