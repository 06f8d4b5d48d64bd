//! Test fixtures: a running bank on one engine (through the test kit's world), accounts, and
//! small HTTP helpers.

use cardcash_bank::{App, BankConfig};
use cardcash_client::{Auth, WireGatewayClient};
use cardcash_testkit::{Engine, World};
use cardcash_util::{Currency, EddsaPublicKey, HashCode, ShortHashCode};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "secret-token:test-admin";
pub const CUR: &str = "KUDOS";

/// A running bank and an HTTP client for it.
pub struct TestBank {
    world: World,
    pub http: reqwest::Client,
    /// `sqlite` or `postgres`, for assertion messages.
    pub engine: String,
}

impl TestBank {
    /// A bank with only its `admin` account on a fresh database of `engine`.
    pub async fn start(engine: Engine) -> TestBank {
        Self::start_with(engine, |_| {}).await
    }

    /// Like [`TestBank::start`], with the test configuration adjusted by `adjust` first.
    pub async fn start_with(
        engine: Engine,
        adjust: impl FnOnce(&mut BankConfig) + Send + 'static,
    ) -> TestBank {
        let world = cardcash_testkit::world(engine)
            .currency(CUR.parse::<Currency>().unwrap())
            .bare_bank()
            .configure_bank(|config| {
                config.admin_token = Some(ADMIN_TOKEN.to_owned());
                adjust(config);
            })
            .start()
            .await
            .unwrap();
        TestBank {
            world,
            http: reqwest::Client::new(),
            engine: engine.to_string(),
        }
    }

    /// The running bank.
    pub fn app(&self) -> &App {
        self.world.bank().app()
    }

    /// Stops the bank (in-flight requests finish) and removes its database.
    pub async fn shutdown(self) {
        self.world.shutdown().await.unwrap();
    }
}

/// A fresh migrated bank database of `engine`, without a running bank.
pub async fn database(engine: Engine) -> cardcash_store::Database {
    cardcash_testkit::database(
        engine,
        cardcash_bank::db::SERVICE,
        &cardcash_bank::db::SCHEMA,
    )
    .await
}

/// A unique-enough 32-byte value from a label.
pub fn bytes32(label: u8) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, x) in b.iter_mut().enumerate() {
        *x = label
            .wrapping_mul(31)
            .wrapping_add(u8::try_from(i).unwrap());
    }
    b
}

pub fn reserve_pub(label: u8) -> EddsaPublicKey {
    EddsaPublicKey::from_bytes(bytes32(label))
}

pub fn wtid(label: u8) -> ShortHashCode {
    ShortHashCode::from_bytes(bytes32(label))
}

pub fn request_uid(label: u8) -> HashCode {
    let mut b = [0u8; 64];
    b[..32].copy_from_slice(&bytes32(label));
    b[32..].copy_from_slice(&bytes32(label.wrapping_add(100)));
    HashCode::from_bytes(b)
}

/// Credentials for a request.
#[derive(Clone, Debug)]
pub enum Cred {
    None,
    Admin,
    Basic(&'static str, &'static str),
    Bearer(String),
}

impl TestBank {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.app().base_url(), path.trim_start_matches('/'))
    }

    pub fn payto(&self, name: &str) -> String {
        format!("payto://x-taler-bank/localhost/{name}")
    }

    fn with(&self, req: reqwest::RequestBuilder, cred: &Cred) -> reqwest::RequestBuilder {
        match cred {
            Cred::None => req,
            Cred::Admin => req.bearer_auth(ADMIN_TOKEN),
            Cred::Basic(u, p) => req.basic_auth(u, Some(p)),
            Cred::Bearer(t) => req.bearer_auth(t),
        }
    }

    /// GET → (status, JSON body or Null).
    pub async fn get(&self, path: &str, cred: &Cred) -> (StatusCode, Value) {
        let resp = self
            .with(self.http.get(self.url(path)), cred)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// POST JSON → (status, JSON body or Null).
    pub async fn post(&self, path: &str, cred: &Cred, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .with(self.http.post(self.url(path)), cred)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// Creates an account through `POST /accounts` as the admin.
    pub async fn create(&self, name: &str, password: &str, exchange: bool) {
        let (status, body) = self
            .post(
                "/accounts",
                &Cred::Admin,
                &json!({
                    "username": name,
                    "password": password,
                    "name": format!("{name} legal"),
                    "is_taler_exchange": exchange,
                }),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "[{}] create {name}: {body}",
            self.engine
        );
    }

    /// Pays `amount` from the admin account to `name` with a Core API transfer.
    pub async fn fund(&self, name: &str, amount: &str) {
        let (status, body) = self
            .post(
                "/accounts/admin/transactions",
                &Cred::Admin,
                &json!({
                    "payto_uri": format!("{}?message=funding", self.payto(name)),
                    "amount": amount,
                }),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "[{}] fund {name}: {body}",
            self.engine
        );
    }

    /// `(amount, credit_debit_indicator)` of an account, read as the admin.
    pub async fn balance(&self, name: &str) -> (String, String) {
        let (status, body) = self.get(&format!("/accounts/{name}"), &Cred::Admin).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "[{}] balance {name}: {body}",
            self.engine
        );
        (
            body["balance"]["amount"].as_str().unwrap().to_owned(),
            body["balance"]["credit_debit_indicator"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// Asserts the signed balance of an account, e.g. `"KUDOS:5"` or `"-KUDOS:5"`.
    pub async fn assert_balance(&self, name: &str, expected: &str) {
        let (amount, sign) = self.balance(name).await;
        let got = if sign == "debit" {
            format!("-{amount}")
        } else {
            amount
        };
        assert_eq!(got, expected, "[{}] balance of {name}", self.engine);
    }

    /// Double entry: all balances together are zero.
    pub async fn assert_balances_sum_to_zero(&self) {
        let sum = self.app().ledger().balance_sum().await.unwrap();
        assert_eq!(sum, 0, "[{}] balances do not sum to zero", self.engine);
    }

    /// Wire Gateway path of `name`.
    pub fn wg(&self, name: &str, endpoint: &str) -> String {
        format!("/accounts/{name}/taler-wire-gateway/{endpoint}")
    }

    /// The Wire Gateway client (`cardcash_client`) for `name` with Basic credentials.
    pub fn wg_client(&self, name: &str, password: &str) -> WireGatewayClient {
        WireGatewayClient::new(
            self.app().wire_gateway_url(name).unwrap(),
            Auth::basic(name, password),
        )
        .unwrap()
    }

    /// `admin/add-incoming` for `exchange` (as the admin), returning the row id.
    pub async fn add_incoming(&self, exchange: &str, amount: &str, label: u8, debit: &str) -> u64 {
        let (status, body) = self
            .post(
                &self.wg(exchange, "admin/add-incoming"),
                &Cred::Admin,
                &json!({
                    "amount": amount,
                    "reserve_pub": reserve_pub(label).to_string(),
                    "debit_account": debit,
                }),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "[{}] add-incoming: {body}",
            self.engine
        );
        body["row_id"].as_u64().unwrap()
    }
}

/// Asserts a Taler error response: status and numeric code.
pub fn assert_taler_error(engine: &str, got: &(StatusCode, Value), status: StatusCode, code: u64) {
    assert_eq!(got.0, status, "[{engine}] status, body {}", got.1);
    assert_eq!(
        got.1["code"].as_u64(),
        Some(code),
        "[{engine}] code, body {}",
        got.1
    );
}
