//! RFC 3339 UTC timestamps (`2026-11-22T07:00:00Z`), the date form of Wallee's JSON.
//!
//! Taler APIs use `{"t_s": …}`, but the card processor speaks Wallee's dialect, whose dates are
//! ISO 8601 strings. We emit UTC with a `Z` and either no fraction or six digits (microseconds,
//! our storage precision), and parse any RFC 3339 date-time with `Z` or a numeric offset and up
//! to nine fraction digits (truncated to microseconds). No chrono: the civil-date arithmetic is
//! the classic days-from-civil algorithm on proleptic Gregorian dates.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use cardcash_util::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MICROS_PER_SEC: u64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// A UTC instant with microsecond precision, serialized as an RFC 3339 string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IsoTime(u64);

/// The text is not an RFC 3339 date-time we accept (or lies before 1970).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed RFC 3339 timestamp")]
pub struct IsoTimeError;

impl IsoTime {
    /// Microseconds since the Unix epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(&self) -> u64 {
        self.0
    }

    /// The current time with microsecond precision (not rounded like `Timestamp::now`).
    pub fn now() -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Self(micros)
    }

    /// As a Taler timestamp.
    pub const fn to_timestamp(&self) -> Timestamp {
        Timestamp::from_micros(self.0)
    }

    /// Microseconds as a SQL `BIGINT`.
    pub fn to_sql(&self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// Reads a SQL `BIGINT` microsecond value; negative values clamp to the epoch.
    pub fn from_sql(micros: i64) -> Self {
        Self(u64::try_from(micros).unwrap_or(0))
    }
}

impl From<Timestamp> for IsoTime {
    fn from(t: Timestamp) -> Self {
        Self(t.as_micros())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction of the algorithm.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl fmt::Display for IsoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / MICROS_PER_SEC;
        let micros = self.0 % MICROS_PER_SEC;
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        f.write_str("Z")
    }
}

impl fmt::Debug for IsoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn digits<T: FromStr>(s: &str, len: usize) -> Result<T, IsoTimeError> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IsoTimeError);
    }
    s.parse().map_err(|_| IsoTimeError)
}

impl FromStr for IsoTime {
    type Err = IsoTimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (date, rest) = s.split_once(['T', 't', ' ']).ok_or(IsoTimeError)?;
        let mut parts = date.splitn(3, '-');
        let year: i64 = digits(parts.next().ok_or(IsoTimeError)?, 4)?;
        let month: u32 = digits(parts.next().ok_or(IsoTimeError)?, 2)?;
        let day: u32 = digits(parts.next().ok_or(IsoTimeError)?, 2)?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(IsoTimeError);
        }
        let time = rest.get(..8).ok_or(IsoTimeError)?;
        let tail = rest.get(8..).ok_or(IsoTimeError)?;
        let mut hms = time.splitn(3, ':');
        let hour: i64 = digits(hms.next().ok_or(IsoTimeError)?, 2)?;
        let minute: i64 = digits(hms.next().ok_or(IsoTimeError)?, 2)?;
        let second: i64 = digits(hms.next().ok_or(IsoTimeError)?, 2)?;
        if hour > 23 || minute > 59 || second > 59 {
            return Err(IsoTimeError);
        }
        let (fraction, zone) = match tail.strip_prefix('.') {
            Some(f) => {
                let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                let (frac, zone) = f.split_at(end);
                if frac.is_empty() || frac.len() > 9 {
                    return Err(IsoTimeError);
                }
                let mut padded = frac.to_owned();
                padded.truncate(6);
                while padded.len() < 6 {
                    padded.push('0');
                }
                (padded.parse::<u64>().map_err(|_| IsoTimeError)?, zone)
            }
            None => (0, tail),
        };
        let offset_secs: i64 = match zone {
            "Z" | "z" => 0,
            _ => {
                let sign = match zone.get(..1) {
                    Some("+") => 1,
                    Some("-") => -1,
                    _ => return Err(IsoTimeError),
                };
                let (h, m) = zone
                    .get(1..)
                    .and_then(|z| z.split_once(':'))
                    .ok_or(IsoTimeError)?;
                let (h, m): (i64, i64) = (digits(h, 2)?, digits(m, 2)?);
                if h > 23 || m > 59 {
                    return Err(IsoTimeError);
                }
                sign * (h * 3600 + m * 60)
            }
        };
        let secs =
            days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second
                - offset_secs;
        let secs = u64::try_from(secs).map_err(|_| IsoTimeError)?;
        secs.checked_mul(MICROS_PER_SEC)
            .and_then(|m| m.checked_add(fraction))
            .map(Self)
            .ok_or(IsoTimeError)
    }
}

impl Serialize for IsoTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IsoTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(IsoTime::from_micros(0).to_string(), "1970-01-01T00:00:00Z");
        // 2026-11-22T07:00:00Z = 1795330800 (date -u -d @1795330800)
        assert_eq!(
            IsoTime::from_micros(1_795_330_800_000_000).to_string(),
            "2026-11-22T07:00:00Z"
        );
        assert_eq!(
            IsoTime::from_micros(951_782_400_000_001).to_string(),
            "2000-02-29T00:00:00.000001Z"
        );
    }

    #[test]
    fn parses_and_round_trips() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2026-11-22T07:00:00Z",
            "2000-02-29T23:59:59.123456Z",
        ] {
            assert_eq!(s.parse::<IsoTime>().unwrap().to_string(), s);
        }
        assert_eq!(
            "2026-11-22T08:00:00+01:00"
                .parse::<IsoTime>()
                .unwrap()
                .to_string(),
            "2026-11-22T07:00:00Z"
        );
        assert_eq!(
            "2026-11-22T07:00:00.5Z"
                .parse::<IsoTime>()
                .unwrap()
                .as_micros()
                % 1_000_000,
            500_000
        );
        assert_eq!(
            "2026-11-22T07:00:00.123456789Z"
                .parse::<IsoTime>()
                .unwrap()
                .as_micros()
                % 1_000_000,
            123_456
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T07:00:00",
            "2026-11-22T07:00:00.Z",
            "1969-12-31T23:59:59Z",
            "2026-11-22T07:00:00+1:00",
            "２026-11-22T07:00:00Z",
        ] {
            assert!(s.parse::<IsoTime>().is_err(), "{s}");
        }
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in (-1000..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    // Up to 9999-12-31T23:59:59.999999Z, the last instant with a four-digit year.
    const MAX_MICROS: u64 = 253_402_300_799_999_999;

    proptest! {
        #[test]
        fn display_parse_round_trip(micros in 0..=MAX_MICROS) {
            let t = IsoTime::from_micros(micros);
            prop_assert_eq!(t.to_string().parse::<IsoTime>(), Ok(t));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = text.parse::<IsoTime>();
        }

        #[test]
        fn parse_never_panics_on_near_misses(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:]{8}(\\.[0-9]{0,10})?(Z|[+-][0-9]{2}:[0-9]{2})?") {
            let _ = text.parse::<IsoTime>();
        }
    }
}
