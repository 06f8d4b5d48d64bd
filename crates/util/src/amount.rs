//! Exact money: `Currency` and `Amount` as GNU Taler defines them.
//!
//! Spec: taler-protocol.md §1.2, rust-stack.md §1.13. An amount is a currency (`[A-Z]{1,11}`), a
//! value `≤ 2^52` and a fraction `< 10^8` (one unit is 1e-8). The text form is `CUR:V[.F]` with at
//! most 8 fraction digits and no trailing zeros on output; the signed binary form is 24 bytes
//! (`u64be value ‖ u32be fraction ‖ currency NUL-padded to 12`). Arithmetic is checked: where the
//! reference wallet saturates we reject, because a server must never invent or lose money. No
//! floats, no IO.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest allowed value part (`TALER_AMOUNT_MAX_VALUE`, 2^52).
pub const MAX_VALUE: u64 = 1 << 52;
/// Number of fraction units in one value unit (`TALER_AMOUNT_FRAC_BASE`).
pub const FRAC_BASE: u32 = 100_000_000;
/// Number of decimal fraction digits (`TALER_AMOUNT_FRAC_LEN`).
pub const FRAC_DIGITS: usize = 8;
/// Longest currency name; the binary form reserves one more byte for the NUL.
pub const MAX_CURRENCY_LEN: usize = 11;
/// Size of the binary `TALER_AmountNBO`.
pub const NBO_LEN: usize = 24;

/// Why an amount or currency was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The currency is not 1–11 uppercase letters A–Z.
    #[error("invalid currency: must be 1 to 11 letters A-Z")]
    InvalidCurrency,
    /// The text is not `CUR:V` or `CUR:V.F`.
    #[error("malformed amount: expected CUR:VALUE[.FRACTION]")]
    Malformed,
    /// More than 8 fraction digits.
    #[error("too many fraction digits (at most 8)")]
    TooPrecise,
    /// The value exceeds 2^52 or the fraction is not below 10^8.
    #[error("amount out of range (value at most 2^52)")]
    OutOfRange,
    /// An operation mixed two currencies.
    #[error("currency mismatch: {0} vs {1}")]
    CurrencyMismatch(Currency, Currency),
    /// A subtraction would go below zero.
    #[error("amount would be negative")]
    Negative,
}

/// A currency code: 1–11 ASCII uppercase letters (`TALER_check_currency`; libeufin `[A-Z]{1,11}`).
///
/// Stored inline so that `Currency` and `Amount` are `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    // NUL-padded, so the derived ordering on `bytes` first is alphabetical order.
    bytes: [u8; MAX_CURRENCY_LEN],
    len: u8,
}

impl Currency {
    /// Checks and wraps a currency code; lowercase is rejected (we only accept and emit the
    /// canonical uppercase form).
    pub fn new(code: &str) -> Result<Self, AmountError> {
        let raw = code.as_bytes();
        if raw.is_empty() || raw.len() > MAX_CURRENCY_LEN || !raw.iter().all(u8::is_ascii_uppercase)
        {
            return Err(AmountError::InvalidCurrency);
        }
        let mut bytes = [0u8; MAX_CURRENCY_LEN];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(Self {
            bytes,
            len: raw.len() as u8,
        })
    }

    /// The currency code.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this never takes the fallback.
        std::str::from_utf8(self.bytes.get(..usize::from(self.len)).unwrap_or_default())
            .unwrap_or_default()
    }
}

impl FromStr for Currency {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An exact amount of money in one currency. Always normalised (`fraction < 10^8`) and in range
/// (`value ≤ 2^52`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    currency: Currency,
    value: u64,
    fraction: u32,
}

impl Amount {
    /// Builds an amount; the value must be `≤ 2^52` and the fraction `< 10^8`.
    pub fn new(currency: Currency, value: u64, fraction: u32) -> Result<Self, AmountError> {
        if value > MAX_VALUE || fraction >= FRAC_BASE {
            return Err(AmountError::OutOfRange);
        }
        Ok(Self {
            currency,
            value,
            fraction,
        })
    }

    /// Zero in the given currency.
    pub fn zero(currency: &Currency) -> Self {
        Self {
            currency: *currency,
            value: 0,
            fraction: 0,
        }
    }

    /// The largest representable amount (`2^52` and 99999999 fraction units).
    pub fn max(currency: &Currency) -> Self {
        Self {
            currency: *currency,
            value: MAX_VALUE,
            fraction: FRAC_BASE - 1,
        }
    }

    /// The currency.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// The integer part.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// The fraction in units of 1e-8.
    pub fn fraction(&self) -> u32 {
        self.fraction
    }

