//! The card processor's typed configuration: section `[cardproc]` and one `[cardproc-user-NAME]`
//! section per preconfigured API user.
//!
//! | option (`[cardproc]`) | meaning | default |
//! |---|---|---|
//! | `CURRENCIES` | accepted currencies, space or comma separated | `[cardproc]/CURRENCY`, else `[taler]/CURRENCY` |
//! | `BIND` | listen address `host:port` | `127.0.0.1:8083` |
//! | `BASE_URL` | public base URL | `http://{BIND}/` |
//! | `DATABASE` | `sqlite:/path/cardproc.db` or `postgres://…` | `sqlite:cardproc.db` |
//! | `SPACE_ID` | the one Wallee-style space this processor serves | `1` |
//! | `DELAY_FINALITY` | how long the delayed-finality test card stays `AUTHORIZED` | `3 s` |
//! | `ADMIN_TOKEN` | bearer token for `/admin/…` | none (admin endpoints refuse) |
//! | `PAYOUT_BANK_URL` | the bank's Core Bank API base URL; set = payouts on (`src/payout.rs`) | none (no payouts) |
//! | `PAYOUT_BANK_ACCOUNT` | the processor's own settlement account at that bank, which pays the payouts | required with `PAYOUT_BANK_URL` |
//! | `PAYOUT_BANK_PASSWORD` / `PAYOUT_BANK_TOKEN` | its password (HTTP Basic) or a bearer token (one of them) | required with `PAYOUT_BANK_URL` |
//! | `PAYOUT_PAYTO` | the merchant's account (the space's owner: the exchange operator), where the captured money goes | required with `PAYOUT_BANK_URL` |
//! | `PAYOUT_DELAY` | settlement delay: a capture is paid out once it is this old | `1 d` |
//! | `PAYOUT_FEE` | the processor's fee per captured transaction, kept from the payout | none (zero) |
//! | `PAYOUT_CURRENCY` | the currency paid out (the bank's); transactions in other currencies are not | the first of `CURRENCIES` |
//!
//! | option (`[cardproc-user-NAME]`) | meaning |
//! |---|---|
//! | `ID` | the numeric user id (`x-mac-userid`) |
//! | `SECRET` | base64 MAC secret (as Wallee hands it out) |
//! | `ROLE` | `terminal` or `reader` |
//!
//! Configured users are written to the database at start-up (secret and role updated if the
//! id exists); users created with `cardcash cardproc create-user` live only in the database.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use cardcash_util::{Amount, BaseUrl, ConfigError, Currency, PaytoUri, RelativeTime, TalerConfig};

use cardcash_api::cardproc::mac::MacKey;

/// The main configuration section.
pub const SECTION: &str = "cardproc";
/// Prefix of the per-user sections.
pub const USER_SECTION_PREFIX: &str = "cardproc-user-";
/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8083";
/// Default space id.
pub const DEFAULT_SPACE_ID: u64 = 1;
/// Default time the delayed-finality test card stays `AUTHORIZED`.
pub const DEFAULT_DELAY_FINALITY: Duration = Duration::from_secs(3);
/// Default settlement delay: acquirers pay out the day after capture.
pub const DEFAULT_PAYOUT_DELAY: Duration = Duration::from_secs(86_400);

/// What an API user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A payment terminal: create and process transactions, read them.
    Terminal,
    /// A reader such as C2EC: read transactions, create and read refunds.
    Reader,
}

impl Role {
    /// The name in configuration and in the database.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Terminal => "terminal",
            Self::Reader => "reader",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name other than `terminal` / `reader`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected terminal or reader)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "terminal" => Ok(Self::Terminal),
            "reader" => Ok(Self::Reader),
            _ => Err(UnknownRole(s.to_owned())),
        }
    }
}

/// One preconfigured API user.
#[derive(Clone)]
pub struct ApiUserConfig {
    /// `x-mac-userid`.
    pub id: u64,
    /// The MAC secret.
    pub secret: MacKey,
    /// What the user may do.
    pub role: Role,
}

impl fmt::Debug for ApiUserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiUserConfig")
            .field("id", &self.id)
            .field("secret", &self.secret)
            .field("role", &self.role)
            .finish()
    }
}

