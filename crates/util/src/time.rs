//! Protocol time: absolute `Timestamp` and `RelativeTime`, both microseconds inside.
//!
//! Spec: taler-protocol.md §1.3. JSON is `{"t_s": secs | "never"}` (the legacy `{"t_ms": …}` is
//! accepted on input) and `{"d_us": micros | "forever"}` (legacy `{"d_ms": …}` accepted); the
//! binary form is `u64be` microseconds with `u64::MAX` for never/forever. Timestamps sent on the
//! wire are whole seconds, so `now()` rounds down. Also parses configuration durations such as
//! `5 s` or `2 minutes`. The only outside world touched is the system clock in `now()`.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MICROS_PER_SEC: u64 = 1_000_000;
const MICROS_PER_MS: u64 = 1_000;

/// Why a time value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The duration text is not `<number> <unit>` (repeated) or `forever`.
    #[error("malformed duration {0:?}: expected e.g. \"5 s\", \"2 minutes\" or \"forever\"")]
    MalformedDuration(String),
    /// A value does not fit in 64-bit microseconds.
    #[error("time value out of range")]
    OutOfRange,
}

/// An absolute time in microseconds since the Unix epoch, or "never".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(u64);

/// A duration in microseconds, or "forever".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RelativeTime(u64);

impl Timestamp {
    /// The end of time (`{"t_s": "never"}`, binary `u64::MAX`). Sorts after every other time.
    pub const NEVER: Self = Self(u64::MAX);
    /// The Unix epoch.
    pub const ZERO: Self = Self(0);

