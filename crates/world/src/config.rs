//! A world and the Taler INI configuration: [`World::from_config`] starts the services a
//! configuration describes; [`World::write_config`] writes back where they run.

use cardcash_bank::BankConfig;
use cardcash_c2ec::C2ecConfig;
use cardcash_cardproc::CardprocConfig;
use cardcash_util::TalerConfig;

use crate::{
    BankPlan, C2ecPlan, CardprocPlan, ExchangeAccount, Provider, Storage, TERMINAL_NAME, World,
    WorldBuilder, WorldError,
};

/// The section of the provider C2EC attests with.
const PROVIDER: &str = "c2ec-provider-cardproc";
/// The terminal's section (`cardcash terminal`).
const TERMINAL: &str = "terminal";

fn config_error(e: impl std::fmt::Display) -> WorldError {
    WorldError::Config(e.to_string())
}

impl World {
    /// A builder for the services `cfg` has a section of (`[bank]`, `[cardproc]`, `[c2ec]`),
    /// each on its configured database and listening address. When the configuration runs
    /// the card processor too, C2EC attests with it at its actual URL (the credentials of
    /// `[c2ec-provider-cardproc]` stay as configured). C2EC's terminal is the one of
    /// `[terminal]` (`TERMINAL_USER`, `TERMINAL_SECRET`) if C2EC still has it active, else a
    /// newly registered one. Add bank accounts with [`WorldBuilder::bank_account`].
    pub fn from_config(cfg: &TalerConfig) -> Result<WorldBuilder, WorldError> {
        let mut builder = WorldBuilder::new().storage(Storage::Configured);
        if let Some(currency) = cfg
            .currency_opt("taler", "CURRENCY")
            .map_err(config_error)?
        {
            builder = builder.currency(currency);
        }
        if cfg.has_section("bank") {
            let config = BankConfig::from_taler_config(cfg).map_err(config_error)?;
            builder.bank = Some(BankPlan {
                config: Some(config),
                adjust: Vec::new(),
                accounts: Vec::new(),
                exchange: ExchangeAccount::None,
            });
        }
        let runs_cardproc = cfg.has_section("cardproc");
        if runs_cardproc {
            let config = CardprocConfig::from_taler_config(cfg).map_err(config_error)?;
            builder.cardproc = Some(CardprocPlan {
                config: Some(config),
                adjust: Vec::new(),
            });
        }
        if cfg.has_section("c2ec") {
            let config = if runs_cardproc && cfg.raw(PROVIDER, "BASE_URL").is_none() {
                // The card processor's URL is known once it listens.
                let mut with_url = cfg.clone();
                with_url.set(
                    PROVIDER,
                    "BASE_URL",
                    crate::placeholder_provider().base_url.to_string(),
                );
                C2ecConfig::from_taler_config(&with_url)
            } else {
                C2ecConfig::from_taler_config(cfg)
            }
            .map_err(config_error)?;
            let existing = match (
                cfg.string_opt(TERMINAL, "TERMINAL_USER")
                    .map_err(config_error)?,
                cfg.string_opt(TERMINAL, "TERMINAL_SECRET")
                    .map_err(config_error)?,
            ) {
                (Some(user), Some(secret)) => Some((user, secret)),
                _ => None,
            };
            builder.c2ec = Some(C2ecPlan {
                config: Some(config),
                adjust: Vec::new(),
                provider: if runs_cardproc {
                    Provider::WorldUrl
                } else {
                    Provider::Configured
                },
                terminal_name: Some(TERMINAL_NAME.to_owned()),
                terminal_existing: existing,
            });
        }
        if cfg.has_section("exchange") {
            let config =
                cardcash_exchange::ExchangeConfig::from_taler_config(cfg).map_err(config_error)?;
            let master_file = cfg
                .path_opt("exchange-offline", "MASTER_PRIV_FILE")
                .map_err(config_error)?;
            builder.exchange = Some(crate::exchange::ExchangePlan {
                config: Some(config),
                master_file,
                adjust: Vec::new(),
            });
        }
        if cfg.has_section("merchant") {
            let config =
                cardcash_merchant::MerchantConfig::from_taler_config(cfg).map_err(config_error)?;
            builder.merchant = Some(crate::merchant::MerchantPlan {
                config: Some(config),
                adjust: Vec::new(),
            });
        }
        if cfg.has_section("storefront") {
            // The storefront of a world sells on the world's merchant, known once it listens.
            let mut with_url = cfg.clone();
            if with_url.raw("storefront", "MERCHANT_BASE_URL").is_none() {
                with_url.set("storefront", "MERCHANT_BASE_URL", "http://127.0.0.1:1/");
            }
            let config = cardcash_storefront::StorefrontConfig::from_taler_config(&with_url)
                .map_err(config_error)?;
            builder.storefront = Some(crate::storefront::StorefrontPlan {
                config: Some(config),
                adjust: Vec::new(),
            });
        }
        Ok(builder)
    }

