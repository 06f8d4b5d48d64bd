//! The bank's typed configuration, read from section `[bank]` of the Taler INI file.
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `CURRENCY` | the bank's only currency | `[taler]/CURRENCY` |
//! | `BIND` | listen address `host:port` | `127.0.0.1:8081` |
//! | `BASE_URL` | public base URL (for links) | `http://{BIND}/` |
//! | `DATABASE` | `sqlite:/path/bank.db` or `postgres://…` | `sqlite:bank.db` |
//! | `HOST_NAME` | the bank's name in `payto://x-taler-bank/{HOST_NAME}/{account}` | `localhost` |
//! | `ADMIN_TOKEN` | bearer token granting admin rights (`Bearer <token>`) | none |
//! | `DEFAULT_DEBT_LIMIT` | how far below zero new customer accounts may go | `CUR:0` |
//! | `DEFAULT_ADMIN_DEBT_LIMIT` | how far below zero the `admin` funding account may go | `CUR:1000000` |
//! | `ALLOW_REGISTRATION` | anyone may `POST /accounts` (customer accounts only) | `no` |
//!
//! The debt-limit option names are libeufin-bank's (`[libeufin-bank]`), so operators find them.

use std::fmt;
use std::net::SocketAddr;

use cardcash_util::{Amount, BaseUrl, ConfigError, Currency, TalerConfig};

/// The configuration section.
pub const SECTION: &str = "bank";
/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8081";
/// Default x-taler-bank host name.
pub const DEFAULT_HOST_NAME: &str = "localhost";
/// Default debt limit of the admin account, in whole currency units.
pub const DEFAULT_ADMIN_DEBT_UNITS: u64 = 1_000_000;

/// Typed `[bank]` configuration.
#[derive(Clone)]
pub struct BankConfig {
    pub bind: SocketAddr,
    /// Public base URL; `None` = derived from the bound address.
    pub base_url: Option<BaseUrl>,
    pub database_url: String,
    pub currency: Currency,
    /// The bank's name in its payto URIs.
    pub host_name: String,
    /// Bearer token with admin rights; `None` = admin only through the `admin` account's
    /// password (if one was set) and the CLI.
    pub admin_token: Option<String>,
    /// Debit limit of new customer accounts.
    pub default_debit_limit: Amount,
    /// Debit limit of the `admin` funding account (set when it is created).
    pub admin_debit_limit: Amount,
    /// Whether unauthenticated clients may register customer accounts.
    pub allow_registration: bool,
}

impl fmt::Debug for BankConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankConfig")
            .field("bind", &self.bind)
            .field("base_url", &self.base_url)
            .field("database_url", &"…")
            .field("currency", &self.currency)
            .field("host_name", &self.host_name)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "…redacted…"),
            )
            .field("default_debit_limit", &self.default_debit_limit)
            .field("admin_debit_limit", &self.admin_debit_limit)
            .field("allow_registration", &self.allow_registration)
            .finish()
    }
}

fn invalid(option: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        section: SECTION.to_owned(),
        option: option.to_owned(),
        why: why.into(),
    }
}

