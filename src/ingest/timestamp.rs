//! Timestamp parsing for every shape the supported exports use (see FORMATS.md).
//!
//! Owns: turning one raw cell into a UTC instant (seconds since the Unix epoch) plus the resolution
//! the source really has (second or day). Must not: guess silently. A value that fits no known shape,
//! or lies outside the plausible range for marketplace data, is an error the caller reports with file,
//! line and column.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::Serialize;

/// How precise a source's instants are. Timing statistics (hour of week, order→review lag in hours)
/// only run on `Second` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeResolution {
    /// Time of day is known.
    Second,
    /// Only the calendar day is known.
    Day,
}

/// A parsed instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Resolution of this particular value.
    pub resolution: TimeResolution,
}

/// How to read numbers that look like epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    /// Decide by magnitude (seconds, milliseconds or microseconds).
    Auto,
    /// Always seconds.
    Seconds,
    /// Always milliseconds.
    Millis,
}

/// Earliest plausible instant for marketplace data: 1995-01-01 (Amazon's first sale was in 1995).
pub const MIN_PLAUSIBLE: i64 = 788_918_400;
/// How far in the future (relative to `now`) a value may lie before it is rejected: two days, to
/// tolerate time-zone skew in "today's" exports.
pub const FUTURE_SLACK_SECS: i64 = 2 * 86_400;

/// Why a value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Empty cell.
    #[error("empty date")]
    Empty,
    /// No known shape.
    #[error("unrecognised date/time format")]
    Unrecognised,
    /// Parsed, but before 1995.
    #[error("date before 1995-01-01 is not plausible for marketplace data")]
    TooEarly,
    /// Parsed, but in the future.
    #[error("date lies in the future")]
    Future,
    /// Negative epoch number.
    #[error("negative epoch value")]
    NegativeEpoch,
}

/// Parse one cell. `naive_offset_secs` is applied to values without an offset (local time of the
/// source; 0 = UTC). `now` bounds future dates.
pub fn parse_timestamp(
    raw: &str,
    unit: EpochUnit,
    naive_offset_secs: i64,
    now: i64,
) -> Result<Instant, TimestampError> {
    let inst = parse_unchecked(raw, unit, naive_offset_secs)?;
    if inst.secs < MIN_PLAUSIBLE {
        return Err(TimestampError::TooEarly);
    }
    if inst.secs > now + FUTURE_SLACK_SECS {
        return Err(TimestampError::Future);
    }
    Ok(inst)
}

/// Parse with a caller-supplied chrono format (generic mapping files). Falls back to nothing: the
/// user said what the format is.
pub fn parse_with_format(
    raw: &str,
    fmt: &str,
    naive_offset_secs: i64,
    now: i64,
) -> Result<Instant, TimestampError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(TimestampError::Empty);
    }
    let inst = if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
        Instant {
            secs: dt.timestamp(),
            resolution: TimeResolution::Second,
        }
    } else if let Ok(ndt) = NaiveDateTime::parse_from_str(s, fmt) {
        Instant {
            secs: ndt.and_utc().timestamp() - naive_offset_secs,
            resolution: TimeResolution::Second,
        }
    } else if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
        Instant {
            secs: day_secs(d),
            resolution: TimeResolution::Day,
        }
    } else {
        return Err(TimestampError::Unrecognised);
    };
    if inst.secs < MIN_PLAUSIBLE {
        return Err(TimestampError::TooEarly);
    }
    if inst.secs > now + FUTURE_SLACK_SECS {
        return Err(TimestampError::Future);
    }
    Ok(inst)
}

fn day_secs(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp()
}

fn parse_unchecked(
    raw: &str,
    unit: EpochUnit,
    naive_offset: i64,
) -> Result<Instant, TimestampError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(TimestampError::Empty);
    }
    if let Some(inst) = parse_epoch(s, unit)? {
        return Ok(inst);
    }
    // RFC 3339 / ISO 8601 with offset: 2017-06-17T08:04:21+00:00, ...Z, +0530, fractional seconds.
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(second(dt.timestamp()));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f %#z", // Shopify: 2024-01-05 10:22:13 -0500
        "%Y-%m-%dT%H:%M%#z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Ok(second(dt.timestamp()));
        }
    }
    // Explicit UTC suffix: Judge.me "2025-03-02 10:12:00 UTC", "... GMT".
    for suffix in [" UTC", " GMT", " utc", "Z"] {
        if let Some(body) = s.strip_suffix(suffix) {
            if let Some(ndt) = parse_naive_datetime(body.trim_end()) {
                return Ok(second(ndt.and_utc().timestamp()));
            }
        }
    }
    if let Some(ndt) = parse_naive_datetime(s) {
        return Ok(second(ndt.and_utc().timestamp() - naive_offset));
    }
    if let Some(d) = parse_date(s) {
        return Ok(Instant {
            secs: day_secs(d),
            resolution: TimeResolution::Day,
        });
    }
    Err(TimestampError::Unrecognised)
}

