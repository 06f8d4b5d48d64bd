//! The exchange's typed configuration, read from the Taler INI file. Option names follow the C
//! exchange (`taler-exchange.conf`) so an operator of GNU Taler finds them where she expects.
//!
//! `[exchange]`:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `CURRENCY` | the exchange's currency | `[taler]/CURRENCY` |
//! | `BIND` | listen address `host:port` | `127.0.0.1:8082` |
//! | `BASE_URL` | public base URL (`/keys` `base_url`, links) | `http://{BIND}/` |
//! | `DATABASE` | `sqlite:/path/exchange.db` or `postgres://…` | `sqlite:exchange.db` |
//! | `MASTER_PUBLIC_KEY` | the offline master key (base32); `/keys` is empty until it is set and keys are signed | none |
//! | `KEY_DIR` | where the online private keys live (denomination and signing keys, files 0600) | `exchange-keys` |
//! | `SIGNKEY_DURATION` | how long one online signing key signs | `12 weeks` |
//! | `SIGNKEY_LEGAL_DURATION` | how long its signatures must stay verifiable | `2 years` |
//! | `LOOKAHEAD_SIGN` | how far ahead keys are created (and offered to the offline key) | `1 year` |
//! | `OVERLAP_DURATION` | how long consecutive keys overlap | `5 minutes` |
//! | `RESERVE_CLOSING_DELAY` | idle time after which a reserve is closed (part 2) | `4 weeks` |
//! | `STEFAN_ABS`, `STEFAN_LOG` | fee-estimation constants of `/keys` | `CUR:0` |
//! | `STEFAN_LIN` | linear fee-estimation factor (a decimal) | `0` |
//! | `TERMS_DIR`, `TERMS_ETAG` | terms of service files (`{dir}/{lang}/{etag}.{ext}`) and their version | none: `/terms` answers 204-free default text |
//! | `PRIVACY_DIR`, `PRIVACY_ETAG` | the privacy policy, same layout | none |
//! | `AGGREGATOR_IDLE_SLEEP_INTERVAL` | how long the aggregator sleeps when nothing is due | `60 s` |
//!
//! One `[coin_*]` section per denomination type (`VALUE`, `DURATION_WITHDRAW`,
//! `DURATION_SPEND`, `DURATION_LEGAL`, `FEE_WITHDRAW`, `FEE_DEPOSIT`, `FEE_REFRESH`,
//! `FEE_REFUND`, `CIPHER` = `RSA` | `CS`, `RSA_KEYSIZE`; `AGE_RESTRICTED = YES` is refused:
//! age restriction is not supported). One `[exchange-account-*]` section per bank account
//! (`PAYTO_URI`, `ENABLE_DEBIT`, `ENABLE_CREDIT`), with its Wire Gateway in the matching
//! `[exchange-accountcredentials-*]` section (`WIRE_GATEWAY_URL`, `WIRE_GATEWAY_AUTH_METHOD` =
//! `none` | `basic` | `bearer`, `USERNAME`, `PASSWORD`, `TOKEN`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use cardcash_util::{
    Amount, BaseUrl, ConfigError, Currency, EddsaPublicKey, PaytoUri, RelativeTime, TalerConfig,
};

/// The main configuration section.
pub const SECTION: &str = "exchange";
/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8082";
/// Default RSA key size of denominations.
pub const DEFAULT_RSA_KEYSIZE: u32 = 2048;

/// The blind-signature scheme of a denomination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherConfig {
    /// RSA-FDH with a modulus of `bits` bits.
    Rsa { bits: u32 },
    /// Clause-Schnorr over Ed25519.
    Cs,
}

/// One `[coin_*]` section: a denomination type. Each key of the type is valid for
/// `duration_withdraw`; keys follow each other (overlapping by `OVERLAP_DURATION`).
#[derive(Debug, Clone, PartialEq)]
pub struct DenominationConfig {
    /// The section name (`coin_kudos_1`), the key store's directory for this type.
    pub section: String,
    pub cipher: CipherConfig,
    pub value: Amount,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub fee_refresh: Amount,
    pub fee_refund: Amount,
    /// How long coins of one key can be withdrawn.
    pub duration_withdraw: RelativeTime,
    /// How long after the end of withdrawal coins can be spent.
    pub duration_spend: RelativeTime,
    /// How long after that the exchange keeps the records.
    pub duration_legal: RelativeTime,
}

