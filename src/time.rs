//! Instants: the one parser and formatter of RFC 3339 times in ruledeck.
//!
//! Owns: what a time is (whole seconds since the Unix epoch, UTC) and the two rules for
//! reading one. A time *literal* in a deck (`@2026-11-21T08:00:00Z`) must be exact: whole
//! seconds, no leap second. A time in *data* (a request's `now`, a provider's value) is
//! taken as given and rounded down to the whole second (toward the past: `08:00:00.9Z` is
//! `08:00:00Z`), a leap second `:60` read as `:59`; data may also give whole seconds since
//! the epoch as a JSON integer. Must not: know about spans or diagnostics (callers turn a
//! [`TimeError`] into theirs).

use std::fmt;

/// Why a text is not an acceptable time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// Not an RFC 3339 instant; the parser's reason.
    Invalid(String),
    /// A fractional second in a literal.
    Fraction,
    /// A leap second (`:60`) in a literal.
    LeapSecond,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Invalid(e) => write!(f, "not an RFC 3339 instant: {e}"),
            TimeError::Fraction => f.write_str("fractional seconds"),
            TimeError::LeapSecond => f.write_str("a leap second (`:60`)"),
        }
    }
}

fn parse(text: &str) -> Result<(i64, u32), TimeError> {
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| TimeError::Invalid(e.to_string()))?;
    Ok((t.timestamp(), t.timestamp_subsec_nanos()))
}

/// A time literal's instant: whole seconds exactly (an all-zero fraction such as `.000` is
/// whole), any offset converted to UTC.
pub fn parse_literal(text: &str) -> Result<i64, TimeError> {
    match parse(text)? {
        (t, 0) => Ok(t),
        // chrono represents a leap second as 1_000_000_000 nanoseconds or more.
        (_, n) if n >= 1_000_000_000 => Err(TimeError::LeapSecond),
        _ => Err(TimeError::Fraction),
    }
}

/// A time given as data: rounded down to the whole second (see the module docs).
pub fn parse_data(text: &str) -> Option<i64> {
    parse(text).ok().map(|(t, _)| t)
}

/// A calendar date `YYYY-MM-DD` as the instant its day starts, midnight UTC (a user
/// package's `expires`).
pub fn parse_date(text: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    // `%Y` also takes signs and more than four digits; a date here is written plainly.
    if text.len() != 10 {
        return None;
    }
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-11-21T08:00:00Z`); outside chrono's
/// range (beyond ±262,000 years), the number itself.
pub fn format(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Formats seconds as the shortest duration literal that says it (`90d`, `15m`, `30s`).
pub(crate) fn duration_text(secs: i64) -> String {
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs % n == 0 && secs >= n {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_exact_and_data_rounds_down() {
        assert_eq!(parse_literal("2026-11-21T08:00:00Z"), Ok(1_795_248_000));
        assert_eq!(parse_literal("2026-11-21T16:00:00+08:00"), Ok(1_795_248_000));
        assert_eq!(parse_literal("2026-11-21T08:00:00.000Z"), Ok(1_795_248_000));
        assert_eq!(parse_literal("2026-11-21T08:00:00.5Z"), Err(TimeError::Fraction));
        assert_eq!(parse_literal("2016-12-31T23:59:60Z"), Err(TimeError::LeapSecond));
        assert!(matches!(parse_literal("2026-02-30T00:00:00Z"), Err(TimeError::Invalid(_))));
        assert_eq!(parse_data("2026-11-21T08:00:00.999Z"), Some(1_795_248_000));
        // Before the epoch, rounding down is still toward the past.
        assert_eq!(parse_data("1969-12-31T23:59:59.5Z"), Some(-1));
        assert_eq!(parse_data("2016-12-31T23:59:60Z"), parse_data("2016-12-31T23:59:59Z"));
        assert_eq!(parse_data("yesterday"), None);
        assert_eq!(format(1_795_248_000), "2026-11-21T08:00:00Z");
    }
}