    /// Whether the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.value == 0 && self.fraction == 0
    }

    /// The whole amount in units of 1e-8 (fits easily in `u128`).
    pub fn to_units(&self) -> u128 {
        u128::from(self.value) * u128::from(FRAC_BASE) + u128::from(self.fraction)
    }

    /// Builds an amount from a count of 1e-8 units; fails when above the maximum.
    pub fn from_units(currency: &Currency, units: u128) -> Result<Self, AmountError> {
        let base = u128::from(FRAC_BASE);
        let value = u64::try_from(units / base).map_err(|_| AmountError::OutOfRange)?;
        let fraction = u32::try_from(units % base).map_err(|_| AmountError::OutOfRange)?;
        Self::new(*currency, value, fraction)
    }

    fn same_currency(&self, other: &Self) -> Result<(), AmountError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(AmountError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    /// `self + other`; fails on a currency mismatch or when the sum exceeds the maximum.
    pub fn checked_add(&self, other: &Self) -> Result<Self, AmountError> {
        self.same_currency(other)?;
        Self::from_units(&self.currency, self.to_units() + other.to_units())
    }

    /// `self - other`; fails on a currency mismatch or when the result would be negative.
    pub fn checked_sub(&self, other: &Self) -> Result<Self, AmountError> {
        self.same_currency(other)?;
        let units = self
            .to_units()
            .checked_sub(other.to_units())
            .ok_or(AmountError::Negative)?;
        Self::from_units(&self.currency, units)
    }

    /// `self * factor`; fails when the product exceeds the maximum.
    pub fn checked_mul(&self, factor: u64) -> Result<Self, AmountError> {
        let units = self
            .to_units()
            .checked_mul(u128::from(factor))
            .ok_or(AmountError::OutOfRange)?;
        Self::from_units(&self.currency, units)
    }

    /// The 24-byte `TALER_AmountNBO` used inside signed structures.
    pub fn to_nbo(&self) -> [u8; NBO_LEN] {
        let mut out = [0u8; NBO_LEN];
        out[..8].copy_from_slice(&self.value.to_be_bytes());
        out[8..12].copy_from_slice(&self.fraction.to_be_bytes());
        out[12..12 + MAX_CURRENCY_LEN].copy_from_slice(&self.currency.bytes);
        out
    }

    /// Parses the 24-byte binary form; the currency must be NUL-padded and valid.
    pub fn from_nbo(bytes: &[u8; NBO_LEN]) -> Result<Self, AmountError> {
        let (value, rest) = bytes.split_at(8);
        let (fraction, cur) = rest.split_at(4);
        let value = u64::from_be_bytes(value.try_into().map_err(|_| AmountError::Malformed)?);
        let fraction = u32::from_be_bytes(fraction.try_into().map_err(|_| AmountError::Malformed)?);
        let len = cur
            .iter()
            .position(|&b| b == 0)
            .ok_or(AmountError::InvalidCurrency)?;
        let (name, padding) = cur.split_at(len);
        if padding.iter().any(|&b| b != 0) {
            return Err(AmountError::InvalidCurrency);
        }
        let name = std::str::from_utf8(name).map_err(|_| AmountError::InvalidCurrency)?;
        Self::new(Currency::new(name)?, value, fraction)
    }

    /// Parses a plain decimal such as `"20.50"` or `"3"` in `currency`, for APIs that carry the
    /// currency separately (the card processor).
    pub fn from_decimal(currency: &Currency, decimal: &str) -> Result<Self, AmountError> {
        let (int, frac) = match decimal.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (decimal, None),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::Malformed);
        }
        let value: u64 = int.parse().map_err(|_| AmountError::OutOfRange)?;
        let fraction = match frac {
            None => 0,
            Some(f) => {
                if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(AmountError::Malformed);
                }
                if f.len() > FRAC_DIGITS {
                    return Err(AmountError::TooPrecise);
                }
                let digits: u32 = f.parse().map_err(|_| AmountError::Malformed)?;
                let scale = FRAC_DIGITS - f.len();
                digits * 10u32.pow(scale as u32)
            }
        };
        Self::new(*currency, value, fraction)
    }

    /// The decimal without currency, canonical (`"20.5"`, `"3"`).
    pub fn to_decimal(&self) -> String {
        self.to_decimal_padded(0)
    }

    /// The decimal without currency with at least `min_fraction_digits` fraction digits (at most
    /// 8), e.g. `to_decimal_padded(2)` gives `"20.50"` and `"3.00"`.
    pub fn to_decimal_padded(&self, min_fraction_digits: usize) -> String {
        let min = min_fraction_digits.min(FRAC_DIGITS);
        let mut frac = format!("{:08}", self.fraction);
        while frac.len() > min && frac.ends_with('0') {
            frac.pop();
        }
        if frac.is_empty() {
            self.value.to_string()
        } else {
            format!("{}.{}", self.value, frac)
        }
    }
}

