//! `log_report`: the `REPORT` line of a decoded `log_type: tail` log (the function writes the
//! log, so any bytes). Asserts a report read is whole and sane, and that cutting the input
//! short of its last newline never turns a cold start into a warm one.
#![no_main]

use envoy_lambda::lambda::report::parse_report;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Some(report) = parse_report(&text) else {
        return;
    };
    assert!(report.duration_ms.is_finite() && report.duration_ms >= 0.0);
    if let Some(init) = report.init_duration_ms {
        assert!(init.is_finite() && init >= 0.0);
    }
    // Cut the final newlines: the last line is no longer whole and no longer counts; only an
    // earlier whole one may.
    let cut = text.trim_end_matches('\n');
    let last_line = cut.rfind('\n').map_or(0, |i| i + 1);
    if let Some(r) = parse_report(cut) {
        assert!(cut[..last_line].contains("REPORT RequestId: "), "{r:?}");
    }
});
