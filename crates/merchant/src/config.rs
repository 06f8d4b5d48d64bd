//! The merchant backend's typed configuration, read from the Taler INI file. Option names follow
//! the C merchant (`taler-merchant.conf`) where it has them.
//!
//! `[merchant]`:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `CURRENCY` | the merchant's currency | `[taler]/CURRENCY` |
//! | `BIND` | listen address `host:port` | `127.0.0.1:9966` |
//! | `BASE_URL` | public base URL (contract `merchant_base_url`, `taler://pay` URIs, status pages) | `http://{BIND}/` |
//! | `DATABASE` | `sqlite:/path/merchant.db` or `postgres://…` | `sqlite:merchant.db` |
//! | `ADMIN_TOKEN` | `secret-token:…` that authorises `/management/*` (and every instance); the C merchant's `--auth` / `TALER_MERCHANT_TOKEN` | none: only the `default` instance's credentials do |
//! | `DEFAULT_PAY_DELAY` | pay deadline of an order after its creation, for new instances | `1 day` |
//! | `DEFAULT_REFUND_DELAY` | refund deadline after creation, for new instances (0 = no refunds) | `0 s` |
//! | `DEFAULT_WIRE_TRANSFER_DELAY` | wire deadline after the refund deadline, for new instances | `1 week` |
//! | `LEGAL_PRESERVATION` | how long paid orders are kept (cannot be deleted) | `10 years` |
//! | `WEBHOOK_RETRY_DELAY` | first pause before a failed webhook delivery is retried (doubling per attempt, see `crate::webhooks`) | `10 s` |
//! | `WEBHOOK_ALLOW_PRIVATE_ADDRESSES` | whether webhooks may reach loopback, private, link-local (cloud metadata) and other non-public addresses (`crate::webhooks::destination`); `yes` only where every instance owner is trusted with the backend's network | `no` |
//!
//! One `[merchant-exchange-*]` section per trusted exchange: `EXCHANGE_BASE_URL`, `MASTER_KEY`
//! (base32; the exchange's `/keys` must be signed by it), `CURRENCY`.

use std::net::SocketAddr;

use cardcash_util::{BaseUrl, ConfigError, Currency, EddsaPublicKey, RelativeTime, TalerConfig};

/// The main configuration section.
pub const SECTION: &str = "merchant";
/// Default listen address (the C merchant's port).
pub const DEFAULT_BIND: &str = "127.0.0.1:9966";
/// The instance served at `/` (also reachable as `/instances/default/`).
pub const DEFAULT_INSTANCE: &str = "default";

/// One `[merchant-exchange-*]` section: an exchange whose coins the merchant accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedExchange {
    /// The section name.
    pub section: String,
    pub base_url: BaseUrl,
    pub master_pub: EddsaPublicKey,
    pub currency: Currency,
}

/// Typed configuration of the merchant backend.
#[derive(Debug, Clone)]
pub struct MerchantConfig {
    pub bind: SocketAddr,
    /// Public base URL; `None` = derived from the bound address.
    pub base_url: Option<BaseUrl>,
    pub database_url: String,
    pub currency: Currency,
    /// `secret-token:…` accepted everywhere (management and every instance).
    pub admin_token: Option<String>,
    pub default_pay_delay: RelativeTime,
    pub default_refund_delay: RelativeTime,
    pub default_wire_transfer_delay: RelativeTime,
    pub legal_preservation: RelativeTime,
    /// First retry pause of a failed webhook delivery (doubles per attempt).
    pub webhook_retry_delay: RelativeTime,
    /// Whether webhooks may target non-public addresses. Off by default: instance owners are
    /// tenants, and the backend's network (its database, metadata service, admin ports) is not
    /// theirs to reach (server-side request forgery).
    pub webhook_allow_private_addresses: bool,
    pub exchanges: Vec<TrustedExchange>,
}

fn invalid(section: &str, option: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        section: section.to_owned(),
        option: option.to_owned(),
        why: why.into(),
    }
}

const DAY_S: u64 = 24 * 3600;