fn second(secs: i64) -> Instant {
    Instant {
        secs,
        resolution: TimeResolution::Second,
    }
}

fn parse_naive_datetime(s: &str) -> Option<NaiveDateTime> {
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        // European Excel: day first, dotted (never month first).
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
    ] {
        if let Ok(v) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(v);
        }
    }
    None
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    // "08 9, 2004" (Amazon 2014/2018 reviewTime: month day, year), "January 15, 2024" (Helium 10).
    for fmt in [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%m %d, %Y",
        "%B %d, %Y",
        "%b %d, %Y",
        "%d %B %Y",
        "%Y%m%d",
        "%d.%m.%Y",
    ] {
        if let Ok(v) = NaiveDate::parse_from_str(s, fmt) {
            return Some(v);
        }
    }
    None
}

/// Numbers: integer or float (`1.52309e+12`) epochs. Returns `Ok(None)` if `s` is not numeric.
fn parse_epoch(s: &str, unit: EpochUnit) -> Result<Option<Instant>, TimestampError> {
    let bytes = s.as_bytes();
    let numeric = bytes
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && bytes.iter().any(|b| b.is_ascii_digit());
    // "2024-03-01" is digits and dashes too: an epoch has no dash after its first character unless
    // it is an exponent sign.
    if !numeric || s[1..].contains('-') && !s.contains(['e', 'E']) {
        return Ok(None);
    }
    if s.len() == 8 && !s.contains(['.', 'e', 'E', '-', '+']) {
        // 20240301: a compact date, not an epoch in 1970.
        return Ok(None);
    }
    let v: f64 = match s.parse() {
        Ok(v) => v,
        Err(_) => return Ok(None),
    };
    if !v.is_finite() {
        return Err(TimestampError::Unrecognised);
    }
    if v < 0.0 {
        return Err(TimestampError::NegativeEpoch);
    }
    let secs = match unit {
        EpochUnit::Seconds => v,
        // A millisecond column holding micro- or nanoseconds (some re-exports do): a millisecond
        // value of 1e14 would be the year 5138, so the magnitude is unambiguous.
        EpochUnit::Millis if v >= 1e17 => v / 1e9,
        EpochUnit::Millis if v >= 1e14 => v / 1e6,
        EpochUnit::Millis => v / 1e3,
        EpochUnit::Auto => {
            if v >= 1e17 {
                v / 1e9 // nanoseconds
            } else if v >= 1e14 {
                v / 1e6 // microseconds
            } else if v >= 1e11 {
                v / 1e3 // milliseconds
            } else {
                v
            }
        }
    };
    if secs > 4.0e9 {
        return Err(TimestampError::Future);
    }
    Ok(Some(Instant {
        secs: secs.floor() as i64,
        resolution: TimeResolution::Second,
    }))
}

/// Format seconds since the epoch as RFC 3339 UTC (`2024-03-02T04:30:00Z`).
pub fn format_utc(secs: i64) -> String {
    let mut s = String::with_capacity(20);
    // Writing to a String cannot fail.
    let _ = write_utc(&mut s, secs);
    s
}

/// Write `format_utc(secs)` to `out` (tables of tens of millions of rows format one per row into a
/// buffer: no allocation, no formatting machinery for years 0–9999; chrono beyond).
pub fn write_utc(out: &mut impl std::fmt::Write, secs: i64) -> std::fmt::Result {
    let day = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(day);
    if (0..=9999).contains(&y) {
        let t = secs.rem_euclid(86_400);
        let (hh, mm, ss) = (t / 3600, t % 3600 / 60, t % 60);
        let mut b = *b"0000-00-00T00:00:00Z";
        let two = |b: &mut [u8; 20], at: usize, v: i64| {
            b[at] = b'0' + (v / 10) as u8;
            b[at + 1] = b'0' + (v % 10) as u8;
        };
        two(&mut b, 0, y / 100);
        two(&mut b, 2, y % 100);
        two(&mut b, 5, m as i64);
        two(&mut b, 8, d as i64);
        two(&mut b, 11, hh);
        two(&mut b, 14, mm);
        two(&mut b, 17, ss);
        return out.write_str(std::str::from_utf8(&b).unwrap_or_default());
    }
    match Utc.timestamp_opt(secs, 0).single() {
        Some(dt) => write!(out, "{}", dt.format("%Y-%m-%dT%H:%M:%SZ")),
        None => write!(out, "{secs}"),
    }
}

