//! Typed C2EC configuration, read once at start-up from the Taler INI file.
//!
//! ```ini
//! [c2ec]
//! BIND = 127.0.0.1:8082       # host:port (or a host alone plus PORT)
//! BASE_URL = https://c2ec.example.com/          # public URL (what the QR code points to)
//! DATABASE = sqlite:/var/lib/cardcash/c2ec.db   # or postgres://…
//! CURRENCY = CHF
//! EXCHANGE_BASE_URL = https://exchange.example.com/   # suggested to wallets
//! EXCHANGE_ACCOUNT = payto://x-taler-bank/c2ec.example.com/exchange?receiver-name=Exchange
//! WIRE_GATEWAY_USERNAME = exchange
//! WIRE_GATEWAY_PASSWORD = secret
//! WIRE_GATEWAY_TOKEN = secret-token:…           # optional bearer alternative
//! ADMIN_TOKEN = secret-token:…                  # optional: enables admin/add-incoming
//! WITHDRAWAL_FEES = CHF:0                       # the exchange's fees, announced to terminals
//! REGISTRATION_WINDOW = 2 minutes               # pending ops expire without a wallet
//! CHECK_WINDOW = 5 minutes                      # selected ops expire without a card payment
//! ATTESTATION_MAX_RETRIES = 10
//! ATTESTATION_RETRY_DELAY = 500 ms              # exponential backoff base
//!
//! [c2ec-provider-cardproc]
//! NAME = cardcash card processor
//! BASE_URL = http://127.0.0.1:8090/
//! USER_ID = 2
//! SECRET = <base64>
//! SPACE_ID = 1
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use cardcash_util::TalerConfig;
use cardcash_util::{Amount, BaseUrl, Currency, PaytoUri, RelativeTime};

/// Everything C2EC needs to run.
#[derive(Clone)]
pub struct C2ecConfig {
    /// Where to listen (`127.0.0.1:0` in tests).
    pub bind: SocketAddr,
    /// The public base URL; `None` derives `http://<bound address>/`.
    pub base_url: Option<BaseUrl>,
    /// Database URL (`sqlite:…` or `postgres://…`).
    pub database: String,
    pub currency: Currency,
    /// The exchange wallets are told to use.
    pub exchange_base_url: Option<BaseUrl>,
    /// The exchange's credit account at C2EC; wallets must select exactly this one.
    pub exchange_account: PaytoUri,
    pub wire_gateway: WireGatewayAuth,
    /// Bearer token for `admin/add-incoming`; `None` disables the endpoint.
    pub admin_token: Option<String>,
    /// Fees the exchange charges, announced to terminals in `/config`.
    pub withdrawal_fees: Amount,
    /// A pending operation without a wallet registration expires after this.
    pub registration_window: Duration,
    /// A selected operation without a card payment report expires after this.
    pub check_window: Duration,
    pub attestation_max_retries: u32,
    /// Base of the exponential backoff between attestation attempts.
    pub attestation_retry_delay: Duration,
    pub provider: ProviderConfig,
}

impl std::fmt::Debug for C2ecConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("C2ecConfig")
            .field("bind", &self.bind)
            .field("base_url", &self.base_url)
            .field("currency", &self.currency)
            .field("exchange_account", &self.exchange_account.to_string())
            .finish_non_exhaustive()
    }
}

/// Credentials the exchange uses on the wire gateway.
#[derive(Clone, Default)]
pub struct WireGatewayAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

/// The card processor C2EC attests against.
#[derive(Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub base_url: BaseUrl,
    pub user_id: u64,
    /// Base64 MAC secret of a `reader` user.
    pub secret: String,
    pub space_id: u64,
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("configuration [{section}] {option}: {message}")]
pub struct ConfigError {
    pub section: String,
    pub option: String,
    pub message: String,
}

fn err(section: &str, option: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError {
        section: section.to_owned(),
        option: option.to_owned(),
        message: message.to_string(),
    }
}

const S: &str = "c2ec";
const P: &str = "c2ec-provider-cardproc";

