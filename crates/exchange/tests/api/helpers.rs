//! Test fixtures: an exchange on one engine with two denomination types (RSA and CS), one bank
//! account, and a master key; [`TestExchange::sign_keys`] plays the offline key.

use cardcash_client::ExchangeClient;
use cardcash_exchange::config::{AccountConfig, CipherConfig, DenominationConfig, ExchangeConfig};
use cardcash_exchange::offline::MasterKey;
use cardcash_exchange::{App, db};
use cardcash_testkit::Engine;
use cardcash_util::{Amount, Currency, RelativeTime, Timestamp};

pub const CUR: &str = "KUDOS";
pub const ACCOUNT: &str = "payto://x-taler-bank/bank.example/exchange?receiver-name=Exchange";

pub fn kudos(text: &str) -> Amount {
    format!("{CUR}:{text}").parse().unwrap()
}

pub fn coin(section: &str, cipher: CipherConfig, value: &str, fee: &str) -> DenominationConfig {
    DenominationConfig {
        section: section.into(),
        cipher,
        value: kudos(value),
        fee_withdraw: kudos(fee),
        fee_deposit: kudos(fee),
        fee_refresh: kudos(fee),
        fee_refund: kudos(fee),
        duration_withdraw: RelativeTime::from_secs(7 * 24 * 3600),
        duration_spend: RelativeTime::from_secs(365 * 24 * 3600),
        duration_legal: RelativeTime::from_secs(3 * 365 * 24 * 3600),
    }
}

/// A running exchange and the offline key that owns it.
pub struct TestExchange {
    pub app: Option<App>,
    pub master: MasterKey,
    pub client: ExchangeClient,
    _keys: tempfile::TempDir,
}

impl TestExchange {
    /// An exchange on a fresh database of `engine`; its keys are not signed yet.
    pub async fn start(engine: Engine) -> Self {
        let currency: Currency = CUR.parse().unwrap();
        let keys = tempfile::tempdir().unwrap();
        let master = MasterKey::generate().unwrap();
        let mut config = ExchangeConfig::new(currency, "unused", keys.path().to_owned());
        config.master_public_key = Some(master.public());
        // Short look-ahead: one key per type (RSA generation is slow in debug builds).
        config.lookahead_sign = RelativeTime::from_secs(3600);
        config.denominations = vec![
            coin(
                "coin_kudos_1",
                CipherConfig::Rsa { bits: 1024 },
                "1",
                "0.01",
            ),
            coin("coin_kudos_cs_5", CipherConfig::Cs, "5", "0.02"),
        ];
        config.accounts = vec![AccountConfig {
            section: "exchange-account-1".into(),
            payto: ACCOUNT.parse().unwrap(),
            enable_debit: true,
            enable_credit: true,
            gateway: None,
        }];
        let database = cardcash_testkit::database(engine, db::SERVICE, &db::SCHEMA).await;
        let app = App::build_with_db(config, database).await.unwrap();
        let client = ExchangeClient::new(app.base_url().clone()).unwrap();
        Self {
            app: Some(app),
            master,
            client,
            _keys: keys,
        }
    }

    /// The offline key's routine: download the proposed keys, sign, upload; enable the
    /// account; set this year's wire and global fees.
    pub async fn sign_keys(&self) {
        let management = self.client.management();
        let future = management.future_keys().await.unwrap();
        let signatures = self.master.sign_future_keys(&future).unwrap();
        management.upload_keys(&signatures).await.unwrap();
        let now = Timestamp::now();
        let start = Timestamp::from_secs(now.as_secs() - 3600);
        let end = Timestamp::from_secs(now.as_secs() + 365 * 24 * 3600);
        management
            .enable_wire(
                &self
                    .master
                    .enable_account(&ACCOUNT.parse().unwrap(), start, None, 0)
                    .unwrap(),
            )
            .await
            .unwrap();
        management
            .set_wire_fee(&self.master.wire_fee(
                "x-taler-bank",
                start,
                end,
                kudos("0.05"),
                kudos("0.01"),
            ))
            .await
            .unwrap();
        management
            .set_global_fees(&self.master.global_fees(
                start,
                end,
                kudos("0"),
                kudos("0"),
                kudos("0"),
                RelativeTime::from_secs(3600),
                RelativeTime::from_secs(365 * 24 * 3600),
                5,
            ))
            .await
            .unwrap();
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await.unwrap();
        }
    }
}