/// Format the calendar day (UTC) of an instant.
pub fn format_day(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    if (0..=9999).contains(&y) {
        return format!("{y:04}-{m:02}-{d:02}");
    }
    match Utc.timestamp_opt(secs, 0).single() {
        Some(dt) => dt.format("%Y-%m-%d").to_string(),
        None => secs.to_string(),
    }
}

/// Proleptic Gregorian (year, month, day) of a day number (days since 1970-01-01), after Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The hand-written formatter agrees with chrono on every instant it handles.
        #[test]
        fn fast_formatting_matches_chrono(secs in -62_167_219_200i64..253_402_300_799i64) {
            let dt = Utc.timestamp_opt(secs, 0).single().unwrap();
            proptest::prop_assert_eq!(format_utc(secs), dt.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            proptest::prop_assert_eq!(format_day(secs), dt.format("%Y-%m-%d").to_string());
        }
    }

    const NOW: i64 = 1_900_000_000; // 2030

    fn p(s: &str) -> Instant {
        parse_timestamp(s, EpochUnit::Auto, 0, NOW).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn offset_is_applied_to_utc() {
        let i = p("2024-03-01T23:30:00-05:00");
        assert_eq!(format_utc(i.secs), "2024-03-02T04:30:00Z");
        assert_eq!(i.resolution, TimeResolution::Second);
    }

    #[test]
    fn rfc3339_shapes() {
        assert_eq!(
            format_utc(p("2017-06-17T08:04:21+00:00").secs),
            "2017-06-17T08:04:21Z"
        );
        assert_eq!(
            format_utc(p("2017-06-17T08:04:21+09:00").secs),
            "2017-06-16T23:04:21Z"
        );
        assert_eq!(
            format_utc(p("2017-06-17T08:04:21Z").secs),
            "2017-06-17T08:04:21Z"
        );
        assert_eq!(
            format_utc(p("2017-06-17T08:04:21.123Z").secs),
            "2017-06-17T08:04:21Z"
        );
        assert_eq!(
            format_utc(p("2017-06-17T08:04:21+0530").secs),
            "2017-06-17T02:34:21Z"
        );
    }

    #[test]
    fn shopify_shape() {
        assert_eq!(
            format_utc(p("2024-01-05 10:22:13 -0500").secs),
            "2024-01-05T15:22:13Z"
        );
    }

    #[test]
    fn judgeme_utc_suffix() {
        assert_eq!(
            format_utc(p("2025-03-02 10:12:00 UTC").secs),
            "2025-03-02T10:12:00Z"
        );
    }

    #[test]
    fn naive_is_utc_or_given_offset() {
        assert_eq!(
            format_utc(p("2018-07-07 22:09:11").secs),
            "2018-07-07T22:09:11Z"
        );
        let i = parse_timestamp("2018-07-07 22:09:11", EpochUnit::Auto, -7 * 3600, NOW).unwrap();
        assert_eq!(format_utc(i.secs), "2018-07-08T05:09:11Z");
    }

    #[test]
    fn epochs_by_magnitude() {
        assert_eq!(format_utc(p("1588687728923").secs), "2020-05-05T14:08:48Z");
        assert_eq!(format_utc(p("1.52309e+12").secs), "2018-04-07T08:33:20Z");
        assert_eq!(format_utc(p("1092009600").secs), "2004-08-09T00:00:00Z");
        assert_eq!(
            format_utc(p("1588687728923000").secs),
            "2020-05-05T14:08:48Z"
        );
    }

    #[test]
    fn epoch_unit_forced() {
        let i = parse_timestamp("1092009600", EpochUnit::Seconds, 0, NOW).unwrap();
        assert_eq!(format_utc(i.secs), "2004-08-09T00:00:00Z");
        let us = parse_timestamp("1588687728923000", EpochUnit::Millis, 0, NOW).unwrap();
        assert_eq!(us.secs, 1_588_687_728);
        assert_eq!(
            parse_timestamp("02.01.2024", EpochUnit::Auto, 0, NOW)
                .unwrap()
                .secs,
            parse_timestamp("2024-01-02", EpochUnit::Auto, 0, NOW)
                .unwrap()
                .secs
        );
        assert_eq!(
            parse_timestamp("02.01.2024 10:30", EpochUnit::Auto, 0, NOW)
                .unwrap()
                .secs,
            parse_timestamp("2024-01-02T10:30:00Z", EpochUnit::Auto, 0, NOW)
                .unwrap()
                .secs
        );
        let i = parse_timestamp("1588687728923", EpochUnit::Millis, 0, NOW).unwrap();
        assert_eq!(format_utc(i.secs), "2020-05-05T14:08:48Z");
    }

    #[test]
    fn day_resolution_shapes() {
        for (s, want) in [
            ("2015-08-31", "2015-08-31"),
            ("08 9, 2004", "2004-08-09"),
            ("January 15, 2024", "2024-01-15"),
            ("Jan 15, 2024", "2024-01-15"),
            ("2024/01/15", "2024-01-15"),
            ("20240115", "2024-01-15"),
        ] {
            let i = p(s);
            assert_eq!(format_day(i.secs), want, "{s}");
            assert_eq!(i.resolution, TimeResolution::Day, "{s}");
        }
    }

    #[test]
    fn rejects_implausible() {
        assert_eq!(
            parse_timestamp("", EpochUnit::Auto, 0, NOW),
            Err(TimestampError::Empty)
        );
        assert_eq!(
            parse_timestamp("1990-01-01", EpochUnit::Auto, 0, NOW),
            Err(TimestampError::TooEarly)
        );
        assert_eq!(
            parse_timestamp("2031-01-01", EpochUnit::Auto, 0, NOW),
            Err(TimestampError::Future)
        );
        assert_eq!(
            parse_timestamp("-1588687728", EpochUnit::Auto, 0, NOW),
            Err(TimestampError::NegativeEpoch)
        );
        assert_eq!(
            parse_timestamp("yesterday", EpochUnit::Auto, 0, NOW),
            Err(TimestampError::Unrecognised)
        );
        assert_eq!(
            parse_timestamp("2024-13-45", EpochUnit::Auto, 0, NOW),
            Err(TimestampError::Unrecognised)
        );
    }

    #[test]
    fn explicit_format() {
        let i = parse_with_format("02/03/2024 14:05", "%d/%m/%Y %H:%M", 3600, NOW).unwrap();
        assert_eq!(format_utc(i.secs), "2024-03-02T13:05:00Z");
        let i = parse_with_format("02/03/2024", "%d/%m/%Y", 0, NOW).unwrap();
        assert_eq!(i.resolution, TimeResolution::Day);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_900_000_000;

    proptest! {
        /// Any text: an instant or an error, never a panic.
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_timestamp(&s, EpochUnit::Auto, 0, NOW);
            let _ = parse_with_format(&s, "%d/%m/%Y %H:%M", 0, NOW);
        }

        /// RFC 3339 with any offset round-trips to the same instant.
        #[test]
        fn rfc3339_round_trip(secs in MIN_PLAUSIBLE..NOW, off_min in -720i32..=840) {
            let off = chrono::FixedOffset::east_opt(off_min * 60).unwrap();
            let dt = chrono::Utc.timestamp_opt(secs, 0).unwrap().with_timezone(&off);
            let text = dt.to_rfc3339();
            let got = parse_timestamp(&text, EpochUnit::Auto, 0, NOW).unwrap();
            prop_assert_eq!(got.secs, secs);
            prop_assert_eq!(got.resolution, TimeResolution::Second);
        }

        /// Epoch seconds, milliseconds and microseconds of the same instant agree.
        #[test]
        fn epoch_units_agree(secs in MIN_PLAUSIBLE..NOW) {
            let s = parse_timestamp(&secs.to_string(), EpochUnit::Auto, 0, NOW).unwrap().secs;
            let ms = parse_timestamp(&(secs * 1000).to_string(), EpochUnit::Auto, 0, NOW).unwrap().secs;
            let us = parse_timestamp(&(secs * 1_000_000).to_string(), EpochUnit::Auto, 0, NOW).unwrap().secs;
            prop_assert_eq!((s, ms, us), (secs, secs, secs));
        }
    }
}
