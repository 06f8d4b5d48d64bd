//! Libtool-style protocol versions `current:revision:age` and the compatibility rule Taler
//! clients apply to a server's `/config` `version`.
//!
//! Spec: taler-protocol.md §0; WC `taler-util/src/libtool-version.ts`: a client at `me` accepts
//! `other` iff `me.current - me.age <= other.current` and `me.current >= other.current -
//! other.age`. No IO.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a version string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed libtool version {0:?}: expected CURRENT:REVISION:AGE")]
pub struct VersionError(pub String);

/// A `current:revision:age` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LibtoolVersion {
    /// The newest interface implemented.
    pub current: u32,
    /// Implementation revision of `current`.
    pub revision: u32,
    /// How many interfaces before `current` are also implemented.
    pub age: u32,
}

/// The result of comparing two versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionMatch {
    /// Whether the two sides share an interface.
    pub compatible: bool,
    /// How `self.current` compares to `other.current` (`Less`: the other side is newer).
    pub current_cmp: Ordering,
}

impl LibtoolVersion {
    /// Builds a version.
    pub const fn new(current: u32, revision: u32, age: u32) -> Self {
        Self {
            current,
            revision,
            age,
        }
    }

    /// The oldest interface implemented (`current - age`, floored at 0).
    pub const fn oldest(&self) -> u32 {
        self.current.saturating_sub(self.age)
    }

    /// Compares `self` (our side) with `other` (the peer).
    pub fn compare(&self, other: &Self) -> VersionMatch {
        let me_lo = i64::from(self.current) - i64::from(self.age);
        let other_lo = i64::from(other.current) - i64::from(other.age);
        VersionMatch {
            compatible: me_lo <= i64::from(other.current) && i64::from(self.current) >= other_lo,
            current_cmp: self.current.cmp(&other.current),
        }
    }

    /// Whether `self` and `other` share an interface.
    pub fn is_compatible(&self, other: &Self) -> bool {
        self.compare(other).compatible
    }
}

impl FromStr for LibtoolVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionError(s.to_owned());
        let mut parts = s.split(':');
        let mut next = || -> Result<u32, VersionError> {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        let v = Self::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(v)
    }
}

impl fmt::Display for LibtoolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.current, self.revision, self.age)
    }
}

impl Serialize for LibtoolVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LibtoolVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> LibtoolVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(v("23:0:6"), LibtoolVersion::new(23, 0, 6));
        assert_eq!(v("2:0:2").to_string(), "2:0:2");
        for bad in [
            "",
            "1",
            "1:2",
            "1:2:3:4",
            "a:0:0",
            "-1:0:0",
            "1::0",
            " 1:0:0",
            "99999999999:0:0",
        ] {
            assert!(bad.parse::<LibtoolVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn compatibility_as_in_spec() {
        // The WC wallet (12:0:0) accepts EX22 (14:0:2) but not EX24 (23:0:6).
        let wallet = v("12:0:0");
        assert_eq!(
            wallet.compare(&v("14:0:2")),
            VersionMatch {
                compatible: true,
                current_cmp: Ordering::Less
            }
        );
        assert!(!wallet.is_compatible(&v("23:0:6")));
        // WC bank integration (0:0:0) accepts libeufin's 2:0:2 but not 4:0:0.
        assert!(v("0:0:0").is_compatible(&v("2:0:2")));
        assert!(!v("0:0:0").is_compatible(&v("4:0:0")));
        assert_eq!(
            v("3:0:0").compare(&v("1:0:0")).current_cmp,
            Ordering::Greater
        );
        assert!(!v("3:0:0").is_compatible(&v("1:0:0")));
        assert!(v("3:0:2").is_compatible(&v("1:0:0")));
    }
}