/// How the processor logs in at the bank.
#[derive(Clone, PartialEq, Eq)]
pub enum BankCredentials {
    /// HTTP Basic with the account's password.
    Password(String),
    /// A bearer token of the account.
    Token(String),
}

impl fmt::Debug for BankCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(…redacted…)"),
            Self::Token(_) => f.write_str("Token(…redacted…)"),
        }
    }
}

/// Payouts: the captured card payments, net of refunds and fees, wired from the processor's
/// settlement account to the merchant's account a settlement delay after capture.
#[derive(Debug, Clone)]
pub struct PayoutConfig {
    /// The bank's Core Bank API.
    pub bank_url: BaseUrl,
    /// The processor's account at that bank.
    pub bank_account: String,
    /// Its credentials.
    pub credentials: BankCredentials,
    /// Where the money goes.
    pub payto: PaytoUri,
    /// How old a capture must be to be paid out.
    pub delay: Duration,
    /// Kept per captured transaction (zero: none).
    pub fee: Amount,
}

impl PayoutConfig {
    /// Payouts to `payto` from `bank_account` at `bank_url`, with the default delay and no fee,
    /// in `currency`.
    pub fn new(
        bank_url: BaseUrl,
        bank_account: impl Into<String>,
        credentials: BankCredentials,
        payto: PaytoUri,
        currency: Currency,
    ) -> Self {
        Self {
            bank_url,
            bank_account: bank_account.into(),
            credentials,
            payto,
            delay: DEFAULT_PAYOUT_DELAY,
            fee: Amount::zero(&currency),
        }
    }

    /// The currency paid out.
    pub fn currency(&self) -> &Currency {
        self.fee.currency()
    }
}

/// Typed `[cardproc]` configuration.
#[derive(Clone)]
pub struct CardprocConfig {
    /// Listen address (`127.0.0.1:0` picks a free port).
    pub bind: SocketAddr,
    /// Public base URL; `None` = derived from the bound address.
    pub base_url: Option<BaseUrl>,
    /// `sqlite:…` or `postgres://…`.
    pub database_url: String,
    /// Accepted currencies (at least one).
    pub currencies: Vec<Currency>,
    /// The one space this processor serves.
    pub space_id: u64,
    /// How long the delayed-finality test card stays `AUTHORIZED` before `FULFILL`.
    pub delay_finality: RelativeTime,
    /// Bearer token for `/admin/…`; `None` disables those endpoints.
    pub admin_token: Option<String>,
    /// Users written to the database at start-up.
    pub users: Vec<ApiUserConfig>,
    /// Payouts to the merchant's bank account; `None` = none.
    pub payout: Option<PayoutConfig>,
}

impl fmt::Debug for CardprocConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardprocConfig")
            .field("bind", &self.bind)
            .field("base_url", &self.base_url)
            .field("database_url", &"…")
            .field("currencies", &self.currencies)
            .field("space_id", &self.space_id)
            .field("delay_finality", &self.delay_finality)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "…redacted…"),
            )
            .field("users", &self.users)
            .field("payout", &self.payout)
            .finish()
    }
}

fn invalid(section: &str, option: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        section: section.to_owned(),
        option: option.to_owned(),
        why: why.into(),
    }
}