/// How the exchange authenticates at a Wire Gateway.
#[derive(Clone, PartialEq, Eq)]
pub enum GatewayAuth {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

impl fmt::Debug for GatewayAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, …redacted…)"),
            Self::Bearer(_) => f.write_str("Bearer(…redacted…)"),
        }
    }
}

/// One `[exchange-account-*]` section with its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// The section name (`exchange-account-1`): the account's identity in the database.
    pub section: String,
    pub payto: PaytoUri,
    /// The aggregator may wire merchants from this account.
    pub enable_debit: bool,
    /// wirewatch imports incoming transfers of this account.
    pub enable_credit: bool,
    /// The Wire Gateway of this account; `None` when no credentials section exists.
    pub gateway: Option<GatewayConfig>,
}

/// The Wire Gateway of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    pub url: BaseUrl,
    pub auth: GatewayAuth,
}

/// A legal document (terms of service or privacy policy) in `{dir}/{lang}/{etag}.{ext}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalConfig {
    pub dir: PathBuf,
    pub etag: String,
}

/// Typed configuration of the exchange.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    pub bind: SocketAddr,
    /// Public base URL; `None` = derived from the bound address.
    pub base_url: Option<BaseUrl>,
    pub database_url: String,
    pub currency: Currency,
    pub master_public_key: Option<EddsaPublicKey>,
    pub key_dir: PathBuf,
    pub signkey_duration: RelativeTime,
    pub signkey_legal_duration: RelativeTime,
    pub lookahead_sign: RelativeTime,
    pub overlap_duration: RelativeTime,
    pub reserve_closing_delay: RelativeTime,
    pub stefan_abs: Amount,
    pub stefan_log: Amount,
    /// Kept as configured text: `/keys` sends it as a JSON number.
    pub stefan_lin: f64,
    pub terms: Option<LegalConfig>,
    pub privacy: Option<LegalConfig>,
    pub aggregator_idle: RelativeTime,
    pub denominations: Vec<DenominationConfig>,
    pub accounts: Vec<AccountConfig>,
}

fn invalid(section: &str, option: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        section: section.to_owned(),
        option: option.to_owned(),
        why: why.into(),
    }
}

const WEEK_S: u64 = 7 * 24 * 3600;
const YEAR_S: u64 = 365 * 24 * 3600;

