//! The storefront's typed configuration, section `[storefront]` of the Taler INI file.
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `BIND` | listen address `host:port` | `127.0.0.1:8090` |
//! | `BASE_URL` | the shop's public base URL (fulfillment URLs, cookies' `Secure`) | `http://{BIND}/` |
//! | `MERCHANT_BASE_URL` | the merchant backend's root | required |
//! | `MERCHANT_TOKEN` | the instance's bearer token, `secret-token:…` | required |
//! | `MERCHANT_ADMIN_TOKEN` | token for `/management` when the instance must be created | `MERCHANT_TOKEN` |
//! | `INSTANCE` | the merchant instance of the shop | `default` |
//! | `PAYTO_URI` | bank account added to the instance when the shop creates it | none |
//! | `COOKIE_SECRET` | key of the cookies' HMAC, at least 16 characters | required |
//! | `REFUND_DELAY` | refund deadline of the Sonatas' orders after creation (`0 s`: all sales final) | `1 day` |
//! | `CURRENCY` | the prices' currency | `[taler]/CURRENCY` |
//! | `PIANO_PRICE`, `SONATAS_PRICE` | prices | `CUR:20000`, `CUR:9.87` (the merchant guide's) |
//! | `PIANO_STOCK` | the piano's stock when the shop creates the product | `3` |
//! | `LOCK_DURATION` | how long a cart holds its pianos | `10 minutes` |
//! | `ADMIN_PASSWORD` | password of `/admin` (HTTP Basic, user `admin`) | required |

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use cardcash_util::{Amount, BaseUrl, ConfigError, Currency, RelativeTime, TalerConfig};

/// The configuration section.
pub const SECTION: &str = "storefront";
/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8090";
/// The user name of `/admin`.
pub const ADMIN_USER: &str = "admin";
/// Shortest accepted `COOKIE_SECRET`, in bytes.
pub const MIN_COOKIE_SECRET: usize = 16;

/// Typed configuration of the storefront.
#[derive(Clone)]
pub struct StorefrontConfig {
    pub bind: SocketAddr,
    /// Public base URL; `None` = derived from the bound address.
    pub base_url: Option<BaseUrl>,
    pub merchant_base_url: BaseUrl,
    pub merchant_token: String,
    pub merchant_admin_token: Option<String>,
    pub instance: String,
    pub payto_uri: Option<String>,
    pub cookie_secret: Vec<u8>,
    pub refund_delay: RelativeTime,
    pub currency: Currency,
    pub piano_price: Amount,
    pub sonatas_price: Amount,
    pub piano_stock: u64,
    pub lock_duration: Duration,
    pub admin_password: String,
}

impl fmt::Debug for StorefrontConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorefrontConfig")
            .field("bind", &self.bind)
            .field("base_url", &self.base_url)
            .field("merchant_base_url", &self.merchant_base_url)
            .field("instance", &self.instance)
            .field("currency", &self.currency)
            .field("secrets", &"…redacted…")
            .finish_non_exhaustive()
    }
}

fn invalid(option: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        section: SECTION.to_owned(),
        option: option.to_owned(),
        why: why.into(),
    }
}

fn required(cfg: &TalerConfig, option: &str, what: &str) -> Result<String, ConfigError> {
    cfg.string_opt(SECTION, option)?
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| invalid(option, format!("required: {what}")))
}

fn check_token(option: &str, token: &str) -> Result<(), ConfigError> {
    if token.starts_with("secret-token:") {
        Ok(())
    } else {
        Err(invalid(option, "must start with secret-token: (RFC 8959)"))
    }
}