    /// The current time, rounded down to whole seconds as the protocol transmits it.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::from_secs(secs)
    }

    /// Whole seconds since the epoch (saturates to `NEVER`).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(MICROS_PER_SEC))
    }

    /// Microseconds since the epoch (`u64::MAX` is `NEVER`).
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch (`u64::MAX` for `NEVER`).
    pub const fn as_micros(&self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down (`u64::MAX` for `NEVER`).
    pub const fn as_secs(&self) -> u64 {
        if self.is_never() {
            u64::MAX
        } else {
            self.0 / MICROS_PER_SEC
        }
    }

    /// Whether this is "never".
    pub const fn is_never(&self) -> bool {
        self.0 == u64::MAX
    }

    /// This time rounded down to whole seconds (`NEVER` stays `NEVER`).
    pub const fn round_down_to_secs(&self) -> Self {
        if self.is_never() {
            *self
        } else {
            Self(self.0 - self.0 % MICROS_PER_SEC)
        }
    }

    /// `self + d`; `NEVER` or `FOREVER` give `NEVER`; `None` on overflow of finite values.
    pub fn checked_add(&self, d: RelativeTime) -> Option<Self> {
        if self.is_never() || d.is_forever() {
            return Some(Self::NEVER);
        }
        self.0.checked_add(d.0).filter(|&t| t != u64::MAX).map(Self)
    }

    /// `self + d`, saturating to `NEVER`.
    pub fn saturating_add(&self, d: RelativeTime) -> Self {
        self.checked_add(d).unwrap_or(Self::NEVER)
    }

    /// `self - earlier` as a duration; zero when `earlier` is later, `FOREVER` when `self` is
    /// `NEVER`.
    pub fn saturating_sub(&self, earlier: Self) -> RelativeTime {
        if self.is_never() {
            return RelativeTime::FOREVER;
        }
        RelativeTime(self.0.saturating_sub(earlier.0))
    }

    /// `self - d`, stopping at the epoch; `NEVER` stays `NEVER`.
    pub fn saturating_sub_relative(&self, d: RelativeTime) -> Self {
        if self.is_never() {
            *self
        } else {
            Self(self.0.saturating_sub(d.0))
        }
    }

    /// The 8-byte big-endian microseconds of `GNUNET_TIME_TimestampNBO`.
    pub const fn to_nbo(&self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Reads `GNUNET_TIME_TimestampNBO`.
    pub const fn from_nbo(bytes: [u8; 8]) -> Self {
        Self(u64::from_be_bytes(bytes))
    }

    /// Microseconds as a signed SQL `BIGINT`; `NEVER` is stored as `i64::MAX`.
    pub fn to_sql_micros(&self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// Reads a SQL `BIGINT` written by [`Self::to_sql_micros`]; negative values are rejected.
    pub fn from_sql_micros(micros: i64) -> Result<Self, TimeError> {
        match micros {
            i64::MAX => Ok(Self::NEVER),
            m => u64::try_from(m)
                .map(Self)
                .map_err(|_| TimeError::OutOfRange),
        }
    }

    /// As a `SystemTime` (`None` for `NEVER`).
    pub fn to_system_time(&self) -> Option<SystemTime> {
        if self.is_never() {
            None
        } else {
            UNIX_EPOCH.checked_add(Duration::from_micros(self.0))
        }
    }
}

impl RelativeTime {
    /// An infinite duration (`{"d_us": "forever"}`, binary `u64::MAX`).
    pub const FOREVER: Self = Self(u64::MAX);
    /// No time at all.
    pub const ZERO: Self = Self(0);

    /// Microseconds (`u64::MAX` is `FOREVER`).
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Milliseconds (saturates to `FOREVER`).
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms.saturating_mul(MICROS_PER_MS))
    }

    /// Seconds (saturates to `FOREVER`).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(MICROS_PER_SEC))
    }

    /// Microseconds (`u64::MAX` for `FOREVER`).
    pub const fn as_micros(&self) -> u64 {
        self.0
    }

    /// Whole milliseconds, rounded down (`u64::MAX` for `FOREVER`).
    pub const fn as_millis(&self) -> u64 {
        if self.is_forever() {
            u64::MAX
        } else {
            self.0 / MICROS_PER_MS
        }
    }

    /// Whole seconds, rounded down (`u64::MAX` for `FOREVER`).
    pub const fn as_secs(&self) -> u64 {
        if self.is_forever() {
            u64::MAX
        } else {
            self.0 / MICROS_PER_SEC
        }
    }

    /// Whether this is "forever".
    pub const fn is_forever(&self) -> bool {
        self.0 == u64::MAX
    }

    /// As a std `Duration` (`None` for `FOREVER`), e.g. for timers.
    pub fn to_duration(&self) -> Option<Duration> {
        if self.is_forever() {
            None
        } else {
            Some(Duration::from_micros(self.0))
        }
    }

    /// From a std `Duration`, saturating to `FOREVER`.
    pub fn from_duration(d: Duration) -> Self {
        Self(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    /// `self + other`, saturating to `FOREVER`.
    pub const fn saturating_add(&self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    /// The 8-byte big-endian microseconds of `GNUNET_TIME_RelativeNBO`.
    pub const fn to_nbo(&self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Reads `GNUNET_TIME_RelativeNBO`.
    pub const fn from_nbo(bytes: [u8; 8]) -> Self {
        Self(u64::from_be_bytes(bytes))
    }

    /// Microseconds as a signed SQL `BIGINT`; `FOREVER` is stored as `i64::MAX`.
    pub fn to_sql_micros(&self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// Reads a SQL `BIGINT` written by [`Self::to_sql_micros`].
    pub fn from_sql_micros(micros: i64) -> Result<Self, TimeError> {
        match micros {
            i64::MAX => Ok(Self::FOREVER),
            m => u64::try_from(m)
                .map(Self)
                .map_err(|_| TimeError::OutOfRange),
        }
    }

    /// Parses a configuration duration: `forever`, or one or more `<number> <unit>` pairs
    /// (`5 s`, `2 minutes`, `1 h 30 min`, `250ms`). Units follow GNUnet's fancy time: `us`,
    /// `ms`, `s`/`sec`/`second(s)`, `min`/`minute(s)`, `h`/`hour(s)`, `d`/`day(s)`,
    /// `week(s)`, `year(s)` (365 days), `a` (365.25 days).
    pub fn parse_duration(text: &str) -> Result<Self, TimeError> {
        let malformed = || TimeError::MalformedDuration(text.to_owned());
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("forever") || trimmed.eq_ignore_ascii_case("end of time") {
            return Ok(Self::FOREVER);
        }
        let mut rest = trimmed;
        let mut total: u64 = 0;
        let mut any = false;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(malformed());
            }
            let (num, tail) = rest.split_at(digits);
            let num: u64 = num.parse().map_err(|_| TimeError::OutOfRange)?;
            let tail = tail.trim_start();
            let unit_len = tail
                .find(|c: char| !c.is_alphabetic())
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let factor = unit_micros(&unit.to_ascii_lowercase()).ok_or_else(malformed)?;
            let part = num.checked_mul(factor).ok_or(TimeError::OutOfRange)?;
            total = total.checked_add(part).ok_or(TimeError::OutOfRange)?;
            any = true;
            rest = tail.trim_start();
        }
        if !any || total == u64::MAX {
            return Err(if any {
                TimeError::OutOfRange
            } else {
                malformed()
            });
        }
        Ok(Self(total))
    }
}

fn unit_micros(unit: &str) -> Option<u64> {
    const MIN: u64 = 60 * MICROS_PER_SEC;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    Some(match unit {
        "us" | "µs" => 1,
        "ms" => MICROS_PER_MS,
        "s" | "sec" | "second" | "seconds" => MICROS_PER_SEC,
        "m" | "min" | "minute" | "minutes" => MIN,
        "h" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "week" | "weeks" => 7 * DAY,
        "year" | "years" => 365 * DAY,
        "a" => 365 * DAY + 6 * HOUR,
        _ => return None,
    })
}

impl FromStr for RelativeTime {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_duration(s)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_never() {
            f.write_str("Timestamp(never)")
        } else {
            write!(f, "Timestamp({}us)", self.0)
        }
    }
}

impl fmt::Display for Timestamp {
    /// Seconds since the epoch, or `never` (for logs and messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_never() {
            f.write_str("never")
        } else if self.0.is_multiple_of(MICROS_PER_SEC) {
            write!(f, "{}s", self.0 / MICROS_PER_SEC)
        } else {
            write!(
                f,
                "{}.{:06}s",
                self.0 / MICROS_PER_SEC,
                self.0 % MICROS_PER_SEC
            )
        }
    }
}