impl ExchangeConfig {
    /// A configuration for `currency` with every option at its default and no denominations
    /// or accounts; tests and the demo adjust it (`bind` is `127.0.0.1:0`).
    pub fn new(currency: Currency, database_url: impl Into<String>, key_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_url: None,
            database_url: database_url.into(),
            currency,
            master_public_key: None,
            key_dir,
            signkey_duration: RelativeTime::from_secs(12 * WEEK_S),
            signkey_legal_duration: RelativeTime::from_secs(2 * YEAR_S),
            lookahead_sign: RelativeTime::from_secs(YEAR_S),
            overlap_duration: RelativeTime::from_secs(5 * 60),
            reserve_closing_delay: RelativeTime::from_secs(4 * WEEK_S),
            stefan_abs: Amount::zero(&currency),
            stefan_log: Amount::zero(&currency),
            stefan_lin: 0.0,
            terms: None,
            privacy: None,
            aggregator_idle: RelativeTime::from_secs(60),
            denominations: Vec::new(),
            accounts: Vec::new(),
        }
    }

    /// The denomination type named `section`.
    pub fn denomination(&self, section: &str) -> Option<&DenominationConfig> {
        self.denominations.iter().find(|d| d.section == section)
    }

    /// Reads `[exchange]`, every `[coin_*]` and every `[exchange-account-*]` section.
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
            .map_err(|e| invalid(SECTION, "BIND", format!("not host:port: {e}")))?;
        let database_url = cfg
            .string_opt(SECTION, "DATABASE")?
            .unwrap_or_else(|| "sqlite:exchange.db".to_owned());
        let key_dir = cfg
            .path_opt(SECTION, "KEY_DIR")?
            .unwrap_or_else(|| PathBuf::from("exchange-keys"));
        let mut c = Self::new(currency, database_url, key_dir);
        c.bind = bind;
        c.base_url = cfg.base_url_opt(SECTION, "BASE_URL")?;
        c.master_public_key = cfg
            .string_opt(SECTION, "MASTER_PUBLIC_KEY")?
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<EddsaPublicKey>().map_err(|e| {
                    invalid(
                        SECTION,
                        "MASTER_PUBLIC_KEY",
                        format!("not a public key: {e}"),
                    )
                })
            })
            .transpose()?;
        let durations: [(&str, &mut RelativeTime); 6] = [
            ("SIGNKEY_DURATION", &mut c.signkey_duration),
            ("SIGNKEY_LEGAL_DURATION", &mut c.signkey_legal_duration),
            ("LOOKAHEAD_SIGN", &mut c.lookahead_sign),
            ("OVERLAP_DURATION", &mut c.overlap_duration),
            ("RESERVE_CLOSING_DELAY", &mut c.reserve_closing_delay),
            ("AGGREGATOR_IDLE_SLEEP_INTERVAL", &mut c.aggregator_idle),
        ];
        for (option, slot) in durations {
            if let Some(d) = cfg.relative_time_opt(SECTION, option)? {
                *slot = d;
            }
        }
        if c.signkey_duration.as_micros() == 0 || c.signkey_duration.is_forever() {
            return Err(invalid(
                SECTION,
                "SIGNKEY_DURATION",
                "must be finite and positive",
            ));
        }
        let in_currency = |section: &str, option: &str, a: Amount| {
            if a.currency() == &currency {
                Ok(a)
            } else {
                Err(invalid(
                    section,
                    option,
                    format!("currency must be {currency}"),
                ))
            }
        };
        if let Some(a) = cfg.amount_opt(SECTION, "STEFAN_ABS")? {
            c.stefan_abs = in_currency(SECTION, "STEFAN_ABS", a)?;
        }
        if let Some(a) = cfg.amount_opt(SECTION, "STEFAN_LOG")? {
            c.stefan_log = in_currency(SECTION, "STEFAN_LOG", a)?;
        }
        if let Some(s) = cfg.string_opt(SECTION, "STEFAN_LIN")? {
            c.stefan_lin = s
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| invalid(SECTION, "STEFAN_LIN", "not a non-negative number"))?;
        }
        c.terms = legal(cfg, "TERMS_DIR", "TERMS_ETAG")?;
        c.privacy = legal(cfg, "PRIVACY_DIR", "PRIVACY_ETAG")?;
        for section in cfg.sections() {
            let lower = section.to_ascii_lowercase();
            if lower.starts_with("coin_") {
                c.denominations
                    .push(denomination(cfg, &section, &currency, in_currency)?);
            } else if lower.starts_with("exchange-account-") {
                c.accounts.push(account(cfg, &section)?);
            }
        }
        Ok(c)
    }
}

fn legal(
    cfg: &TalerConfig,
    dir_option: &str,
    etag_option: &str,
) -> Result<Option<LegalConfig>, ConfigError> {
    let Some(dir) = cfg.path_opt(SECTION, dir_option)? else {
        return Ok(None);
    };
    let etag = cfg.string(SECTION, etag_option)?;
    if etag.is_empty() || etag.contains(['/', '\\']) || etag.starts_with('.') {
        return Err(invalid(
            SECTION,
            etag_option,
            "must be a plain file name stem",
        ));
    }
    Ok(Some(LegalConfig { dir, etag }))
}

fn denomination(
    cfg: &TalerConfig,
    section: &str,
    currency: &Currency,
    in_currency: impl Fn(&str, &str, Amount) -> Result<Amount, ConfigError>,
) -> Result<DenominationConfig, ConfigError> {
    let amount = |option: &str| -> Result<Amount, ConfigError> {
        in_currency(section, option, cfg.amount(section, option)?)
    };
    let value = amount("VALUE")?;
    if value.is_zero() {
        return Err(invalid(section, "VALUE", "a coin must be worth something"));
    }
    if cfg.yes_no_opt(section, "AGE_RESTRICTED")?.unwrap_or(false) {
        return Err(invalid(
            section,
            "AGE_RESTRICTED",
            "age restriction is not supported by this exchange",
        ));
    }
    let cipher = match cfg
        .string_opt(section, "CIPHER")?
        .unwrap_or_else(|| "RSA".to_owned())
        .to_ascii_uppercase()
        .as_str()
    {
        "RSA" => {
            let bits = cfg
                .number_opt(section, "RSA_KEYSIZE")?
                .unwrap_or(u64::from(DEFAULT_RSA_KEYSIZE));
            let bits = u32::try_from(bits)
                .ok()
                .filter(|b| (1024..=8192).contains(b) && b % 8 == 0)
                .ok_or_else(|| {
                    invalid(
                        section,
                        "RSA_KEYSIZE",
                        "must be 1024..8192, a multiple of 8",
                    )
                })?;
            CipherConfig::Rsa { bits }
        }
        "CS" => CipherConfig::Cs,
        other => {
            return Err(invalid(
                section,
                "CIPHER",
                format!("{other}: must be RSA or CS"),
            ));
        }
    };
    let duration = |option: &str| -> Result<RelativeTime, ConfigError> {
        let d = cfg.relative_time(section, option)?;
        if d.as_micros() == 0 || d.is_forever() {
            return Err(invalid(section, option, "must be finite and positive"));
        }
        Ok(d)
    };
    let _ = currency;
    Ok(DenominationConfig {
        section: section.to_owned(),
        cipher,
        value,
        fee_withdraw: amount("FEE_WITHDRAW")?,
        fee_deposit: amount("FEE_DEPOSIT")?,
        fee_refresh: amount("FEE_REFRESH")?,
        fee_refund: amount("FEE_REFUND")?,
        duration_withdraw: duration("DURATION_WITHDRAW")?,
        duration_spend: duration("DURATION_SPEND")?,
        duration_legal: duration("DURATION_LEGAL")?,
    })
}