impl BankConfig {
    /// A configuration for `currency` with every other option at its default; tests and the
    /// demo adjust fields from here (`bind` is `127.0.0.1:0`, a free port).
    pub fn new(currency: Currency, database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_url: None,
            database_url: database_url.into(),
            currency,
            host_name: DEFAULT_HOST_NAME.to_owned(),
            admin_token: None,
            default_debit_limit: Amount::zero(&currency),
            admin_debit_limit: Amount::new(currency, DEFAULT_ADMIN_DEBT_UNITS, 0)
                .unwrap_or_else(|_| Amount::max(&currency)),
            allow_registration: false,
        }
    }

    /// Reads section `[bank]` (see the module documentation for the options).
    pub fn from_taler_config(cfg: &TalerConfig) -> Result<Self, ConfigError> {
        let currency = match cfg.currency_opt(SECTION, "CURRENCY")? {
            Some(c) => c,
            None => cfg.currency("taler", "CURRENCY")?,
        };
        let bind_text = cfg
            .string_opt(SECTION, "BIND")?
            .unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind: SocketAddr = bind_text
            .parse()
            .map_err(|e| invalid("BIND", format!("not host:port: {e}")))?;
        let database_url = cfg
            .string_opt(SECTION, "DATABASE")?
            .map(|d| cfg.expand(&d))
            .transpose()?
            .unwrap_or_else(|| "sqlite:bank.db".to_owned());
        let mut config = Self::new(currency, database_url);
        config.bind = bind;
        config.base_url = cfg.base_url_opt(SECTION, "BASE_URL")?;
        if let Some(host) = cfg.string_opt(SECTION, "HOST_NAME")? {
            crate::payto::BankPayto::new(&host).map_err(|e| invalid("HOST_NAME", e.to_string()))?;
            config.host_name = host;
        }
        config.admin_token = cfg
            .string_opt(SECTION, "ADMIN_TOKEN")?
            .filter(|t| !t.is_empty());
        let check = |option: &str, a: Amount| -> Result<Amount, ConfigError> {
            if a.currency() == &currency {
                Ok(a)
            } else {
                Err(invalid(option, format!("currency must be {currency}")))
            }
        };
        if let Some(a) = cfg.amount_opt(SECTION, "DEFAULT_DEBT_LIMIT")? {
            config.default_debit_limit = check("DEFAULT_DEBT_LIMIT", a)?;
        }
        if let Some(a) = cfg.amount_opt(SECTION, "DEFAULT_ADMIN_DEBT_LIMIT")? {
            config.admin_debit_limit = check("DEFAULT_ADMIN_DEBT_LIMIT", a)?;
        }
        config.allow_registration = cfg
            .yes_no_opt(SECTION, "ALLOW_REGISTRATION")?
            .unwrap_or(false);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_all_options() {
        let cfg = TalerConfig::parse_str(
            "[bank]\nCURRENCY = KUDOS\nBIND = 0.0.0.0:9000\nBASE_URL = https://bank.example/\n\
             DATABASE = postgres://u@h/db\nHOST_NAME = bank.example\nADMIN_TOKEN = s3cret\n\
             DEFAULT_DEBT_LIMIT = KUDOS:5\nDEFAULT_ADMIN_DEBT_LIMIT = KUDOS:10\n\
             ALLOW_REGISTRATION = yes\n",
        )
        .unwrap();
        let c = BankConfig::from_taler_config(&cfg).unwrap();
        assert_eq!(c.currency.as_str(), "KUDOS");
        assert_eq!(c.bind, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.base_url.unwrap().as_str(), "https://bank.example/");
        assert_eq!(c.database_url, "postgres://u@h/db");
        assert_eq!(c.host_name, "bank.example");
        assert_eq!(c.admin_token.as_deref(), Some("s3cret"));
        assert_eq!(c.default_debit_limit.to_string(), "KUDOS:5");
        assert_eq!(c.admin_debit_limit.to_string(), "KUDOS:10");
        assert!(c.allow_registration);
    }

    #[test]
    fn defaults_and_taler_currency() {
        let cfg = TalerConfig::parse_str("[taler]\nCURRENCY = EUR\n").unwrap();
        let c = BankConfig::from_taler_config(&cfg).unwrap();
        assert_eq!(c.currency.as_str(), "EUR");
        assert_eq!(c.bind, DEFAULT_BIND.parse().unwrap());
        assert_eq!(c.host_name, "localhost");
        assert_eq!(c.default_debit_limit.to_string(), "EUR:0");
        assert_eq!(c.admin_debit_limit.to_string(), "EUR:1000000");
        assert!(!c.allow_registration);
        assert!(c.admin_token.is_none());
        assert!(!format!("{c:?}").contains("sqlite"));
    }

    #[test]
    fn rejects_bad_values() {
        for text in [
            "[bank]\nCURRENCY = KUDOS\nBIND = nonsense\n",
            "[bank]\nCURRENCY = KUDOS\nDEFAULT_DEBT_LIMIT = EUR:1\n",
            "[bank]\nCURRENCY = KUDOS\nHOST_NAME = a/b\n",
            "[bank]\nBIND = 127.0.0.1:1\n",
        ] {
            let cfg = TalerConfig::parse_str(text).unwrap();
            assert!(BankConfig::from_taler_config(&cfg).is_err(), "{text}");
        }
    }
}