impl PartialOrd for Amount {
    /// Amounts compare only within one currency; across currencies the answer is `None`.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self.currency != other.currency {
            return None;
        }
        Some((self.value, self.fraction).cmp(&(other.value, other.fraction)))
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (cur, num) = s.split_once(':').ok_or(AmountError::Malformed)?;
        let currency = Currency::new(cur)?;
        Self::from_decimal(&currency, num)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.currency, self.to_decimal())
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Amount {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_canonical_display() {
        assert_eq!(a("KUDOS:1").to_string(), "KUDOS:1");
        assert_eq!(a("KUDOS:1.0").to_string(), "KUDOS:1");
        assert_eq!(a("KUDOS:0.50").to_string(), "KUDOS:0.5");
        assert_eq!(a("EUR:20.12345678").fraction(), 12_345_678);
        assert_eq!(a("EUR:0.00000001").fraction(), 1);
        assert_eq!(a("EUR:4503599627370496").value(), MAX_VALUE);
        assert_eq!(a("ABCDEFGHIJK:1").currency().as_str(), "ABCDEFGHIJK");
        assert!(Currency::new("AB").unwrap() < Currency::new("B").unwrap());
    }

    #[test]
    fn parse_rejects() {
        for bad in [
            "KUDOS:1.",
            "KUDOS:.5",
            "KUDOS:",
            ":1",
            "KUDOS",
            "kudos:1",
            "KUDOS:1.123456789",
            "KUDOS:4503599627370497",
            "KUDOS:99999999999999999999999",
            "ABCDEFGHIJKL:1",
            "KUDOS:+1",
            "KUDOS:-1",
            "KUDOS:1.-5",
            "KUDOS: 1",
            "KU DOS:1",
            "KUDOS:1.5:2",
            "É:1",
        ] {
            assert!(bad.parse::<Amount>().is_err(), "{bad}");
        }
        assert_eq!(
            "KUDOS:1.123456789".parse::<Amount>(),
            Err(AmountError::TooPrecise)
        );
        assert_eq!(
            "KUDOS:4503599627370497".parse::<Amount>(),
            Err(AmountError::OutOfRange)
        );
        assert_eq!(
            "kudos:1".parse::<Amount>(),
            Err(AmountError::InvalidCurrency)
        );
    }

    #[test]
    fn arithmetic() {
        assert_eq!(
            a("EUR:1.5").checked_add(&a("EUR:2.75")).unwrap(),
            a("EUR:4.25")
        );
        assert_eq!(
            a("EUR:1.5").checked_sub(&a("EUR:0.75")).unwrap(),
            a("EUR:0.75")
        );
        assert_eq!(
            a("EUR:1").checked_sub(&a("EUR:1.01")),
            Err(AmountError::Negative)
        );
        assert!(matches!(
            a("EUR:1").checked_add(&a("CHF:1")),
            Err(AmountError::CurrencyMismatch(..))
        ));
        assert_eq!(
            a("EUR:4503599627370496").checked_add(&a("EUR:1")),
            Err(AmountError::OutOfRange)
        );
        assert!(
            a("EUR:4503599627370496")
                .checked_add(&a("EUR:0.99999999"))
                .is_ok()
        );
        assert_eq!(a("EUR:0.3").checked_mul(4).unwrap(), a("EUR:1.2"));
        assert_eq!(
            a("EUR:2").checked_mul(u64::MAX),
            Err(AmountError::OutOfRange)
        );
        assert!(a("EUR:0").is_zero());
        assert!(a("EUR:1") > a("EUR:0.99999999"));
        assert_eq!(a("EUR:1").partial_cmp(&a("CHF:1")), None);
        assert!(Amount::new(Currency::new("EUR").unwrap(), 0, FRAC_BASE).is_err());
    }

    #[test]
    fn nbo_layout() {
        let nbo = a("KUDOS:3.5").to_nbo();
        let mut expected = [0u8; 24];
        expected[7] = 3;
        expected[8..12].copy_from_slice(&50_000_000u32.to_be_bytes());
        expected[12..17].copy_from_slice(b"KUDOS");
        assert_eq!(nbo, expected);
        assert_eq!(Amount::from_nbo(&nbo).unwrap(), a("KUDOS:3.5"));
        let mut bad = expected;
        bad[23] = b'X';
        assert_eq!(Amount::from_nbo(&bad), Err(AmountError::InvalidCurrency));
        let mut bad = expected;
        bad[8..12].copy_from_slice(&FRAC_BASE.to_be_bytes());
        assert_eq!(Amount::from_nbo(&bad), Err(AmountError::OutOfRange));
    }

    #[test]
    fn decimal_for_card_processors() {
        let eur = Currency::new("EUR").unwrap();
        let x = Amount::from_decimal(&eur, "20.50").unwrap();
        assert_eq!(x, a("EUR:20.5"));
        assert_eq!(x.to_decimal(), "20.5");
        assert_eq!(x.to_decimal_padded(2), "20.50");
        assert_eq!(a("EUR:3").to_decimal_padded(2), "3.00");
        assert_eq!(a("EUR:3.001").to_decimal_padded(2), "3.001");
        assert!(Amount::from_decimal(&eur, "20,50").is_err());
    }

    #[test]
    fn serde_as_string() {
        let x = a("EUR:1.25");
        assert_eq!(serde_json::to_string(&x).unwrap(), "\"EUR:1.25\"");
        assert_eq!(serde_json::from_str::<Amount>("\"EUR:1.25\"").unwrap(), x);
        assert!(serde_json::from_str::<Amount>("1.25").is_err());
    }
}
