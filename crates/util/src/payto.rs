//! `payto://` URIs (RFC 8905) for the account types cardcash deals with.
//!
//! Spec: taler-protocol.md §7; WC `taler-util/src/payto.ts` (target type, then the target path,
//! then URL-encoded parameters). Known targets are parsed into typed fields:
//! - `payto://iban/[BIC/]IBAN` (IBAN checked: shape and ISO 7064 mod-97 check digits),
//! - `payto://x-taler-bank/HOST[:PORT]/ACCOUNT`,
//! - `payto://card-transaction/PROCESSOR-HOST/TRANSACTION-ID`, our type naming the card payment
//!   that funded a withdrawal (c2ec refunds go back to it),
//!   and anything else is kept verbatim as `Other`. Parameters (`receiver-name`, `message`,
//!   `amount`, `subject`, …) keep their order; output percent-encodes them with `%20` for spaces.
//!   No IO.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::amount::Amount;

const PREFIX: &str = "payto://";

/// Characters escaped in a path segment or query value (everything but unreserved + a few).
const COMPONENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'=')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

/// Why a payto URI was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaytoError {
    /// Not `payto://TYPE/PATH[?QUERY]`.
    #[error("malformed payto URI: {0}")]
    Malformed(&'static str),
    /// The IBAN has the wrong shape or check digits.
    #[error("invalid IBAN")]
    InvalidIban,
    /// The BIC is not 8 or 11 letters/digits.
    #[error("invalid BIC")]
    InvalidBic,
    /// Percent-encoding does not decode to UTF-8.
    #[error("invalid percent-encoding in payto URI")]
    Encoding,
}

/// The account a payto URI names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PaytoTarget {
    /// `payto://iban/[BIC/]IBAN`; the IBAN is stored upper-case without spaces.
    Iban {
        /// Optional BIC (upper-case).
        bic: Option<String>,
        /// The IBAN.
        iban: String,
    },
    /// `payto://x-taler-bank/HOST/ACCOUNT`.
    XTalerBank {
        /// Bank host, with optional port, lower-cased.
        host: String,
        /// Account name.
        account: String,
    },
    /// `payto://card-transaction/PROCESSOR-HOST/TRANSACTION-ID` (cardcash's own type).
    CardTransaction {
        /// Card processor host, lower-cased.
        processor_host: String,
        /// The processor's transaction identifier.
        transaction_id: String,
    },
    /// Any other target type, kept as decoded text.
    Other {
        /// The target type, lower-cased (`wallee-transaction`, `bitcoin`, …).
        target_type: String,
        /// The raw (still percent-encoded) target path.
        path: String,
    },
}

/// A parsed `payto://` URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PaytoUri {
    target: PaytoTarget,
    params: Vec<(String, String)>,
}

impl PaytoUri {
    /// `payto://iban/[BIC/]IBAN[?receiver-name=…]`; the IBAN may contain spaces and lowercase.
    pub fn iban(
        iban: &str,
        bic: Option<&str>,
        receiver_name: Option<&str>,
    ) -> Result<Self, PaytoError> {
        let target = PaytoTarget::Iban {
            bic: bic.map(check_bic).transpose()?,
            iban: check_iban(iban)?,
        };
        Ok(Self::with_name(target, receiver_name))
    }

    /// `payto://x-taler-bank/HOST/ACCOUNT?receiver-name=NAME`.
    pub fn x_taler_bank(
        host: &str,
        account: &str,
        receiver_name: Option<&str>,
    ) -> Result<Self, PaytoError> {
        if host.is_empty() || host.contains('/') || account.is_empty() || account.contains('/') {
            return Err(PaytoError::Malformed("x-taler-bank needs HOST/ACCOUNT"));
        }
        let target = PaytoTarget::XTalerBank {
            host: host.to_ascii_lowercase(),
            account: account.to_owned(),
        };
        Ok(Self::with_name(target, receiver_name))
    }

    /// `payto://card-transaction/PROCESSOR-HOST/TRANSACTION-ID`.
    pub fn card_transaction(
        processor_host: &str,
        transaction_id: &str,
    ) -> Result<Self, PaytoError> {
        if processor_host.is_empty() || processor_host.contains('/') || transaction_id.is_empty() {
            return Err(PaytoError::Malformed(
                "card-transaction needs HOST/TRANSACTION-ID",
            ));
        }
        Ok(Self {
            target: PaytoTarget::CardTransaction {
                processor_host: processor_host.to_ascii_lowercase(),
                transaction_id: transaction_id.to_owned(),
            },
            params: Vec::new(),
        })
    }

    fn with_name(target: PaytoTarget, receiver_name: Option<&str>) -> Self {
        let params = receiver_name
            .map(|n| vec![("receiver-name".to_owned(), n.to_owned())])
            .unwrap_or_default();
        Self { target, params }
    }

    /// The parsed target.
    pub fn target(&self) -> &PaytoTarget {
        &self.target
    }

