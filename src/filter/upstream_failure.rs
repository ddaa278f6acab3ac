//! Who produced an error response: Lambda, or Envoy itself because it could not get Lambda's
//! answer (connection refused, route timeout, no healthy host …). Only Lambda's answers are
//! Lambda API errors; Envoy's own get codes and a counter of their own.
//!
//! Envoy says so through the stream info: `response.code_details` is `via_upstream` for the
//! upstream's answer and Envoy's reason otherwise (`response_timeout`,
//! `upstream_reset_before_response_started{remote_connection_failure|…}`), and
//! `response.flags` carries the reason as bits. Lambda's answers also always carry
//! `x-amzn-RequestId`, which is the fallback when Envoy gives no details.

/// Envoy's legacy response-flag bits (`%RESPONSE_FLAGS%`).
mod flag {
    pub const FAILED_LOCAL_HEALTH_CHECK: u64 = 0x1; // LH
    pub const NO_HEALTHY_UPSTREAM: u64 = 0x2; // UH
    pub const UPSTREAM_REQUEST_TIMEOUT: u64 = 0x4; // UT
    pub const LOCAL_RESET: u64 = 0x8; // LR
    pub const UPSTREAM_REMOTE_RESET: u64 = 0x10; // UR
    pub const UPSTREAM_CONNECTION_FAILURE: u64 = 0x20; // UF
    pub const UPSTREAM_CONNECTION_TERMINATION: u64 = 0x40; // UC
    pub const UPSTREAM_OVERFLOW: u64 = 0x80; // UO
    pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: u64 = 0x8000; // URX
}

const UNREACHABLE_FLAGS: u64 = flag::FAILED_LOCAL_HEALTH_CHECK
    | flag::NO_HEALTHY_UPSTREAM
    | flag::LOCAL_RESET
    | flag::UPSTREAM_REMOTE_RESET
    | flag::UPSTREAM_CONNECTION_FAILURE
    | flag::UPSTREAM_CONNECTION_TERMINATION
    | flag::UPSTREAM_OVERFLOW
    | flag::UPSTREAM_RETRY_LIMIT_EXCEEDED;

/// Envoy could not get Lambda's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No connection, a reset before the answer, no healthy host, an overflowing pool.
    Unreachable,
    /// The route's timeout expired first.
    Timeout,
}

impl UpstreamFailure {
    /// (client status, code, message) of the JSON answer.
    pub fn reply(self) -> (u32, &'static str, &'static str) {
        match self {
            UpstreamFailure::Unreachable => (
                503,
                "upstream_unreachable",
                "the gateway could not reach the Lambda endpoint",
            ),
            UpstreamFailure::Timeout => (
                504,
                "upstream_timeout",
                "the gateway's route timeout expired before Lambda answered",
            ),
        }
    }
}

/// Where an error response came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorOrigin {
    /// Lambda answered (a Lambda API error).
    Lambda,
    /// Envoy failed to get Lambda's answer.
    Envoy(UpstreamFailure),
    /// Some other local reply (another filter's, e.g. a rate limit): not ours to rewrite.
    Other,
}

/// Decides who produced an error `status`, from Envoy's `details` and `flags` for the stream
/// and whether the answer carries Lambda's request id.
pub fn error_origin(
    status: u32,
    details: Option<&str>,
    flags: Option<u64>,
    has_lambda_request_id: bool,
) -> ErrorOrigin {
    let from_upstream = match details {
        Some(d) => d == "via_upstream",
        None => has_lambda_request_id,
    };
    if from_upstream {
        return ErrorOrigin::Lambda;
    }
    let flags = flags.unwrap_or(0);
    if flags & flag::UPSTREAM_REQUEST_TIMEOUT != 0 {
        ErrorOrigin::Envoy(UpstreamFailure::Timeout)
    } else if flags & UNREACHABLE_FLAGS != 0 {
        ErrorOrigin::Envoy(UpstreamFailure::Unreachable)
    } else {
        match status {
            503 => ErrorOrigin::Envoy(UpstreamFailure::Unreachable),
            504 => ErrorOrigin::Envoy(UpstreamFailure::Timeout),
            _ => ErrorOrigin::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorOrigin::*;
    use UpstreamFailure::*;

    #[test]
    fn lambda_answers_come_via_upstream() {
        // Lambda's own 503/504 (request id, via_upstream) stay Lambda API errors.
        assert_eq!(
            error_origin(503, Some("via_upstream"), Some(0), true),
            Lambda
        );
        assert_eq!(
            error_origin(504, Some("via_upstream"), Some(0), false),
            Lambda
        );
        // Without details, Lambda's request id decides.
        assert_eq!(error_origin(503, None, None, true), Lambda);
    }

    #[test]
    fn envoys_own_failures_are_told_apart() {
        // What Envoy 1.40 reports for a refused connection and a route timeout.
        let refused = "upstream_reset_before_response_started{remote_connection_failure|\
                       delayed_connect_error:_Connection_refused}";
        assert_eq!(
            error_origin(503, Some(refused), Some(0x20), false),
            Envoy(Unreachable)
        );
        assert_eq!(
            error_origin(504, Some("response_timeout"), Some(0x4), false),
            Envoy(Timeout)
        );
        assert_eq!(
            error_origin(503, Some("no_healthy_upstream"), Some(0x2), false),
            Envoy(Unreachable)
        );
        // No flags: the status decides; no details and no request id: Envoy's.
        assert_eq!(error_origin(504, Some("x"), None, false), Envoy(Timeout));
        assert_eq!(error_origin(503, None, None, false), Envoy(Unreachable));
        // Another filter's local reply is left alone.
        assert_eq!(
            error_origin(429, Some("rate_limited"), Some(0x800), false),
            Other
        );
    }

    #[test]
    fn replies() {
        assert_eq!(Unreachable.reply().0, 503);
        assert_eq!(Timeout.reply().1, "upstream_timeout");
    }
}