impl C2ecConfig {
    /// Reads `[c2ec]` and `[c2ec-provider-cardproc]`.
    pub fn from_taler_config(cfg: &TalerConfig) -> Result<Self, ConfigError> {
        // An empty value counts as unset; an unreadable one (e.g. an undefined `$VAR`) is an
        // error, never silently "unset".
        let get = |section: &str, option: &str| -> Result<Option<String>, ConfigError> {
            Ok(cfg
                .string_opt(section, option)
                .map_err(|e| err(section, option, e))?
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()))
        };
        let need = |section: &str, option: &str| -> Result<String, ConfigError> {
            get(section, option)?.ok_or_else(|| err(section, option, "missing"))
        };
        let duration = |option: &str, default: Duration| -> Result<Duration, ConfigError> {
            match get(S, option)? {
                None => Ok(default),
                Some(v) => RelativeTime::parse_duration(&v)
                    .map_err(|e| err(S, option, e))?
                    .to_duration()
                    .ok_or_else(|| err(S, option, "must be finite")),
            }
        };
        // `BIND = host:port` like the other services; `BIND = host` + `PORT` is also accepted.
        let bind_text = get(S, "BIND")?.unwrap_or_else(|| "127.0.0.1".to_owned());
        let bind: SocketAddr = match bind_text.parse::<SocketAddr>() {
            Ok(addr) => {
                if get(S, "PORT")?.is_some() {
                    return Err(err(S, "PORT", "BIND already names a port; set only one"));
                }
                addr
            }
            Err(_) => {
                let port: u16 = match get(S, "PORT")? {
                    Some(p) => p.parse().map_err(|e| err(S, "PORT", e))?,
                    None => 8082,
                };
                format!("{bind_text}:{port}")
                    .parse()
                    .map_err(|e| err(S, "BIND", e))?
            }
        };
        let currency: Currency = need(S, "CURRENCY")?
            .parse()
            .map_err(|e| err(S, "CURRENCY", e))?;
        let base_url = get(S, "BASE_URL")?
            .map(|u| BaseUrl::parse(&u).map_err(|e| err(S, "BASE_URL", e)))
            .transpose()?;
        let exchange_base_url = get(S, "EXCHANGE_BASE_URL")?
            .map(|u| BaseUrl::parse(&u).map_err(|e| err(S, "EXCHANGE_BASE_URL", e)))
            .transpose()?;
        let exchange_account: PaytoUri = need(S, "EXCHANGE_ACCOUNT")?
            .parse()
            .map_err(|e| err(S, "EXCHANGE_ACCOUNT", e))?;
        let withdrawal_fees = match get(S, "WITHDRAWAL_FEES")? {
            Some(v) => v
                .parse::<Amount>()
                .map_err(|e| err(S, "WITHDRAWAL_FEES", e))?,
            None => Amount::zero(&currency),
        };
        if withdrawal_fees.currency() != &currency {
            return Err(err(S, "WITHDRAWAL_FEES", "currency differs from CURRENCY"));
        }
        let wire_gateway = WireGatewayAuth {
            username: get(S, "WIRE_GATEWAY_USERNAME")?,
            password: get(S, "WIRE_GATEWAY_PASSWORD")?,
            token: get(S, "WIRE_GATEWAY_TOKEN")?,
        };
        if wire_gateway.token.is_none()
            && (wire_gateway.username.is_none() || wire_gateway.password.is_none())
        {
            return Err(err(
                S,
                "WIRE_GATEWAY_USERNAME",
                "set WIRE_GATEWAY_USERNAME and WIRE_GATEWAY_PASSWORD, or WIRE_GATEWAY_TOKEN",
            ));
        }
        let attestation_max_retries = match get(S, "ATTESTATION_MAX_RETRIES")? {
            Some(v) => v
                .parse()
                .map_err(|e| err(S, "ATTESTATION_MAX_RETRIES", e))?,
            None => 10,
        };
        let provider = ProviderConfig {
            name: get(P, "NAME")?.unwrap_or_else(|| "cardcash card processor".to_owned()),
            base_url: BaseUrl::parse(&need(P, "BASE_URL")?).map_err(|e| err(P, "BASE_URL", e))?,
            user_id: need(P, "USER_ID")?
                .parse()
                .map_err(|e| err(P, "USER_ID", e))?,
            secret: need(P, "SECRET")?,
            space_id: need(P, "SPACE_ID")?
                .parse()
                .map_err(|e| err(P, "SPACE_ID", e))?,
        };
        Ok(Self {
            bind,
            base_url,
            database: need(S, "DATABASE")?,
            currency,
            exchange_base_url,
            exchange_account,
            wire_gateway,
            admin_token: get(S, "ADMIN_TOKEN")?,
            withdrawal_fees,
            registration_window: duration("REGISTRATION_WINDOW", Duration::from_secs(120))?,
            check_window: duration("CHECK_WINDOW", Duration::from_secs(300))?,
            attestation_max_retries,
            attestation_retry_delay: duration(
                "ATTESTATION_RETRY_DELAY",
                Duration::from_millis(500),
            )?,
            provider,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INI: &str = "
[c2ec]
PORT = 9999
BASE_URL = https://c2ec.example/
DATABASE = sqlite:/tmp/c2ec.db
CURRENCY = CHF
EXCHANGE_BASE_URL = https://exchange.example/
EXCHANGE_ACCOUNT = payto://x-taler-bank/c2ec.example/exchange?receiver-name=Exchange
WIRE_GATEWAY_USERNAME = exchange
WIRE_GATEWAY_PASSWORD = pw
WITHDRAWAL_FEES = CHF:0.5
REGISTRATION_WINDOW = 90 s
ATTESTATION_MAX_RETRIES = 7

[c2ec-provider-cardproc]
BASE_URL = http://127.0.0.1:8090/
USER_ID = 2
SECRET = c2VjcmV0
SPACE_ID = 1
";

    #[test]
    fn bind_takes_host_and_port_like_the_other_services() {
        let with_port = INI.replace("PORT = 9999", "BIND = 0.0.0.0:8123");
        let c =
            C2ecConfig::from_taler_config(&TalerConfig::parse_str(&with_port).unwrap()).unwrap();
        assert_eq!(c.bind.to_string(), "0.0.0.0:8123");
        let both = INI.replace("PORT = 9999", "BIND = 0.0.0.0:8123\nPORT = 9999");
        let e = C2ecConfig::from_taler_config(&TalerConfig::parse_str(&both).unwrap()).unwrap_err();
        assert_eq!(e.option, "PORT");
    }

    #[test]
    fn reads_every_option_with_defaults() {
        let cfg = TalerConfig::parse_str(INI).unwrap();
        let c = C2ecConfig::from_taler_config(&cfg).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:9999");
        assert_eq!(c.base_url.unwrap().as_str(), "https://c2ec.example/");
        assert_eq!(c.currency.to_string(), "CHF");
        assert_eq!(c.withdrawal_fees.to_string(), "CHF:0.5");
        assert_eq!(c.registration_window, Duration::from_secs(90));
        assert_eq!(c.check_window, Duration::from_secs(300));
        assert_eq!(c.attestation_max_retries, 7);
        assert_eq!(c.provider.user_id, 2);
        assert_eq!(c.wire_gateway.username.as_deref(), Some("exchange"));
        assert!(c.admin_token.is_none());
    }

    #[test]
    fn refuses_incomplete_or_inconsistent_configs() {
        let no_auth = INI.replace("WIRE_GATEWAY_USERNAME = exchange\n", "");
        assert!(C2ecConfig::from_taler_config(&TalerConfig::parse_str(&no_auth).unwrap()).is_err());
        let bad_fee = INI.replace("CHF:0.5", "EUR:0.5");
        assert!(C2ecConfig::from_taler_config(&TalerConfig::parse_str(&bad_fee).unwrap()).is_err());
        let no_account = INI.replace("EXCHANGE_ACCOUNT", "X_ACCOUNT");
        let e = C2ecConfig::from_taler_config(&TalerConfig::parse_str(&no_account).unwrap())
            .unwrap_err();
        assert_eq!(e.option, "EXCHANGE_ACCOUNT");
    }

    #[test]
    fn an_unreadable_value_is_an_error_not_unset() {
        // An undefined variable in an optional key used to read as "unset": the token would
        // silently be off and Basic auth used instead.
        let broken = INI.replace(
            "WITHDRAWAL_FEES = CHF:0.5",
            "WITHDRAWAL_FEES = CHF:0.5\nADMIN_TOKEN = $CARDCASH_SURELY_UNDEFINED_VARIABLE",
        );
        let cfg = TalerConfig::parse_str(&broken)
            .unwrap()
            .with_env(Default::default());
        let e = C2ecConfig::from_taler_config(&cfg).unwrap_err();
        assert_eq!(e.option, "ADMIN_TOKEN", "{e}");
    }
}
