//! This bank's payto addresses: `payto://x-taler-bank/{host}/{name}?receiver-name=…`.
//!
//! RFC 8905 payto URIs with the `x-taler-bank` target type (docs.taler.net "payto";
//! libeufin `BankPaytoCtx`): the first path segment names the bank — our configured `host_name`,
//! compared case-insensitively — and the second the account. Any other target type (iban, …) or
//! host is an account outside this bank. Parsing is `cardcash_util::PaytoUri`'s; this module only
//! knows which of those URIs are ours. Pure, no IO.

use cardcash_util::PaytoUri;
use cardcash_util::payto::{PaytoError, PaytoTarget};

use crate::account::AccountName;

/// Builds and recognises the payto URIs of this bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankPayto {
    host: String,
}

impl BankPayto {
    /// `host` is the bank's name in payto URIs (`HOST_NAME` in the config, e.g. `localhost` or
    /// `bank.example:8080`); it must be a non-empty `host[:port]` without `/`, `?` or spaces.
    pub fn new(host: &str) -> Result<Self, PaytoError> {
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        if !ok {
            return Err(PaytoError::Malformed(
                "the bank host name must be host[:port]",
            ));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The payto URI of an account, with its legal name as `receiver-name`.
    ///
    /// Cannot fail for a checked host and a stored account name (neither contains `/`); the
    /// error exists only so that a broken invariant is a 500, not a panic.
    pub fn account_uri(&self, name: &str, legal_name: &str) -> Result<PaytoUri, PaytoError> {
        PaytoUri::x_taler_bank(&self.host, name, Some(legal_name))
    }

    /// The account of this bank the URI designates, if it is one of ours. `None` for other
    /// target types, other banks and malformed account names (none of which can exist here).
    pub fn local_account(&self, payto: &PaytoUri) -> Option<AccountName> {
        match payto.target() {
            PaytoTarget::XTalerBank { host, account } if host.eq_ignore_ascii_case(&self.host) => {
                account.parse().ok()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PaytoUri {
        s.parse().unwrap()
    }

    #[test]
    fn recognises_local_accounts() {
        let bank = BankPayto::new("localhost").unwrap();
        let alice: AccountName = "alice".parse().unwrap();
        assert_eq!(
            bank.local_account(&p("payto://x-taler-bank/localhost/alice")),
            Some(alice.clone())
        );
        assert_eq!(
            bank.local_account(&p("payto://x-taler-bank/LOCALHOST/alice?receiver-name=A")),
            Some(alice)
        );
        for other in [
            "payto://x-taler-bank/elsewhere/alice",
            "payto://x-taler-bank/localhost:8080/alice",
            "payto://x-taler-bank/localhost/bad%20name",
            "payto://iban/DE89370400440532013000",
        ] {
            assert_eq!(bank.local_account(&p(other)), None, "{other}");
        }
    }

    #[test]
    fn rejects_bad_hosts() {
        for bad in ["", "a/b", "a b", "a?b"] {
            assert!(BankPayto::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn builds_account_uri_that_round_trips() {
        let bank = BankPayto::new("Bank.example:8080").unwrap();
        let uri = bank.account_uri("shop-1", "Café & Co").unwrap();
        let text = uri.to_string();
        assert!(
            text.starts_with("payto://x-taler-bank/bank.example:8080/shop-1?receiver-name="),
            "{text}"
        );
        let parsed = p(&text);
        assert_eq!(parsed.receiver_name(), Some("Café & Co"));
        assert_eq!(bank.local_account(&parsed), Some("shop-1".parse().unwrap()));
    }
}