impl StorefrontConfig {
    /// A configuration for a shop on `merchant_base_url` with every other option at its
    /// default (`bind` is `127.0.0.1:0`); tests and the demo adjust it.
    pub fn new(
        currency: Currency,
        merchant_base_url: BaseUrl,
        merchant_token: impl Into<String>,
        cookie_secret: impl Into<Vec<u8>>,
        admin_password: impl Into<String>,
    ) -> Self {
        let price = |value| Amount::new(currency, value, 0).expect("small amount");
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_url: None,
            merchant_base_url,
            merchant_token: merchant_token.into(),
            merchant_admin_token: None,
            instance: "default".to_owned(),
            payto_uri: None,
            cookie_secret: cookie_secret.into(),
            refund_delay: RelativeTime::from_secs(24 * 3600),
            piano_price: price(20_000),
            sonatas_price: Amount::new(currency, 9, 87_000_000).expect("9.87"),
            currency,
            piano_stock: 3,
            lock_duration: Duration::from_secs(600),
            admin_password: admin_password.into(),
        }
    }

    /// Reads `[storefront]`. Missing required options are errors that name the option.
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
        let merchant_base_url = cfg.base_url(SECTION, "MERCHANT_BASE_URL")?;
        let token = required(cfg, "MERCHANT_TOKEN", "the instance's secret-token:…")?;
        check_token("MERCHANT_TOKEN", &token)?;
        let secret = required(
            cfg,
            "COOKIE_SECRET",
            "a random string of at least 16 characters that keys the cookies' HMAC (e.g. the \
             output of `head -c 32 /dev/urandom | base64`)",
        )?;
        if secret.len() < MIN_COOKIE_SECRET {
            return Err(invalid(
                "COOKIE_SECRET",
                format!("at least {MIN_COOKIE_SECRET} characters"),
            ));
        }
        let password = required(cfg, "ADMIN_PASSWORD", "the password of /admin (user admin)")?;
        let mut c = Self::new(currency, merchant_base_url, token, secret, password);
        c.bind = bind;
        c.base_url = cfg.base_url_opt(SECTION, "BASE_URL")?;
        c.merchant_admin_token = cfg
            .string_opt(SECTION, "MERCHANT_ADMIN_TOKEN")?
            .filter(|t| !t.is_empty());
        if let Some(t) = &c.merchant_admin_token {
            check_token("MERCHANT_ADMIN_TOKEN", t)?;
        }
        if let Some(i) = cfg
            .string_opt(SECTION, "INSTANCE")?
            .filter(|i| !i.is_empty())
        {
            c.instance = i;
        }
        c.payto_uri = cfg
            .string_opt(SECTION, "PAYTO_URI")?
            .filter(|p| !p.is_empty());
        if let Some(d) = cfg.relative_time_opt(SECTION, "REFUND_DELAY")? {
            c.refund_delay = d;
        }
        for (option, slot) in [
            ("PIANO_PRICE", &mut c.piano_price),
            ("SONATAS_PRICE", &mut c.sonatas_price),
        ] {
            if let Some(a) = cfg.amount_opt(SECTION, option)? {
                if a.currency() != &currency {
                    return Err(invalid(option, format!("not in {currency}")));
                }
                *slot = a;
            }
        }
        if let Some(n) = cfg.number_opt(SECTION, "PIANO_STOCK")? {
            c.piano_stock = n;
        }
        if let Some(d) = cfg.relative_time_opt(SECTION, "LOCK_DURATION")? {
            c.lock_duration = d
                .to_duration()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| invalid("LOCK_DURATION", "must be finite and not zero"))?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[taler]\nCURRENCY = KUDOS\n[storefront]\n\
        MERCHANT_BASE_URL = http://merchant.example/\nMERCHANT_TOKEN = secret-token:keys\n\
        COOKIE_SECRET = 0123456789abcdef-xyz\nADMIN_PASSWORD = pw\n";

    #[test]
    fn minimal_configuration_takes_the_guides_prices() {
        let c =
            StorefrontConfig::from_taler_config(&TalerConfig::parse_str(MINIMAL).unwrap()).unwrap();
        assert_eq!(c.piano_price.to_string(), "KUDOS:20000");
        assert_eq!(c.sonatas_price.to_string(), "KUDOS:9.87");
        assert_eq!(c.instance, "default");
        assert_eq!(c.bind, DEFAULT_BIND.parse().unwrap());
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("keys") && !shown.contains("0123456789"),
            "{shown}"
        );
    }

    #[test]
    fn options_override_the_defaults() {
        let text = format!(
            "{MINIMAL}INSTANCE = pianos\nREFUND_DELAY = 5 min\nSONATAS_PRICE = KUDOS:1.5\n\
             LOCK_DURATION = 2 min\nBASE_URL = https://shop.example/\n"
        );
        let c =
            StorefrontConfig::from_taler_config(&TalerConfig::parse_str(&text).unwrap()).unwrap();
        assert_eq!(c.instance, "pianos");
        assert_eq!(c.refund_delay, RelativeTime::from_secs(300));
        assert_eq!(c.sonatas_price.to_string(), "KUDOS:1.5");
        assert_eq!(c.lock_duration, Duration::from_secs(120));
        assert_eq!(c.base_url.unwrap().as_str(), "https://shop.example/");
    }

    #[test]
    fn a_missing_cookie_secret_is_a_clear_error() {
        let text = MINIMAL.replace("COOKIE_SECRET = 0123456789abcdef-xyz\n", "");
        let e = StorefrontConfig::from_taler_config(&TalerConfig::parse_str(&text).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("COOKIE_SECRET") && e.contains("required"), "{e}");
        let short = MINIMAL.replace("0123456789abcdef-xyz", "short");
        let e = StorefrontConfig::from_taler_config(&TalerConfig::parse_str(&short).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 16"), "{e}");
    }

    #[test]
    fn tokens_need_their_prefix_and_prices_their_currency() {
        let text = MINIMAL.replace("secret-token:keys", "keys");
        let e = StorefrontConfig::from_taler_config(&TalerConfig::parse_str(&text).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret-token:"), "{e}");
        let text = format!("{MINIMAL}PIANO_PRICE = EUR:3\n");
        let e = StorefrontConfig::from_taler_config(&TalerConfig::parse_str(&text).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("PIANO_PRICE"), "{e}");
    }
}