impl CardprocConfig {
    /// A configuration accepting `currency`, every other option at its default; `bind` is
    /// `127.0.0.1:0` (a free port). Tests and the demo adjust fields from here.
    pub fn new(currency: Currency, database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_url: None,
            database_url: database_url.into(),
            currencies: vec![currency],
            space_id: DEFAULT_SPACE_ID,
            delay_finality: RelativeTime::from_duration(DEFAULT_DELAY_FINALITY),
            admin_token: None,
            users: Vec::new(),
            payout: None,
        }
    }

    /// Whether `currency` is accepted.
    pub fn accepts(&self, currency: &Currency) -> bool {
        self.currencies.contains(currency)
    }

    /// Reads `[cardproc]` and every `[cardproc-user-NAME]` (see the module documentation).
    pub fn from_taler_config(cfg: &TalerConfig) -> Result<Self, ConfigError> {
        let currencies = match cfg.string_opt(SECTION, "CURRENCIES")? {
            Some(list) => list
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(|s| {
                    Currency::new(s).map_err(|e| invalid(SECTION, "CURRENCIES", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => match cfg.currency_opt(SECTION, "CURRENCY")? {
                Some(c) => vec![c],
                None => vec![cfg.currency("taler", "CURRENCY")?],
            },
        };
        let Some(first) = currencies.first().copied() else {
            return Err(invalid(
                SECTION,
                "CURRENCIES",
                "at least one currency is required",
            ));
        };
        let bind_text = cfg
            .string_opt(SECTION, "BIND")?
            .unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind: SocketAddr = bind_text
            .parse()
            .map_err(|e| invalid(SECTION, "BIND", format!("not host:port: {e}")))?;
        let database_url = cfg
            .string_opt(SECTION, "DATABASE")?
            .map(|d| cfg.expand(&d))
            .transpose()?
            .unwrap_or_else(|| "sqlite:cardproc.db".to_owned());
        let mut config = Self::new(first, database_url);
        config.currencies = currencies;
        config.bind = bind;
        config.base_url = cfg.base_url_opt(SECTION, "BASE_URL")?;
        if let Some(space) = cfg.number_opt(SECTION, "SPACE_ID")? {
            if space == 0 || i64::try_from(space).is_err() {
                return Err(invalid(
                    SECTION,
                    "SPACE_ID",
                    "must be a positive 63-bit number",
                ));
            }
            config.space_id = space;
        }
        if let Some(delay) = cfg.relative_time_opt(SECTION, "DELAY_FINALITY")? {
            if finality_delay(delay).is_none() {
                return Err(invalid(
                    SECTION,
                    "DELAY_FINALITY",
                    "must be finite (at most a day)",
                ));
            }
            config.delay_finality = delay;
        }
        config.admin_token = cfg
            .string_opt(SECTION, "ADMIN_TOKEN")?
            .filter(|t| !t.is_empty());
        config.payout = payout_from_config(cfg, &config.currencies)?;
        for section in cfg.sections() {
            let Some(name) = section.strip_prefix(USER_SECTION_PREFIX) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let id = cfg.number(&section, "ID")?;
            if id == 0 || i64::try_from(id).is_err() {
                return Err(invalid(&section, "ID", "must be a positive 63-bit number"));
            }
            let secret = MacKey::from_base64(&cfg.string(&section, "SECRET")?)
                .map_err(|e| invalid(&section, "SECRET", e.to_string()))?;
            let role = cfg
                .string(&section, "ROLE")?
                .parse::<Role>()
                .map_err(|e| invalid(&section, "ROLE", e.to_string()))?;
            if config.users.iter().any(|u| u.id == id) {
                return Err(invalid(
                    &section,
                    "ID",
                    format!("user id {id} is configured twice"),
                ));
            }
            config.users.push(ApiUserConfig { id, secret, role });
        }
        Ok(config)
    }
}

/// The `PAYOUT_…` options (see the module documentation); `None` without `PAYOUT_BANK_URL`.
fn payout_from_config(
    cfg: &TalerConfig,
    currencies: &[Currency],
) -> Result<Option<PayoutConfig>, ConfigError> {
    let Some(bank_url) = cfg.base_url_opt(SECTION, "PAYOUT_BANK_URL")? else {
        return Ok(None);
    };
    let currency = match cfg.currency_opt(SECTION, "PAYOUT_CURRENCY")? {
        Some(c) if currencies.contains(&c) => c,
        Some(c) => {
            return Err(invalid(
                SECTION,
                "PAYOUT_CURRENCY",
                format!("{c} is not one of CURRENCIES"),
            ));
        }
        None => *currencies
            .first()
            .ok_or_else(|| invalid(SECTION, "CURRENCIES", "at least one currency is required"))?,
    };
    let bank_account = cfg
        .string_opt(SECTION, "PAYOUT_BANK_ACCOUNT")?
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            invalid(
                SECTION,
                "PAYOUT_BANK_ACCOUNT",
                "required with PAYOUT_BANK_URL",
            )
        })?;
    let password = cfg
        .string_opt(SECTION, "PAYOUT_BANK_PASSWORD")?
        .filter(|p| !p.is_empty());
    let token = cfg
        .string_opt(SECTION, "PAYOUT_BANK_TOKEN")?
        .filter(|t| !t.is_empty());
    let credentials = match (password, token) {
        (Some(p), None) => BankCredentials::Password(p),
        (None, Some(t)) => BankCredentials::Token(t),
        _ => {
            return Err(invalid(
                SECTION,
                "PAYOUT_BANK_PASSWORD",
                "exactly one of PAYOUT_BANK_PASSWORD and PAYOUT_BANK_TOKEN is required",
            ));
        }
    };
    let payto: PaytoUri = cfg
        .string_opt(SECTION, "PAYOUT_PAYTO")?
        .ok_or_else(|| invalid(SECTION, "PAYOUT_PAYTO", "required with PAYOUT_BANK_URL"))?
        .parse()
        .map_err(|e| invalid(SECTION, "PAYOUT_PAYTO", format!("not a payto URI: {e}")))?;
    let mut payout = PayoutConfig::new(bank_url, bank_account, credentials, payto, currency);
    if let Some(delay) = cfg.relative_time_opt(SECTION, "PAYOUT_DELAY")? {
        payout.delay = delay
            .to_duration()
            .ok_or_else(|| invalid(SECTION, "PAYOUT_DELAY", "must be finite"))?;
    }
    if let Some(fee) = cfg.amount_opt(SECTION, "PAYOUT_FEE")? {
        if fee.currency() != &currency {
            return Err(invalid(
                SECTION,
                "PAYOUT_FEE",
                format!("must be in the payout currency {currency}"),
            ));
        }
        payout.fee = fee;
    }
    Ok(Some(payout))
}

/// The delay as a `Duration` if it is usable: at most a day, because it exists for tests and
/// demos and a finite bound keeps timers sane.
pub fn finality_delay(delay: RelativeTime) -> Option<Duration> {
    delay
        .to_duration()
        .filter(|d| *d <= Duration::from_secs(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "OWOMg2gnaSx1nwMu8MAndfw0CvYJwKOakpYxWpWsdC0=";

    #[test]
    fn reads_all_options() {
        let cfg = TalerConfig::parse_str(&format!(
            "[cardproc]\nCURRENCIES = CHF, EUR\nBIND = 0.0.0.0:9000\nBASE_URL = https://cp.example/\n\
             DATABASE = postgres://u@h/db\nSPACE_ID = 7\nDELAY_FINALITY = 300 ms\nADMIN_TOKEN = tok\n\
             [cardproc-user-c2ec]\nID = 11\nSECRET = {SECRET}\nROLE = reader\n\
             [cardproc-user-t1]\nID = 12\nSECRET = {SECRET}\nROLE = terminal\n"
        ))
        .unwrap();
        let c = CardprocConfig::from_taler_config(&cfg).unwrap();
        assert_eq!(
            c.currencies,
            vec![Currency::new("CHF").unwrap(), Currency::new("EUR").unwrap()]
        );
        assert_eq!(c.bind, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.base_url.unwrap().to_string(), "https://cp.example/");
        assert_eq!(c.database_url, "postgres://u@h/db");
        assert_eq!(c.space_id, 7);
        assert_eq!(
            c.delay_finality,
            RelativeTime::from_duration(Duration::from_millis(300))
        );
        assert_eq!(c.admin_token.as_deref(), Some("tok"));
        let mut users: Vec<(u64, Role)> = c.users.iter().map(|u| (u.id, u.role)).collect();
        users.sort_by_key(|u| u.0);
        assert_eq!(users, vec![(11, Role::Reader), (12, Role::Terminal)]);
    }

    #[test]
    fn defaults_and_taler_currency() {
        let cfg = TalerConfig::parse_str("[taler]\nCURRENCY = KUDOS\n").unwrap();
        let c = CardprocConfig::from_taler_config(&cfg).unwrap();
        assert_eq!(c.currencies, vec![Currency::new("KUDOS").unwrap()]);
        assert_eq!(c.bind, DEFAULT_BIND.parse().unwrap());
        assert_eq!(c.space_id, 1);
        assert_eq!(
            finality_delay(c.delay_finality),
            Some(DEFAULT_DELAY_FINALITY)
        );
        assert!(c.admin_token.is_none() && c.users.is_empty());
    }

    #[test]
    fn rejects_bad_values() {
        for text in [
            "[cardproc]\nCURRENCIES = chf\n",
            "[cardproc]\nCURRENCY = CHF\nBIND = nowhere\n",
            "[cardproc]\nCURRENCY = CHF\nSPACE_ID = 0\n",
            "[cardproc]\nCURRENCY = CHF\nDELAY_FINALITY = forever\n",
            "[cardproc]\nCURRENCY = CHF\n[cardproc-user-x]\nID = 1\nSECRET = %%%\nROLE = reader\n",
            "[cardproc]\nCURRENCY = CHF\n[cardproc-user-x]\nID = 1\nSECRET = AAAA\nROLE = admin\n",
            "[cardproc]\nCURRENCY = CHF\n[cardproc-user-x]\nSECRET = AAAA\nROLE = reader\n",
            "[cardproc]\nCURRENCY = CHF\n[cardproc-user-x]\nID = 1\nSECRET = AAAA\nROLE = reader\n\
             [cardproc-user-y]\nID = 1\nSECRET = AAAA\nROLE = reader\n",
        ] {
            let cfg = TalerConfig::parse_str(text).unwrap();
            assert!(CardprocConfig::from_taler_config(&cfg).is_err(), "{text}");
        }
    }

    #[test]
    fn reads_payout_options() {
        let base = "[cardproc]\nCURRENCIES = CHF EUR\nPAYOUT_BANK_URL = http://bank.example/\n\
                    PAYOUT_BANK_ACCOUNT = cardproc\n";
        let cfg = TalerConfig::parse_str(&format!(
            "{base}PAYOUT_BANK_PASSWORD = pw\nPAYOUT_PAYTO = payto://x-taler-bank/bank.example/exchange?receiver-name=Exchange\n\
             PAYOUT_DELAY = 2 s\nPAYOUT_FEE = CHF:0.25\n"
        ))
        .unwrap();
        let p = CardprocConfig::from_taler_config(&cfg)
            .unwrap()
            .payout
            .unwrap();
        assert_eq!(p.bank_url.to_string(), "http://bank.example/");
        assert_eq!(p.bank_account, "cardproc");
        assert_eq!(p.credentials, BankCredentials::Password("pw".into()));
        assert_eq!(p.delay, Duration::from_secs(2));
        assert_eq!(p.fee.to_string(), "CHF:0.25");
        assert_eq!(p.currency().as_str(), "CHF");
        assert!(!format!("{p:?}").contains("pw\""));

        let none = TalerConfig::parse_str("[cardproc]\nCURRENCY = CHF\n").unwrap();
        assert!(
            CardprocConfig::from_taler_config(&none)
                .unwrap()
                .payout
                .is_none()
        );

        let payto = "PAYOUT_PAYTO = payto://x-taler-bank/bank.example/exchange\n";
        for bad in [
            format!("{base}{payto}"),
            format!("{base}PAYOUT_BANK_PASSWORD = a\nPAYOUT_BANK_TOKEN = b\n{payto}"),
            format!("{base}PAYOUT_BANK_TOKEN = b\n"),
            format!("{base}PAYOUT_BANK_TOKEN = b\n{payto}PAYOUT_FEE = EUR:1\n"),
            format!("{base}PAYOUT_BANK_TOKEN = b\n{payto}PAYOUT_CURRENCY = USD\n"),
            format!("{base}PAYOUT_BANK_TOKEN = b\n{payto}PAYOUT_DELAY = forever\n"),
        ] {
            let cfg = TalerConfig::parse_str(&bad).unwrap();
            assert!(CardprocConfig::from_taler_config(&cfg).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut c = CardprocConfig::new(Currency::new("CHF").unwrap(), "sqlite:x.db");
        c.admin_token = Some("hunter2".into());
        c.users.push(ApiUserConfig {
            id: 1,
            secret: MacKey::from_base64(SECRET).unwrap(),
            role: Role::Reader,
        });
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains(SECRET),
            "{shown}"
        );
    }
}
