//! The test environment: a world (bank + merchant backend with the shop instance) and the shop
//! on it, and a minimal browser (a cookie jar; redirects are answers, not followed).

use std::collections::BTreeMap;

use cardcash_api::merchant::payments::WalletRefundRequest;
use cardcash_api::merchant::{ClaimRequest, PaidRequest};
use cardcash_client::{MerchantClient, MerchantWalletClient};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_storefront::{App, StorefrontConfig};
use cardcash_testkit::coins::{self, DepositContract};
use cardcash_testkit::{Engine, World};
use cardcash_util::{Amount, BaseUrl, Currency, EddsaSignature, HashCode};

pub const CURRENCY: &str = "KUDOS";
pub const ADMIN_PASSWORD: &str = "chopin-is-better";

pub fn kudos(value: &str) -> Amount {
    format!("{CURRENCY}:{value}").parse().expect("amount")
}

/// A world with the merchant backend and the shop started on it.
pub struct Env {
    pub world: World,
    pub shop: App,
    /// The backend's private API as the shop instance (the tests' view of the backend).
    pub merchant: MerchantClient,
}

impl Env {
    /// Bank, merchant backend and shop (no exchange: nothing can be paid).
    pub async fn new(engine: Engine) -> Env {
        Self::with(engine, false, |_| {}).await
    }

    /// Also the exchange, so that [`TestWallet`] can pay.
    pub async fn paying(engine: Engine) -> Env {
        Self::with(engine, true, |_| {}).await
    }

    /// `adjust` changes the shop's configuration before it starts.
    pub async fn with(
        engine: Engine,
        exchange: bool,
        adjust: impl FnOnce(&mut StorefrontConfig),
    ) -> Env {
        let currency: Currency = CURRENCY.parse().expect("currency");
        let mut builder = cardcash_testkit::world(engine).currency(currency).bank();
        if exchange {
            builder = builder.exchange();
        }
        let world = builder.merchant().start().await.expect("world starts");
        let shop = Self::start_shop(&world, adjust).await;
        let merchant = MerchantClient::new(
            world.merchant().base_url().clone(),
            "default",
            world.merchant().admin_token(),
        )
        .expect("client");
        Env {
            world,
            shop,
            merchant,
        }
    }

    /// A shop on the world's backend, with the shop instance's own token.
    pub async fn start_shop(world: &World, adjust: impl FnOnce(&mut StorefrontConfig)) -> App {
        let m = world.merchant();
        let token = match m.shop_password() {
            Some(p) => format!("secret-token:{p}"),
            None => m.admin_token().to_owned(),
        };
        let mut config = StorefrontConfig::new(
            CURRENCY.parse().expect("currency"),
            m.base_url().clone(),
            token,
            b"a cookie secret for the tests".to_vec(),
            ADMIN_PASSWORD,
        );
        config.merchant_admin_token = Some(m.admin_token().to_owned());
        adjust(&mut config);
        App::build(config).await.expect("the shop starts")
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.shop.base_url().to_string())
    }

    pub fn wallet(&self) -> TestWallet {
        TestWallet {
            client: MerchantWalletClient::new(self.world.merchant().base_url().clone())
                .expect("client"),
            purchases: Vec::new(),
        }
    }

    pub async fn shutdown(self) {
        self.shop.shutdown().await.expect("shop shutdown");
        self.world.shutdown().await.expect("world shutdown");
    }
}

