//! The test environment: a merchant backend on a fresh database of the engine under test,
//! reached over HTTP.

use cardcash_merchant::{App, MerchantConfig};
use cardcash_testkit::Engine;
use cardcash_util::Currency;
use serde_json::Value;

pub const CURRENCY: &str = "KUDOS";

/// A running merchant backend and an HTTP client for it.
pub struct Env {
    pub app: App,
    pub http: reqwest::Client,
    /// The backend's base URL, ending in `/`.
    pub base: String,
}

impl Env {
    /// A backend with the default configuration, except that webhooks may reach private
    /// addresses (`adjust` may change it before it starts).
    pub async fn new(engine: Engine) -> Env {
        Self::with(engine, |_| {}).await
    }

    pub async fn with(engine: Engine, adjust: impl FnOnce(&mut MerchantConfig)) -> Env {
        let db = cardcash_testkit::database(
            engine,
            cardcash_merchant::db::SERVICE,
            &cardcash_merchant::db::SCHEMA,
        )
        .await;
        let currency: Currency = CURRENCY.parse().expect("currency");
        let mut config = MerchantConfig::new(currency, "unused");
        // The tests' webhook receivers listen on 127.0.0.1; the tests of the refusal switch
        // this back to the production default.
        config.webhook_allow_private_addresses = true;
        adjust(&mut config);
        let app = App::build_with_db(config, db)
            .await
            .expect("merchant starts");
        let base = app.base_url().to_string();
        Env {
            app,
            http: reqwest::Client::new(),
            base,
        }
    }

    /// `GET {base}{path}`: status and JSON body (`Value::Null` when empty or not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Creates instance `id` ("Pretty Pianos", authentication `external`, the backend's default
/// delays, changed by `adjust`) with the account `payto` if given, in the backend's store;
/// returns the stored row (its `merchant_priv` is the instance's key).
pub async fn create_instance(
    env: &Env,
    id: &str,
    payto: Option<&str>,
    adjust: impl FnOnce(&mut cardcash_merchant::db::instances::InstanceRow),
) -> cardcash_merchant::db::instances::InstanceRow {
    use cardcash_merchant::db::instances::{CreateInstance, InstanceAuth, NewInstance};
    use cardcash_merchant::instances::{new_account, new_instance_row};
    let merchant = env.app.merchant();
    let mut row = new_instance_row(
        id,
        "Pretty Pianos",
        InstanceAuth::External,
        merchant.config(),
    )
    .expect("instance row");
    adjust(&mut row);
    let accounts = payto
        .map(|p| new_account(p.to_owned(), None, None).expect("account"))
        .into_iter()
        .collect();
    let created = merchant
        .store()
        .create_instance(NewInstance { row, accounts })
        .await
        .expect("create instance");
    assert!(matches!(created, CreateInstance::Created { .. }));
    merchant
        .store()
        .instance(id)
        .await
        .expect("read instance")
        .expect("the instance")
}
