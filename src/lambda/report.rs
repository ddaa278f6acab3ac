//! Lambda's `REPORT` line, read from the decoded `X-Amz-Log-Result` tail (`log_type: tail`):
//!
//! `REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t`
//! `Max Memory Used: 64 MB\tInit Duration: 150.12 ms\t\n`
//!
//! `Init Duration` is there only when the invocation started a new execution environment (a
//! cold start). The tail is the log's last 4 KB, so a line may be cut; a line that is not
//! complete (no final newline, a field without its unit, a required field missing) is not
//! read at all rather than read wrong: a cut `Init Duration` must not look like a warm start.

/// The figures of one `REPORT` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub duration_ms: f64,
    pub billed_duration_ms: u64,
    pub memory_size_mb: u64,
    pub max_memory_used_mb: u64,
    /// Present only on a cold start.
    pub init_duration_ms: Option<f64>,
}

impl Report {
    pub fn cold_start(&self) -> bool {
        self.init_duration_ms.is_some()
    }
}

const PREFIX: &str = "REPORT RequestId: ";

/// The last complete `REPORT` line of `log`, if there is one.
pub fn parse_report(log: &str) -> Option<Report> {
    // The REPORT line is the invocation's last; only a line that starts where a line starts
    // and ends with its newline is whole.
    let start = log
        .rmatch_indices(PREFIX)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || log.as_bytes()[i - 1] == b'\n')?;
    let rest = &log[start + PREFIX.len()..];
    let line = &rest[..rest.find('\n')?];
    parse_fields(line)
}

fn parse_fields(line: &str) -> Option<Report> {
    let mut fields = line.split('\t').map(str::trim).filter(|f| !f.is_empty());
    let request_id = fields.next()?;
    if request_id.contains(' ') {
        return None;
    }
    let (mut duration, mut billed, mut memory, mut max_memory, mut init) =
        (None, None, None, None, None);
    for field in fields {
        let (name, value) = field.split_once(": ")?;
        match name {
            "Duration" => duration = Some(number(value, "ms")?),
            "Billed Duration" => billed = Some(whole(value, "ms")?),
            "Memory Size" => memory = Some(whole(value, "MB")?),
            "Max Memory Used" => max_memory = Some(whole(value, "MB")?),
            "Init Duration" => init = Some(number(value, "ms")?),
            // XRAY TraceId, SegmentId, Sampled, Restore Duration …: not needed here.
            _ => {}
        }
    }
    Some(Report {
        duration_ms: duration?,
        billed_duration_ms: billed?,
        memory_size_mb: memory?,
        max_memory_used_mb: max_memory?,
        init_duration_ms: init,
    })
}

