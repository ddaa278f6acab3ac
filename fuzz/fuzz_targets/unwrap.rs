//! `response_format: unwrap`: a function's result read as an HTTP response. Input: one byte
//! choosing the request format, then the function's payload.
//!
//! What Envoy would be asked to send must be a valid HTTP response: a status of 200–599
//! (1xx is not a final response), header names that are RFC 9110 tokens and values without
//! CR, LF, NUL or other control bytes (tab aside).
#![no_main]

use envoy_lambda::lambda::unwrap::unwrap;
use envoy_lambda::lambda::RequestFormat;
use envoy_lambda_fuzz::{is_field_value, is_token};
use libfuzzer_sys::fuzz_target;

const FORMATS: [RequestFormat; 4] = [
    RequestFormat::Raw,
    RequestFormat::ApigwV2,
    RequestFormat::ApigwV1,
    RequestFormat::Alb,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    let Ok(response) = unwrap(format, payload) else {
        return;
    };
    assert!(
        (200..=599).contains(&response.status),
        "status {} is not a final HTTP status",
        response.status
    );
    for (name, value) in &response.headers {
        assert!(
            is_token(name),
            "header name {name:?} is not an RFC 9110 token"
        );
        assert!(
            is_field_value(value),
            "header {name}: value {value:?} has a control byte"
        );
    }
});