    /// The target type: `iban`, `x-taler-bank`, `card-transaction` or the other type's name.
    pub fn target_type(&self) -> &str {
        match &self.target {
            PaytoTarget::Iban { .. } => "iban",
            PaytoTarget::XTalerBank { .. } => "x-taler-bank",
            PaytoTarget::CardTransaction { .. } => "card-transaction",
            PaytoTarget::Other { target_type, .. } => target_type,
        }
    }

    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All query parameters, in order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// Sets (replaces) a query parameter.
    pub fn set_param(&mut self, name: &str, value: &str) {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_owned(), value.to_owned()));
    }

    /// Returns the URI with a parameter set (builder style).
    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        self.set_param(name, value);
        self
    }

    /// `receiver-name`.
    pub fn receiver_name(&self) -> Option<&str> {
        self.param("receiver-name")
    }

    /// `message`.
    pub fn message(&self) -> Option<&str> {
        self.param("message")
    }

    /// `subject`.
    pub fn subject(&self) -> Option<&str> {
        self.param("subject")
    }

    /// `amount`, when present and a valid amount.
    pub fn amount(&self) -> Option<Amount> {
        self.param("amount").and_then(|a| a.parse().ok())
    }

    /// The account alone, without parameters: the form to hash (`h_payto`) and compare.
    pub fn normalized(&self) -> Self {
        Self {
            target: self.target.clone(),
            params: Vec::new(),
        }
    }

    /// Whether two URIs name the same account (parameters ignored).
    pub fn same_account(&self, other: &Self) -> bool {
        self.target == other.target
    }

    fn write_path(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enc = |s: &str| utf8_percent_encode(s, COMPONENT).to_string();
        match &self.target {
            PaytoTarget::Iban {
                bic: Some(bic),
                iban,
            } => write!(f, "iban/{bic}/{iban}"),
            PaytoTarget::Iban { bic: None, iban } => write!(f, "iban/{iban}"),
            PaytoTarget::XTalerBank { host, account } => {
                write!(f, "x-taler-bank/{host}/{}", enc(account))
            }
            PaytoTarget::CardTransaction {
                processor_host,
                transaction_id,
            } => write!(
                f,
                "card-transaction/{processor_host}/{}",
                enc(transaction_id)
            ),
            PaytoTarget::Other { target_type, path } => write!(f, "{target_type}/{path}"),
        }
    }
}

fn decode(s: &str) -> Result<String, PaytoError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| PaytoError::Encoding)
}

/// Decodes a query component as `application/x-www-form-urlencoded` (`+` is a space), like the
/// wallet's `URLSearchParams`.
fn decode_query(s: &str) -> Result<String, PaytoError> {
    decode(&s.replace('+', " "))
}

fn check_iban(raw: &str) -> Result<String, PaytoError> {
    let iban: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let b = iban.as_bytes();
    let shape_ok = (5..=34).contains(&b.len())
        && b.iter().take(2).all(u8::is_ascii_uppercase)
        && b.iter().skip(2).take(2).all(u8::is_ascii_digit)
        && b.iter().all(u8::is_ascii_alphanumeric);
    if !shape_ok {
        return Err(PaytoError::InvalidIban);
    }
    // ISO 13616: move the first four characters to the end, letters become 10..35, mod 97 == 1.
    let mut rem: u32 = 0;
    for &c in b.iter().skip(4).chain(b.iter().take(4)) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    if rem == 1 {
        Ok(iban)
    } else {
        Err(PaytoError::InvalidIban)
    }
}

fn check_bic(raw: &str) -> Result<String, PaytoError> {
    let bic = raw.to_ascii_uppercase();
    if matches!(bic.len(), 8 | 11) && bic.bytes().all(|c| c.is_ascii_alphanumeric()) {
        Ok(bic)
    } else {
        Err(PaytoError::InvalidBic)
    }
}

impl FromStr for PaytoUri {
    type Err = PaytoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let has_prefix = s
            .get(..PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX));
        if !has_prefix {
            return Err(PaytoError::Malformed("must start with payto://"));
        }
        let rest = &s[PREFIX.len()..];
        let (account, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (target_type, path) = account
            .split_once('/')
            .ok_or(PaytoError::Malformed("missing target path"))?;
        let target_type = target_type.to_ascii_lowercase();
        if target_type.is_empty()
            || !target_type
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'+')
        {
            return Err(PaytoError::Malformed("invalid target type"));
        }
        let segments: Vec<&str> = path.split('/').collect();
        let target = match (target_type.as_str(), segments.as_slice()) {
            ("iban", [iban]) => PaytoTarget::Iban {
                bic: None,
                iban: check_iban(&decode(iban)?)?,
            },
            ("iban", [bic, iban]) => PaytoTarget::Iban {
                bic: Some(check_bic(&decode(bic)?)?),
                iban: check_iban(&decode(iban)?)?,
            },
            ("iban", _) => return Err(PaytoError::Malformed("iban needs [BIC/]IBAN")),
            ("x-taler-bank", [host, account]) if !host.is_empty() && !account.is_empty() => {
                PaytoTarget::XTalerBank {
                    host: decode(host)?.to_ascii_lowercase(),
                    account: decode(account)?,
                }
            }
            ("x-taler-bank", _) => {
                return Err(PaytoError::Malformed("x-taler-bank needs HOST/ACCOUNT"));
            }
            ("card-transaction", [host, tx]) if !host.is_empty() && !tx.is_empty() => {
                PaytoTarget::CardTransaction {
                    processor_host: decode(host)?.to_ascii_lowercase(),
                    transaction_id: decode(tx)?,
                }
            }
            ("card-transaction", _) => {
                return Err(PaytoError::Malformed(
                    "card-transaction needs HOST/TRANSACTION-ID",
                ));
            }
            (_, _) if path.is_empty() => return Err(PaytoError::Malformed("empty target path")),
            (_, _) => {
                decode(path)?;
                PaytoTarget::Other {
                    target_type,
                    path: path.to_owned(),
                }
            }
        };
        let mut params = Vec::new();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((decode_query(k)?, decode_query(v)?));
        }
        Ok(Self { target, params })
    }
}