impl fmt::Debug for RelativeTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelativeTime({self})")
    }
}

impl fmt::Display for RelativeTime {
    /// The largest exact unit, in a form [`RelativeTime::parse_duration`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_forever() {
            return f.write_str("forever");
        }
        let us = self.0;
        for (factor, unit) in [
            (3_600_000_000, "h"),
            (60_000_000, "min"),
            (MICROS_PER_SEC, "s"),
            (MICROS_PER_MS, "ms"),
        ] {
            if us != 0 && us.is_multiple_of(factor) {
                return write!(f, "{} {unit}", us / factor);
            }
        }
        write!(f, "{us} us")
    }
}

/// A JSON number or the given sentinel string.
enum NumOrWord {
    Num(u64),
    Word,
}

struct NumOrWordVisitor(&'static str);

impl Visitor<'_> for NumOrWordVisitor {
    type Value = NumOrWord;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a non-negative integer or \"{}\"", self.0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumOrWord, E> {
        Ok(NumOrWord::Num(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumOrWord, E> {
        u64::try_from(v)
            .map(NumOrWord::Num)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NumOrWord, E> {
        if v == self.0 {
            Ok(NumOrWord::Word)
        } else {
            Err(E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
}

struct NumOrWordSeed(&'static str);

impl<'de> de::DeserializeSeed<'de> for NumOrWordSeed {
    type Value = NumOrWord;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<NumOrWord, D::Error> {
        d.deserialize_any(NumOrWordVisitor(self.0))
    }
}

/// Reads a one-key object whose key is one of `keys` (with its unit in micros) and whose value is
/// a number or `word`.
struct TimeObjectVisitor {
    expecting: &'static str,
    keys: &'static [(&'static str, u64)],
    word: &'static str,
}

impl<'de> Visitor<'de> for TimeObjectVisitor {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut result = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(&(_, unit)) = self.keys.iter().find(|(k, _)| *k == key) else {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            };
            if result.is_some() {
                return Err(de::Error::custom(format_args!(
                    "duplicate time field in {}",
                    self.expecting
                )));
            }
            let micros = match map.next_value_seed(NumOrWordSeed(self.word))? {
                NumOrWord::Word => u64::MAX,
                NumOrWord::Num(n) => n
                    .checked_mul(unit)
                    .filter(|&m| m != u64::MAX)
                    .ok_or_else(|| de::Error::custom("time value out of range"))?,
            };
            result = Some(micros);
        }
        result.ok_or_else(|| de::Error::custom(format_args!("expected {}", self.expecting)))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        if self.is_never() {
            map.serialize_entry("t_s", "never")?;
        } else {
            map.serialize_entry("t_s", &(self.0 / MICROS_PER_SEC))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TimeObjectVisitor {
            expecting: "a timestamp {\"t_s\": seconds | \"never\"}",
            keys: &[("t_s", MICROS_PER_SEC), ("t_ms", MICROS_PER_MS)],
            word: "never",
        })
        .map(Self)
    }
}

impl Serialize for RelativeTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        if self.is_forever() {
            map.serialize_entry("d_us", "forever")?;
        } else {
            map.serialize_entry("d_us", &self.0)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RelativeTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TimeObjectVisitor {
            expecting: "a duration {\"d_us\": microseconds | \"forever\"}",
            keys: &[("d_us", 1), ("d_ms", MICROS_PER_MS)],
            word: "forever",
        })
        .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_json() {
        let t = Timestamp::from_secs(1_700_000_000);
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"t_s":1700000000}"#);
        assert_eq!(
            serde_json::from_str::<Timestamp>(r#"{"t_s":1700000000}"#).unwrap(),
            t
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>(r#"{"t_ms":1700000000000}"#).unwrap(),
            t
        );
        assert_eq!(
            serde_json::to_string(&Timestamp::NEVER).unwrap(),
            r#"{"t_s":"never"}"#
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>(r#"{"t_s":"never"}"#).unwrap(),
            Timestamp::NEVER
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>(r#"{"t_ms":"never"}"#).unwrap(),
            Timestamp::NEVER
        );
        for bad in [
            r#"{"t_s":-1}"#,
            r#"{"t_s":1.5}"#,
            r#"{"t_s":"forever"}"#,
            r#"{}"#,
            r#"5"#,
            r#"{"t_s":18446744073709551615}"#,
            r#"{"t_s":1,"t_ms":1000}"#,
            r#"{"t_s":null}"#,
        ] {
            assert!(serde_json::from_str::<Timestamp>(bad).is_err(), "{bad}");
        }
        // Sub-second precision is dropped on the wire.
        assert_eq!(
            serde_json::to_string(&Timestamp::from_micros(1_999_999)).unwrap(),
            r#"{"t_s":1}"#
        );
    }

    #[test]
    fn relative_json() {
        let d = RelativeTime::from_secs(5);
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"d_us":5000000}"#);
        assert_eq!(
            serde_json::from_str::<RelativeTime>(r#"{"d_us":5000000}"#).unwrap(),
            d
        );
        assert_eq!(
            serde_json::from_str::<RelativeTime>(r#"{"d_ms":5000}"#).unwrap(),
            d
        );
        assert_eq!(
            serde_json::to_string(&RelativeTime::FOREVER).unwrap(),
            r#"{"d_us":"forever"}"#
        );
        assert_eq!(
            serde_json::from_str::<RelativeTime>(r#"{"d_us":"forever"}"#).unwrap(),
            RelativeTime::FOREVER
        );
        assert!(serde_json::from_str::<RelativeTime>(r#"{"d_us":"never"}"#).is_err());
    }

    #[test]
    fn arithmetic_and_binary() {
        let t = Timestamp::from_secs(100);
        assert_eq!(
            t.checked_add(RelativeTime::from_secs(5)),
            Some(Timestamp::from_secs(105))
        );
        assert_eq!(t.checked_add(RelativeTime::FOREVER), Some(Timestamp::NEVER));
        assert_eq!(
            Timestamp::NEVER.checked_add(RelativeTime::ZERO),
            Some(Timestamp::NEVER)
        );
        assert_eq!(
            Timestamp::from_micros(u64::MAX - 5).checked_add(RelativeTime::from_micros(5)),
            None
        );
        assert_eq!(
            Timestamp::from_secs(105).saturating_sub(t),
            RelativeTime::from_secs(5)
        );
        assert_eq!(
            t.saturating_sub(Timestamp::from_secs(105)),
            RelativeTime::ZERO
        );
        assert!(Timestamp::NEVER > t);
        assert_eq!(t.to_nbo(), 100_000_000u64.to_be_bytes());
        assert_eq!(Timestamp::NEVER.to_nbo(), [0xff; 8]);
        assert_eq!(Timestamp::now().as_micros() % 1_000_000, 0);
        assert_eq!(Timestamp::NEVER.to_sql_micros(), i64::MAX);
        assert_eq!(
            Timestamp::from_sql_micros(i64::MAX).unwrap(),
            Timestamp::NEVER
        );
        assert!(Timestamp::from_sql_micros(-1).is_err());
    }

    #[test]
    fn durations() {
        let p = |s: &str| RelativeTime::parse_duration(s);
        assert_eq!(p("5 s").unwrap(), RelativeTime::from_secs(5));
        assert_eq!(p("2 minutes").unwrap(), RelativeTime::from_secs(120));
        assert_eq!(p("1 h").unwrap(), RelativeTime::from_secs(3600));
        assert_eq!(p("1 h 30 min").unwrap(), RelativeTime::from_secs(5400));
        assert_eq!(p("250ms").unwrap(), RelativeTime::from_millis(250));
        assert_eq!(p("2 weeks").unwrap(), RelativeTime::from_secs(14 * 86400));
        assert_eq!(p("FOREVER").unwrap(), RelativeTime::FOREVER);
        for bad in [
            "",
            "5",
            "s",
            "5 parsecs",
            "-1 s",
            "1.5 s",
            "99999999999999999999 s",
            "999999999999999 years",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        for d in [
            RelativeTime::from_secs(7200),
            RelativeTime::from_millis(1500),
            RelativeTime::from_micros(3),
        ] {
            assert_eq!(p(&d.to_string()).unwrap(), d);
        }
    }
}