fn account(cfg: &TalerConfig, section: &str) -> Result<AccountConfig, ConfigError> {
    let payto_text = cfg.string(section, "PAYTO_URI")?;
    let payto: PaytoUri = payto_text
        .parse()
        .map_err(|e| invalid(section, "PAYTO_URI", format!("not a payto URI: {e}")))?;
    let suffix = &section["exchange-account-".len()..];
    let credentials = format!("exchange-accountcredentials-{suffix}");
    let gateway = if cfg.has_section(&credentials) {
        let url = cfg.base_url(&credentials, "WIRE_GATEWAY_URL")?;
        let method = cfg
            .string_opt(&credentials, "WIRE_GATEWAY_AUTH_METHOD")?
            .unwrap_or_else(|| "none".to_owned())
            .to_ascii_lowercase();
        let auth = match method.as_str() {
            "none" => GatewayAuth::None,
            "basic" => GatewayAuth::Basic {
                username: cfg.string(&credentials, "USERNAME")?,
                password: cfg.string(&credentials, "PASSWORD")?,
            },
            "bearer" => GatewayAuth::Bearer(cfg.string(&credentials, "TOKEN")?),
            other => {
                return Err(invalid(
                    &credentials,
                    "WIRE_GATEWAY_AUTH_METHOD",
                    format!("{other}: must be none, basic or bearer"),
                ));
            }
        };
        Some(GatewayConfig { url, auth })
    } else {
        None
    };
    Ok(AccountConfig {
        section: section.to_owned(),
        payto,
        enable_debit: cfg.yes_no_opt(section, "ENABLE_DEBIT")?.unwrap_or(false),
        enable_credit: cfg.yes_no_opt(section, "ENABLE_CREDIT")?.unwrap_or(false),
        gateway,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "[exchange]\nCURRENCY = KUDOS\nBIND = 0.0.0.0:9002\n\
        BASE_URL = https://ex.example/\nDATABASE = postgres://u@h/db\n\
        MASTER_PUBLIC_KEY = 7QQVHGSDWSQTW60VFG1R2RY2PSNJR8EVHWYTKV41T9ZYSKNWHDN0\n\
        KEY_DIR = /var/lib/ex\nSIGNKEY_DURATION = 4 weeks\nLOOKAHEAD_SIGN = 32 weeks\n\
        STEFAN_ABS = KUDOS:0.003\nSTEFAN_LIN = 0.5\n\
        [coin_kudos_1]\nVALUE = KUDOS:1\nDURATION_WITHDRAW = 7 days\nDURATION_SPEND = 2 years\n\
        DURATION_LEGAL = 6 years\nFEE_WITHDRAW = KUDOS:0.01\nFEE_DEPOSIT = KUDOS:0.01\n\
        FEE_REFRESH = KUDOS:0.01\nFEE_REFUND = KUDOS:0.01\nRSA_KEYSIZE = 2048\nCIPHER = RSA\n\
        [coin_kudos_cs_5]\nVALUE = KUDOS:5\nDURATION_WITHDRAW = 7 days\nDURATION_SPEND = 2 years\n\
        DURATION_LEGAL = 6 years\nFEE_WITHDRAW = KUDOS:0\nFEE_DEPOSIT = KUDOS:0\n\
        FEE_REFRESH = KUDOS:0\nFEE_REFUND = KUDOS:0\nCIPHER = CS\n\
        [exchange-account-1]\nPAYTO_URI = payto://x-taler-bank/bank.example/exchange?receiver-name=Ex\n\
        ENABLE_DEBIT = YES\nENABLE_CREDIT = YES\n\
        [exchange-accountcredentials-1]\nWIRE_GATEWAY_URL = https://bank.example/accounts/exchange/taler-wire-gateway/\n\
        WIRE_GATEWAY_AUTH_METHOD = basic\nUSERNAME = exchange\nPASSWORD = secret\n";

    #[test]
    fn reads_all_sections() {
        let c = ExchangeConfig::from_taler_config(&TalerConfig::parse_str(FULL).unwrap()).unwrap();
        assert_eq!(c.currency.as_str(), "KUDOS");
        assert_eq!(c.bind, "0.0.0.0:9002".parse().unwrap());
        assert_eq!(c.database_url, "postgres://u@h/db");
        assert!(c.master_public_key.is_some());
        assert_eq!(c.key_dir, PathBuf::from("/var/lib/ex"));
        assert_eq!(c.signkey_duration.as_secs(), 4 * WEEK_S);
        assert_eq!(c.lookahead_sign.as_secs(), 32 * WEEK_S);
        assert_eq!(c.stefan_abs.to_string(), "KUDOS:0.003");
        assert!((c.stefan_lin - 0.5).abs() < f64::EPSILON);
        assert_eq!(c.denominations.len(), 2);
        let rsa = c.denomination("coin_kudos_1").unwrap();
        assert_eq!(rsa.cipher, CipherConfig::Rsa { bits: 2048 });
        assert_eq!(rsa.fee_withdraw.to_string(), "KUDOS:0.01");
        assert_eq!(rsa.duration_withdraw.as_secs(), 7 * 24 * 3600);
        assert_eq!(
            c.denomination("coin_kudos_cs_5").unwrap().cipher,
            CipherConfig::Cs
        );
        let account = &c.accounts[0];
        assert_eq!(account.section, "exchange-account-1");
        assert!(account.enable_credit && account.enable_debit);
        let gateway = account.gateway.as_ref().unwrap();
        assert_eq!(
            gateway.auth,
            GatewayAuth::Basic {
                username: "exchange".into(),
                password: "secret".into()
            }
        );
        assert!(
            !format!("{c:?}").contains("secret"),
            "passwords never print"
        );
    }

    #[test]
    fn defaults() {
        let c = ExchangeConfig::from_taler_config(
            &TalerConfig::parse_str("[taler]\nCURRENCY = EUR\n").unwrap(),
        )
        .unwrap();
        assert_eq!(c.bind, DEFAULT_BIND.parse().unwrap());
        assert!(c.master_public_key.is_none());
        assert!(c.denominations.is_empty() && c.accounts.is_empty());
        assert_eq!(c.signkey_duration.as_secs(), 12 * WEEK_S);
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let coin = "[coin_a]\nVALUE = KUDOS:1\nDURATION_WITHDRAW = 7 days\nDURATION_SPEND = 1 year\n\
            DURATION_LEGAL = 1 year\nFEE_WITHDRAW = KUDOS:0\nFEE_DEPOSIT = KUDOS:0\n\
            FEE_REFRESH = KUDOS:0\nFEE_REFUND = KUDOS:0\n";
        for extra in [
            "AGE_RESTRICTED = YES\n",
            "CIPHER = ECDSA\n",
            "RSA_KEYSIZE = 512\n",
            "RSA_KEYSIZE = 2047\n",
        ] {
            let text = format!("[exchange]\nCURRENCY = KUDOS\n{coin}{extra}");
            let cfg = TalerConfig::parse_str(&text).unwrap();
            assert!(ExchangeConfig::from_taler_config(&cfg).is_err(), "{extra}");
        }
        for text in [
            "[exchange]\nCURRENCY = KUDOS\n[coin_a]\nVALUE = EUR:1\n",
            "[exchange]\nCURRENCY = KUDOS\nMASTER_PUBLIC_KEY = nope\n",
            "[exchange]\nCURRENCY = KUDOS\nSTEFAN_LIN = -1\n",
            "[exchange]\nCURRENCY = KUDOS\nTERMS_DIR = /x\nTERMS_ETAG = ../etc\n",
            "[exchange]\nCURRENCY = KUDOS\n[exchange-account-1]\nPAYTO_URI = mailto:x\n",
        ] {
            let cfg = TalerConfig::parse_str(text).unwrap();
            assert!(ExchangeConfig::from_taler_config(&cfg).is_err(), "{text}");
        }
    }
}