impl fmt::Display for PaytoUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        self.write_path(f)?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(
                f,
                "{sep}{}={}",
                utf8_percent_encode(k, COMPONENT),
                utf8_percent_encode(v, COMPONENT)
            )?;
        }
        Ok(())
    }
}

impl Serialize for PaytoUri {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PaytoUri {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PaytoUri {
        s.parse().unwrap()
    }

    #[test]
    fn iban() {
        let u = p("payto://iban/DE89370400440532013000?receiver-name=Exchange");
        assert_eq!(u.target_type(), "iban");
        assert_eq!(u.receiver_name(), Some("Exchange"));
        assert_eq!(
            u.to_string(),
            "payto://iban/DE89370400440532013000?receiver-name=Exchange"
        );
        let with_bic =
            p("payto://iban/SOGEDEFFXXX/de89370400440532013000?receiver-name=Jane%20Doe");
        assert_eq!(
            with_bic.target(),
            &PaytoTarget::Iban {
                bic: Some("SOGEDEFFXXX".into()),
                iban: "DE89370400440532013000".into()
            }
        );
        assert_eq!(with_bic.receiver_name(), Some("Jane Doe"));
        assert_eq!(
            with_bic.to_string(),
            "payto://iban/SOGEDEFFXXX/DE89370400440532013000?receiver-name=Jane%20Doe"
        );
        assert_eq!(
            p("payto://iban/CH9300762011623852957")
                .normalized()
                .to_string(),
            "payto://iban/CH9300762011623852957"
        );
        assert_eq!(
            PaytoUri::iban("DE75 5121 0800 1245 1261 99", None, Some("Shop"))
                .unwrap()
                .to_string(),
            "payto://iban/DE75512108001245126199?receiver-name=Shop"
        );
        // one digit off: check digits fail
        assert_eq!(
            "payto://iban/DE89370400440532013001".parse::<PaytoUri>(),
            Err(PaytoError::InvalidIban)
        );
        assert!("payto://iban/".parse::<PaytoUri>().is_err());
        assert!(
            "payto://iban/X/DE89370400440532013000"
                .parse::<PaytoUri>()
                .is_err()
        );
    }

    #[test]
    fn x_taler_bank_and_card() {
        let u = p(
            "payto://x-taler-bank/Bank.Example:8080/exchange?receiver-name=Taler+Exchange&message=hi",
        );
        assert_eq!(
            u.target(),
            &PaytoTarget::XTalerBank {
                host: "bank.example:8080".into(),
                account: "exchange".into()
            }
        );
        assert_eq!(u.receiver_name(), Some("Taler Exchange"));
        assert_eq!(u.message(), Some("hi"));
        assert_eq!(
            u.to_string(),
            "payto://x-taler-bank/bank.example:8080/exchange?receiver-name=Taler%20Exchange&message=hi"
        );
        assert!(u.same_account(&p("payto://x-taler-bank/bank.example:8080/exchange")));
        let c = PaytoUri::card_transaction("proc.example", "tx 42/a").unwrap();
        assert_eq!(
            c.to_string(),
            "payto://card-transaction/proc.example/tx%2042%2Fa"
        );
        assert_eq!(p(&c.to_string()), c);
        let with_amount = c.clone().with_param("amount", "EUR:5");
        assert_eq!(with_amount.amount(), Some("EUR:5".parse().unwrap()));
        assert_eq!(with_amount.normalized(), c);
    }

    #[test]
    fn other_and_errors() {
        let u = p("payto://wallee-transaction/12345");
        assert_eq!(u.target_type(), "wallee-transaction");
        assert_eq!(u.to_string(), "payto://wallee-transaction/12345");
        for bad in [
            "",
            "payto:/iban/x",
            "http://iban/x",
            "payto://",
            "payto://iban",
            "payto:///x",
            "payto://x-taler-bank/host",
            "payto://card-transaction/h/",
            "payto://foo/%ff",
            "payto://a b/c",
            "payto://x-taler-bank/h/a?x=%c3",
        ] {
            assert!(bad.parse::<PaytoUri>().is_err(), "{bad}");
        }
    }
}