impl MerchantConfig {
    /// A configuration for `currency` with every option at its default and no exchange; tests
    /// and the demo adjust it (`bind` is `127.0.0.1:0`).
    pub fn new(currency: Currency, database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_url: None,
            database_url: database_url.into(),
            currency,
            admin_token: None,
            default_pay_delay: RelativeTime::from_secs(DAY_S),
            default_refund_delay: RelativeTime::from_secs(0),
            default_wire_transfer_delay: RelativeTime::from_secs(7 * DAY_S),
            legal_preservation: RelativeTime::from_secs(10 * 365 * DAY_S),
            webhook_retry_delay: RelativeTime::from_secs(10),
            webhook_allow_private_addresses: false,
            exchanges: Vec::new(),
        }
    }

    /// Reads `[merchant]` and every `[merchant-exchange-*]` section.
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
            .unwrap_or_else(|| "sqlite:merchant.db".to_owned());
        let mut c = Self::new(currency, database_url);
        c.bind = bind;
        c.base_url = cfg.base_url_opt(SECTION, "BASE_URL")?;
        c.admin_token = cfg
            .string_opt(SECTION, "ADMIN_TOKEN")?
            .filter(|t| !t.is_empty());
        if let Some(token) = &c.admin_token
            && !token.starts_with("secret-token:")
        {
            return Err(invalid(
                SECTION,
                "ADMIN_TOKEN",
                "must start with secret-token: (RFC 8959)",
            ));
        }
        let durations: [(&str, &mut RelativeTime); 5] = [
            ("DEFAULT_PAY_DELAY", &mut c.default_pay_delay),
            ("DEFAULT_REFUND_DELAY", &mut c.default_refund_delay),
            (
                "DEFAULT_WIRE_TRANSFER_DELAY",
                &mut c.default_wire_transfer_delay,
            ),
            ("LEGAL_PRESERVATION", &mut c.legal_preservation),
            ("WEBHOOK_RETRY_DELAY", &mut c.webhook_retry_delay),
        ];
        for (option, slot) in durations {
            if let Some(d) = cfg.relative_time_opt(SECTION, option)? {
                *slot = d;
            }
        }
        if let Some(allow) = cfg.yes_no_opt(SECTION, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES")? {
            c.webhook_allow_private_addresses = allow;
        }
        for section in cfg.sections() {
            let Some(_name) = section.strip_prefix("merchant-exchange-") else {
                continue;
            };
            let base_url = cfg.base_url(&section, "EXCHANGE_BASE_URL")?;
            let master_pub = cfg
                .string(&section, "MASTER_KEY")?
                .parse::<EddsaPublicKey>()
                .map_err(|e| invalid(&section, "MASTER_KEY", format!("not a public key: {e}")))?;
            let currency = cfg.currency(&section, "CURRENCY")?;
            c.exchanges.push(TrustedExchange {
                section,
                base_url,
                master_pub,
                currency,
            });
        }
        Ok(c)
    }

    /// The trusted exchange at `url`, if any.
    pub fn exchange(&self, url: &BaseUrl) -> Option<&TrustedExchange> {
        self.exchanges.iter().find(|e| &e.base_url == url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";

    #[test]
    fn reads_the_merchant_and_its_exchanges() {
        let cfg = TalerConfig::parse_str(&format!(
            "[taler]\nCURRENCY = KUDOS\n[merchant]\nBIND = 0.0.0.0:9000\nDEFAULT_PAY_DELAY = 5 hours\n\
             ADMIN_TOKEN = secret-token:x\n\
             [merchant-exchange-kudos]\nEXCHANGE_BASE_URL = https://exchange.example/\n\
             MASTER_KEY = {MASTER}\nCURRENCY = KUDOS\n"
        ))
        .unwrap();
        let c = MerchantConfig::from_taler_config(&cfg).unwrap();
        assert_eq!(c.currency.as_str(), "KUDOS");
        assert_eq!(c.bind, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.default_pay_delay, RelativeTime::from_secs(5 * 3600));
        assert_eq!(c.exchanges.len(), 1);
        assert_eq!(c.exchanges[0].master_pub.to_string(), MASTER);
        assert!(
            c.exchange(&BaseUrl::parse("https://exchange.example/").unwrap())
                .is_some()
        );
    }

    #[test]
    fn webhooks_reach_only_public_addresses_unless_allowed() {
        let read = |extra: &str| {
            let cfg =
                TalerConfig::parse_str(&format!("[merchant]\nCURRENCY = KUDOS\n{extra}")).unwrap();
            MerchantConfig::from_taler_config(&cfg)
        };
        assert!(!read("").unwrap().webhook_allow_private_addresses);
        assert!(
            read("WEBHOOK_ALLOW_PRIVATE_ADDRESSES = yes\n")
                .unwrap()
                .webhook_allow_private_addresses
        );
        assert!(
            !read("WEBHOOK_ALLOW_PRIVATE_ADDRESSES = NO\n")
                .unwrap()
                .webhook_allow_private_addresses
        );
        assert!(read("WEBHOOK_ALLOW_PRIVATE_ADDRESSES = perhaps\n").is_err());
    }

    #[test]
    fn an_admin_token_without_its_prefix_is_refused() {
        let cfg = TalerConfig::parse_str("[merchant]\nCURRENCY = KUDOS\nADMIN_TOKEN = hunter2\n")
            .unwrap();
        let e = MerchantConfig::from_taler_config(&cfg).unwrap_err();
        assert!(e.to_string().contains("secret-token:"), "{e}");
    }
}