/// `12.34 ms` → 12.34 (a finite, non-negative number followed by exactly `unit`).
fn number(value: &str, unit: &str) -> Option<f64> {
    let (n, u) = value.split_once(' ')?;
    if u != unit || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    n.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn whole(value: &str, unit: &str) -> Option<u64> {
    let (n, u) = value.split_once(' ')?;
    if u != unit || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WARM: &str = "START RequestId: 6f8c1a52-1d0c-4b0c-9d8e-0123456789ab Version: $LATEST\n\
        hello from the function\n\
        END RequestId: 6f8c1a52-1d0c-4b0c-9d8e-0123456789ab\n\
        REPORT RequestId: 6f8c1a52-1d0c-4b0c-9d8e-0123456789ab\tDuration: 12.34 ms\t\
        Billed Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\t\n";

    const COLD: &str = "START RequestId: 1 Version: 3\nEND RequestId: 1\n\
        REPORT RequestId: 1\tDuration: 2.50 ms\tBilled Duration: 3 ms\tMemory Size: 256 MB\t\
        Max Memory Used: 70 MB\tInit Duration: 151.20 ms\t\n";

    #[test]
    fn reads_a_warm_report() {
        let r = parse_report(WARM).unwrap();
        assert_eq!(
            r,
            Report {
                duration_ms: 12.34,
                billed_duration_ms: 13,
                memory_size_mb: 128,
                max_memory_used_mb: 64,
                init_duration_ms: None,
            }
        );
        assert!(!r.cold_start());
    }

    #[test]
    fn reads_a_cold_start() {
        let r = parse_report(COLD).unwrap();
        assert_eq!(r.init_duration_ms, Some(151.2));
        assert_eq!(r.billed_duration_ms, 3);
        assert!(r.cold_start());
    }

    #[test]
    fn skips_fields_it_does_not_know() {
        let log = "REPORT RequestId: 1\tDuration: 1.00 ms\tBilled Duration: 1 ms\t\
            Memory Size: 128 MB\tMax Memory Used: 40 MB\t\nXRAY TraceId: 1-5e1b4151-43a9\t\
            SegmentId: 1\tSampled: true\t\n";
        assert_eq!(parse_report(log).unwrap().max_memory_used_mb, 40);
        let log = "REPORT RequestId: 1\tDuration: 1.00 ms\tBilled Duration: 1 ms\t\
            Memory Size: 128 MB\tMax Memory Used: 40 MB\tRestore Duration: 3.1 ms\t\n";
        assert!(parse_report(log).is_some());
    }

    #[test]
    fn blank_lines_after_the_report_do_not_matter() {
        let log = format!("{COLD}\n\n");
        assert!(parse_report(&log).unwrap().cold_start());
    }

    #[test]
    fn the_last_report_line_counts() {
        let two = format!("{COLD}{WARM}");
        assert!(!parse_report(&two).unwrap().cold_start());
    }

    #[test]
    fn a_cut_line_is_not_read() {
        // Every cut of the cold report short of its final newline: never a warm start.
        for end in 0..COLD.len() - 1 {
            let cut = &COLD[..end];
            assert_eq!(parse_report(cut), None, "{cut:?}");
        }
        // Cut at the front (the tail is the last 4 KB): the line does not start a line.
        let front_cut = &WARM[WARM
            .find("RequestId: 6f8c1a52-1d0c-4b0c-9d8e-0123456789ab\tD")
            .unwrap()..];
        assert_eq!(parse_report(front_cut), None);
        let mid = &WARM[WARM.find("EPORT").unwrap()..];
        assert_eq!(parse_report(mid), None);
    }

    #[test]
    fn a_report_quoted_inside_a_line_is_not_one() {
        let log = "my log says REPORT RequestId: 1\tDuration: 1 ms\tBilled Duration: 1 ms\t\
            Memory Size: 1 MB\tMax Memory Used: 1 MB\t\n";
        assert_eq!(parse_report(log), None);
    }

    #[test]
    fn wrong_units_or_numbers_are_refused() {
        for bad in [
            "REPORT RequestId: 1\tDuration: 1 s\tBilled Duration: 1 ms\tMemory Size: 1 MB\tMax Memory Used: 1 MB\n",
            "REPORT RequestId: 1\tDuration: 1 ms\tBilled Duration: 1.5 ms\tMemory Size: 1 MB\tMax Memory Used: 1 MB\n",
            "REPORT RequestId: 1\tDuration: -1 ms\tBilled Duration: 1 ms\tMemory Size: 1 MB\tMax Memory Used: 1 MB\n",
            "REPORT RequestId: 1\tDuration: 1 ms\tBilled Duration: 1 ms\tMemory Size: 1 MB\n",
            "REPORT RequestId: 1\tDuration: 1 ms\tBilled Duration: 1 ms\tMemory Size: 1 MB\tMax Memory Used: 1 MB\tInit Duration: x ms\n",
            "REPORT RequestId: 1\tDuration: 1e3 ms\tBilled Duration: 1 ms\tMemory Size: 1 MB\tMax Memory Used: 1 MB\n",
            "REPORT RequestId: 1\tDuration: 1 ms\tBilled Duration: 99999999999999999999999 ms\tMemory Size: 1 MB\tMax Memory Used: 1 MB\n",
        ] {
            assert_eq!(parse_report(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(s in "\\PC*") {
            let _ = parse_report(&s);
        }

        #[test]
        fn never_panics_on_report_like_text(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("REPORT RequestId: ".to_owned()),
                    Just("\t".to_owned()),
                    Just("\n".to_owned()),
                    Just(": ".to_owned()),
                    Just(" ms".to_owned()),
                    Just(" MB".to_owned()),
                    Just("Init Duration".to_owned()),
                    Just("Duration".to_owned()),
                    "[0-9.]{0,6}",
                    "\\PC{0,4}",
                ],
                0..40,
            )
        ) {
            let s = parts.concat();
            if let Some(r) = parse_report(&s) {
                prop_assert!(r.duration_ms.is_finite() && r.duration_ms >= 0.0);
            }
        }

        #[test]
        fn any_cut_of_a_report_is_whole_or_nothing(end in 0usize..COLD.len()) {
            let cut = &COLD[..=end];
            let parsed = parse_report(cut);
            if end + 1 == COLD.len() {
                prop_assert!(parsed.unwrap().cold_start());
            } else {
                prop_assert_eq!(parsed, None);
            }
        }
    }
}