/// One answer of the shop.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: Option<String>,
    /// `name=value` of each `Set-Cookie` (attributes dropped).
    pub set_cookies: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Page {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Location` of a 302.
    pub fn redirect(&self) -> &str {
        assert_eq!(self.status, 302, "expected a redirect: {}", self.text());
        self.location.as_deref().expect("Location")
    }
}

/// A browser: cookies kept per name, sent back on every request.
pub struct Browser {
    pub base: String,
    pub jar: BTreeMap<String, String>,
    http: reqwest::Client,
}

impl Browser {
    pub fn new(base: String) -> Self {
        Self {
            base,
            jar: BTreeMap::new(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = if self.jar.is_empty() {
            request
        } else {
            request.header("Cookie", self.cookie_header())
        };
        let response = request.send().await.expect("the shop answers");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header("location");
        let content_type = header("content-type");
        let mut set_cookies = Vec::new();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().expect("ASCII cookie");
            let pair = text.split(';').next().unwrap_or("");
            let (name, value) = pair.split_once('=').expect("name=value");
            set_cookies.push((name.to_owned(), value.to_owned()));
            if text.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body").to_vec();
        Page {
            status,
            location,
            content_type,
            set_cookies,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str) -> Page {
        let request = self.http.post(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// A request with HTTP Basic credentials and an optional form.
    pub async fn admin(
        &mut self,
        path: &str,
        password: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> Page {
        let url = format!("{}{path}", self.base);
        let mut request = match form {
            Some(form) => self
                .http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(form)),
            None => self.http.get(url),
        };
        if let Some(password) = password {
            request = request.basic_auth("admin", Some(password));
        }
        self.send(request).await
    }
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).expect("URL");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The order id of a backend order status URL (`…/orders/{id}?…`).
pub fn order_of(status_url: &str) -> String {
    let url = reqwest::Url::parse(status_url).expect("URL");
    let segments: Vec<&str> = url.path_segments().expect("path").collect();
    let at = segments
        .iter()
        .position(|s| *s == "orders")
        .expect("an order URL");
    segments[at + 1].to_owned()
}

/// A purchase the test wallet made.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub order_id: String,
    pub fulfillment_url: String,
    pub h_contract: HashCode,
    /// The merchant's payment confirmation (1104), proof for `/paid`.
    pub sig: EddsaSignature,
}

/// What the test wallet did with a payment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Claimed and paid with fresh coins.
    Paid { order_id: String },
    /// The resource was bought before: the old payment proven under the new session.
    Replayed { paid_order_id: String },
}

/// Plays a GNU Taler wallet with the merchant's public API as the real one does with a
/// `taler://pay` request: claim with the claim token, then either pay with fresh coins from the
/// world's exchange under the request's session, or, when an earlier purchase has the same
/// fulfillment URL, prove that payment with `/paid` for the new session (repurchase
/// detection).
pub struct TestWallet {
    pub client: MerchantWalletClient,
    pub purchases: Vec<Purchase>,
}

impl TestWallet {
    /// Handles the order behind the backend's status page `status_url` (where the shop sent
    /// the browser: `…/orders/{id}?token=…&session_id=…`).
    pub async fn handle(&mut self, world: &World, status_url: &str) -> Handled {
        let order_id = order_of(status_url);
        let session = query_param(status_url, "session_id");
        let token = query_param(status_url, "token");
        let nonce = EddsaPrivateKey::generate().expect("nonce").public();
        let claimed = self
            .client
            .claim(&order_id, &ClaimRequest { nonce, token })
            .await
            .expect("the order is claimed");
        let terms = claimed.contract_terms;
        let fulfillment_url = terms["fulfillment_url"]
            .as_str()
            .expect("a fulfillment URL")
            .to_owned();
        if let Some(old) = self
            .purchases
            .iter()
            .find(|p| p.fulfillment_url == fulfillment_url)
        {
            self.client
                .paid(
                    &old.order_id,
                    &PaidRequest {
                        sig: old.sig,
                        h_contract: old.h_contract,
                        session_id: session.clone().unwrap_or_default(),
                    },
                )
                .await
                .expect("the old payment is accepted for the new session");
            return Handled::Replayed {
                paid_order_id: old.order_id.clone(),
            };
        }
        let amount: Amount = serde_json::from_value(terms["amount"].clone()).expect("amount");
        assert!(
            amount <= kudos("10"),
            "the test wallet pays up to 10 (two coins of 5)"
        );
        let coins = coins::withdraw(world, &[kudos("5"), kudos("5")]).await;
        let contract = DepositContract::from_contract_terms(&terms);
        let request = coins::pay_request(
            &contract,
            &[(&coins[0], kudos("5")), (&coins[1], kudos("5"))],
            session.as_deref(),
        );
        let paid = self
            .client
            .pay(&order_id, &request)
            .await
            .expect("the payment is accepted");
        self.purchases.push(Purchase {
            order_id: order_id.clone(),
            fulfillment_url,
            h_contract: contract.h_contract_terms,
            sig: paid.sig,
        });
        Handled::Paid { order_id }
    }

    /// Picks up the refunds granted for `order_id` (what the refund link leads to).
    pub async fn pick_up_refund(&self, order_id: &str) -> Amount {
        let purchase = self
            .purchases
            .iter()
            .find(|p| p.order_id == order_id)
            .expect("an order this wallet paid");
        let answer = self
            .client
            .refund(
                order_id,
                &WalletRefundRequest {
                    h_contract: purchase.h_contract,
                },
            )
            .await
            .expect("the refund pickup")
            .expect("a refund was granted");
        answer.refund_amount
    }
}

/// The shop's base URL as the contracts name it.
pub fn shop_url(env: &Env, path: &str) -> String {
    let base: &BaseUrl = env.shop.base_url();
    format!("{base}{path}")
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://form.invalid/").expect("URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or("").to_owned()
}
