//! The one timestamp format of the store.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `time` as RFC 3339 in UTC with nine fractional digits, e.g.
/// `2026-11-03T12:04:05.000000123Z`.
///
/// Every time the store writes has this fixed width, so comparing the text compares the
/// times (lease expiry, ordering by creation).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let t = UNIX_EPOCH + Duration::new(1_780_000_000, 5);
/// assert_eq!(relo_store::rfc3339_utc(t), "2026-05-28T20:26:40.000000005Z");
/// ```
pub fn rfc3339_utc(time: SystemTime) -> String {
    let nanos: i128 = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
    };
    let secs = nanos.div_euclid(1_000_000_000);
    let subsec = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{subsec:09}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000000Z"),
            (951_782_400, 0, "2000-02-29T00:00:00.000000000Z"),
            (1_709_251_199, 999_999_999, "2024-02-29T23:59:59.999999999Z"),
            (4_102_444_800, 1, "2100-01-01T00:00:00.000000001Z"),
        ];
        for (secs, nanos, expected) in cases {
            assert_eq!(
                rfc3339_utc(UNIX_EPOCH + Duration::new(secs, nanos)),
                expected
            );
        }
    }

    #[test]
    fn formats_instants_before_the_epoch() {
        let t = UNIX_EPOCH - Duration::new(1, 0);
        assert_eq!(rfc3339_utc(t), "1969-12-31T23:59:59.000000000Z");
    }

    #[test]
    fn text_order_is_time_order() {
        let earlier = rfc3339_utc(UNIX_EPOCH + Duration::new(9, 999_999_999));
        let later = rfc3339_utc(UNIX_EPOCH + Duration::new(10, 0));
        assert!(earlier < later);
    }
}