    /// Writes where the services run into `cfg`: each one's `BIND` (the address it got), its
    /// `DATABASE` when the world chose it, C2EC's provider URL when it attests with the world's
    /// card processor, and the `[terminal]` section (C2EC's terminal API and credentials, the
    /// card processor's URL and `terminal` user), so that `cardcash -c FILE …` reaches them.
    pub fn write_config(&self, cfg: &mut TalerConfig) {
        let chose_databases = self.chose_databases;
        if let Some(bank) = self.try_bank() {
            cfg.set("bank", "BIND", bank.app().addr().to_string());
            if chose_databases {
                cfg.set("bank", "DATABASE", bank.database_url());
            }
        }
        if let Some(cardproc) = self.try_cardproc() {
            cfg.set("cardproc", "BIND", cardproc.app().addr().to_string());
            if chose_databases {
                cfg.set("cardproc", "DATABASE", cardproc.database_url());
            }
            cfg.set(TERMINAL, "CARDPROC_URL", cardproc.base_url().to_string());
            cfg.set(
                TERMINAL,
                "CARDPROC_SPACE_ID",
                cardproc.space_id().to_string(),
            );
            if let Some(user) = cardproc.terminal_user() {
                cfg.set(TERMINAL, "CARDPROC_USER_ID", user.id.to_string());
                cfg.set(TERMINAL, "CARDPROC_SECRET", user.secret.clone());
            }
        }
        if let Some(exchange) = self.try_exchange() {
            cfg.set("exchange", "BIND", exchange.app().addr().to_string());
            if chose_databases {
                cfg.set("exchange", "DATABASE", exchange.database_url());
            }
            cfg.set(
                "exchange",
                "MASTER_PUBLIC_KEY",
                exchange.master().public().to_string(),
            );
            for account in exchange.accounts() {
                let section = &account.section;
                cfg.set(section, "PAYTO_URI", account.payto.to_string());
                let yes_no = |b: bool| if b { "YES" } else { "NO" };
                cfg.set(section, "ENABLE_DEBIT", yes_no(account.enable_debit));
                cfg.set(section, "ENABLE_CREDIT", yes_no(account.enable_credit));
                if let Some(gateway) = &account.gateway {
                    let credentials =
                        section.replacen("exchange-account-", "exchange-accountcredentials-", 1);
                    cfg.set(&credentials, "WIRE_GATEWAY_URL", gateway.url.to_string());
                    match &gateway.auth {
                        cardcash_exchange::config::GatewayAuth::None => {
                            cfg.set(&credentials, "WIRE_GATEWAY_AUTH_METHOD", "none");
                        }
                        cardcash_exchange::config::GatewayAuth::Basic { username, password } => {
                            cfg.set(&credentials, "WIRE_GATEWAY_AUTH_METHOD", "basic");
                            cfg.set(&credentials, "USERNAME", username.clone());
                            cfg.set(&credentials, "PASSWORD", password.clone());
                        }
                        cardcash_exchange::config::GatewayAuth::Bearer(token) => {
                            cfg.set(&credentials, "WIRE_GATEWAY_AUTH_METHOD", "bearer");
                            cfg.set(&credentials, "TOKEN", token.clone());
                        }
                    }
                }
            }
        }
        if let Some(merchant) = &self.merchant {
            cfg.set("merchant", "BIND", merchant.app().addr().to_string());
            if chose_databases {
                cfg.set("merchant", "DATABASE", merchant.database_url());
            }
            cfg.set("merchant", "ADMIN_TOKEN", merchant.admin_token());
            for exchange in &merchant.app().merchant().config().exchanges {
                cfg.set(
                    &exchange.section,
                    "EXCHANGE_BASE_URL",
                    exchange.base_url.to_string(),
                );
                cfg.set(
                    &exchange.section,
                    "MASTER_KEY",
                    exchange.master_pub.to_string(),
                );
                cfg.set(&exchange.section, "CURRENCY", exchange.currency.to_string());
            }
        }
        if let Some(storefront) = &self.storefront {
            let config = storefront.config();
            cfg.set("storefront", "BIND", storefront.app().addr().to_string());
            cfg.set(
                "storefront",
                "MERCHANT_BASE_URL",
                config.merchant_base_url.to_string(),
            );
            cfg.set(
                "storefront",
                "MERCHANT_TOKEN",
                config.merchant_token.clone(),
            );
            cfg.set(
                "storefront",
                "COOKIE_SECRET",
                String::from_utf8_lossy(&config.cookie_secret).into_owned(),
            );
            cfg.set(
                "storefront",
                "ADMIN_PASSWORD",
                config.admin_password.clone(),
            );
        }
        if let Some(c2ec) = self.try_c2ec() {
            cfg.set("c2ec", "BIND", c2ec.app().addr().to_string());
            if chose_databases {
                cfg.set("c2ec", "DATABASE", c2ec.database_url());
            }
            if let (Some(url), Some(_)) = (c2ec.provider_url(), self.try_cardproc()) {
                cfg.set(PROVIDER, "BASE_URL", url.to_string());
            }
            cfg.set(
                TERMINAL,
                "C2EC_TERMINAL_URL",
                c2ec.terminal_url().to_string(),
            );
            if let Some(terminal) = c2ec.terminal() {
                cfg.set(TERMINAL, "TERMINAL_USER", terminal.user.clone());
                cfg.set(TERMINAL, "TERMINAL_SECRET", terminal.secret.clone());
            }
        }
    }
}
