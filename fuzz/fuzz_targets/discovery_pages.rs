//! Discovery's ListFunctions / ListAliases / ListVersionsByFunction pages: a page or an error,
//! never a panic; the last page has no marker (absent, `null` and `""` all mean "done").
#![no_main]

use envoy_lambda::discovery::{
    parse_aliases_page, parse_functions_page, parse_versions_page, Page,
};
use envoy_lambda::lambda::aws_error::AwsError;
use libfuzzer_sys::fuzz_target;

fn check<T>(page: Result<Page<T>, impl std::fmt::Display>) {
    match page {
        Ok(p) => assert_ne!(p.next_marker.as_deref(), Some(""), "an empty marker loops"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    check(parse_functions_page(data));
    check(parse_aliases_page(data));
    check(parse_versions_page(data));
    // What a failed listing logs: the one reader of AWS error bodies.
    let _ = AwsError::read(None, data).summary();
});
