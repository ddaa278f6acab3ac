//! The two time formats events carry, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::clock::civil_from_days;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Milliseconds since the epoch (`timeEpoch`, `requestTimeEpoch`).
pub fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `12/Mar/2020:19:03:58 +0000`, the CLF form API Gateway uses.
pub fn clf(t: SystemTime) -> String {
    let secs = epoch_millis(t) / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{d:02}/{}/{y:04}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_like_api_gateway() {
        // AWS's HTTP API example: "12/Mar/2020:19:03:58 +0000", timeEpoch 1583348638390.
        let t = UNIX_EPOCH + Duration::from_millis(1_584_039_838_390);
        assert_eq!(clf(t), "12/Mar/2020:19:03:58 +0000");
        assert_eq!(epoch_millis(t), 1_584_039_838_390);
        assert_eq!(clf(UNIX_EPOCH), "01/Jan/1970:00:00:00 +0000");
    }
}
