//! Claim, order status (private and public, sessions, long polling, repurchase detection), the
//! HTML order page and `/paid`, as wallets and storefronts use them (behaviour of wallet-core's
//! `test-paywall-flow.ts`, `test-merchant-spec-public-orders.ts`, `test-payment-claim.ts`).

use std::time::{Duration, Instant};

use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{ContractSig, PaymentOk};
use cardcash_merchant::config::DEFAULT_INSTANCE;
use cardcash_merchant::db::payments::PaidMark;
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::{EddsaPublicKey, HashCode, RelativeTime, TalerUri, Timestamp};
use serde_json::{Value, json};

use crate::helpers::{CURRENCY, Env, create_instance};

/// A backend with the default instance (no authentication: a proxy would do it) and one bank
/// account, and a client that does not follow redirects.
struct Shop {
    env: Env,
    key: EddsaPrivateKey,
    http: reqwest::Client,
}

const FULFILLMENT: &str = "https://shop.example/essay/sonatas";
const REORDER: &str = "https://shop.example/essay/sonatas-share";

async fn shop(engine: Engine) -> Shop {
    let env = Env::new(engine).await;
    let payto = "payto://x-taler-bank/bank.example/shop?receiver-name=Shop";
    let row = create_instance(&env, DEFAULT_INSTANCE, Some(payto), |r| {
        r.default_pay_delay = RelativeTime::from_secs(3600);
        r.default_refund_delay = RelativeTime::from_secs(3600);
        r.default_wire_transfer_delay = RelativeTime::from_secs(7200);
    })
    .await;
    let key = EddsaPrivateKey::from_bytes(&row.merchant_priv);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Shop { env, key, http }
}

/// A response: status, headers and body (JSON, or `Value::String` of the text).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    async fn of(r: reqwest::Response) -> Answer {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    fn text(&self) -> &str {
        self.body.as_str().unwrap_or_default()
    }
}

impl Shop {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.env.base)
    }

    async fn get(&self, path: &str) -> Answer {
        Answer::of(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    async fn get_html(&self, path: &str) -> Answer {
        Answer::of(
            self.http
                .get(self.url(path))
                .header("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        Answer::of(
            self.http
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Creates an order; its id and claim token (base32) if one was made.
    async fn create_order(
        &self,
        order_id: &str,
        fulfillment_url: Option<&str>,
        create_token: bool,
    ) -> (String, Option<String>) {
        self.create_order_with(order_id, fulfillment_url, create_token, true)
            .await
    }

    async fn create_order_with(
        &self,
        order_id: &str,
        fulfillment_url: Option<&str>,
        create_token: bool,
        reorder: bool,
    ) -> (String, Option<String>) {
        let mut order = json!({
            "order_id": order_id,
            "summary": "Beethoven Sonatas",
            "amount": format!("{CURRENCY}:5"),
        });
        if reorder {
            order["public_reorder_url"] = json!(REORDER);
        }
        if let Some(url) = fulfillment_url {
            order["fulfillment_url"] = json!(url);
        }
        let r = self
            .post(
                "private/orders",
                &json!({"order": order, "create_token": create_token}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["order_id"], order_id);
        (
            order_id.to_owned(),
            r.body["token"].as_str().map(str::to_owned),
        )
    }

    async fn claim(&self, order_id: &str, nonce: &EddsaPublicKey, token: Option<&str>) -> Answer {
        let mut body = json!({"nonce": nonce});
        if let Some(token) = token {
            body["token"] = json!(token);
        }
        self.post(&format!("orders/{order_id}/claim"), &body).await
    }

    /// Claims the order and returns its contract hash.
    async fn claimed(&self, order_id: &str, token: Option<&str>) -> HashCode {
        let nonce = EddsaPrivateKey::generate().unwrap().public();
        let r = self.claim(order_id, &nonce, token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        cardcash_crypto::h_contract_terms(&r.body["contract_terms"]).unwrap()
    }

    /// Marks a claimed order paid under `session` (what a successful `/pay` does; its coins
    /// are not this file's concern).
    async fn mark_paid(&self, order_id: &str, session: &str) {
        let store = self.env.app.merchant().store();
        let instance = store.instance(DEFAULT_INSTANCE).await.unwrap().unwrap();
        let order = store
            .pay_order(instance.serial, order_id)
            .await
            .unwrap()
            .unwrap();
        store
            .record_payment(
                order.serial,
                Vec::new(),
                Some(PaidMark {
                    instance_serial: instance.serial,
                    order_id: order_id.to_owned(),
                    session_id: session.to_owned(),
                    paid_at: Timestamp::now(),
                }),
            )
            .await
            .unwrap();
    }

    /// `POST /orders/$ID/paid` with the payment confirmation the merchant gave for `h`.
    async fn paid(&self, order_id: &str, h: &HashCode, session: &str) -> Answer {
        let sig = self.key.sign(&PaymentOk {
            h_contract_terms: *h,
        });
        self.post(
            &format!("orders/{order_id}/paid"),
            &json!({"sig": sig, "h_contract": h, "session_id": session}),
        )
        .await
    }
}

fn random_token() -> String {
    cardcash_util::base32::encode(&cardcash_crypto::random_bytes::<16>().unwrap())
}

fn random_hash() -> String {
    cardcash_util::base32::encode(&cardcash_crypto::random_bytes::<64>().unwrap())
}

engine_test!(
    /// The claim adds the wallet's nonce, signs the hash of exactly what it returns, answers the
    /// same nonce again with the same contract, and refuses a second wallet.
    async fn claim_is_idempotent_and_binds_one_wallet(engine: Engine) {
        let shop = shop(engine).await;
        let (order_id, token) = shop.create_order("o-claim", Some(FULFILLMENT), true).await;
        let token = token.expect("a claim token by default");
        let nonce = EddsaPrivateKey::generate().unwrap().public();
        let first = shop.claim(&order_id, &nonce, Some(&token)).await;
        assert_eq!(first.status, 200, "{}", first.body);
        let contract = &first.body["contract_terms"];
        assert_eq!(contract["nonce"], json!(nonce));
        assert_eq!(contract["order_id"], order_id);
        let h = cardcash_crypto::h_contract_terms(contract).unwrap();
        let sig = serde_json::from_value(first.body["sig"].clone()).unwrap();
        cardcash_crypto::verify(
            &shop.key.public(),
            &sig,
            &ContractSig {
                h_contract_terms: h,
            },
        )
        .expect("the claim is signed by the instance (1101)");

        let again = shop.claim(&order_id, &nonce, Some(&token)).await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.body["contract_terms"], first.body["contract_terms"]);

        let other = EddsaPrivateKey::generate().unwrap().public();
        let second = shop.claim(&order_id, &other, Some(&token)).await;
        assert_eq!(second.status, 409, "{}", second.body);
        assert_eq!(second.body["code"], 2301);

        let unknown = shop.claim("no-such-order", &nonce, Some(&token)).await;
        assert_eq!(unknown.status, 404, "{}", unknown.body);
        assert_eq!(unknown.body["code"], 2300);

        // The private status now shows the claimed contract.
        let status = shop.get(&format!("private/orders/{order_id}")).await;
        assert_eq!(status.status, 200, "{}", status.body);
        assert_eq!(status.body["order_status"], "claimed");
        assert_eq!(status.body["contract_terms"], first.body["contract_terms"]);
        let url = status.body["order_status_url"].as_str().unwrap();
        assert!(url.contains(&format!("h_contract={h}")), "{url}");
    }
);

engine_test!(
    /// Two wallets claiming the same order at once: exactly one gets it.
    async fn of_two_racing_claims_exactly_one_wins(engine: Engine) {
        let shop = shop(engine).await;
        for round in 0..4 {
            let (id, token) = shop
                .create_order(&format!("o-race-{round}"), Some(FULFILLMENT), true)
                .await;
            let claims: Vec<_> = (0..2)
                .map(|_| {
                    let nonce = EddsaPrivateKey::generate().unwrap().public();
                    let request = shop
                        .http
                        .post(shop.url(&format!("orders/{id}/claim")))
                        .json(&json!({"nonce": nonce, "token": token}));
                    tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
                })
                .collect();
            let mut statuses = Vec::new();
            for claim in claims {
                statuses.push(claim.await.unwrap());
            }
            statuses.sort_unstable();
            assert_eq!(statuses, vec![200, 409], "round {round}");
        }
    }
);

engine_test!(
    /// Whoever knows only the order id cannot claim (steal) the order: without the claim token
    /// it looks unknown; the customer with the token claims it afterwards.
    async fn an_order_cannot_be_stolen_without_its_claim_token(engine: Engine) {
        let shop = shop(engine).await;
        let (order_id, token) = shop.create_order("o-theft", Some(FULFILLMENT), true).await;
        let thief = EddsaPrivateKey::generate().unwrap().public();
        for stolen in [None, Some(random_token()), Some("garbage".to_owned())] {
            let r = shop.claim(&order_id, &thief, stolen.as_deref()).await;
            assert_eq!(r.status, 404, "{stolen:?}: {}", r.body);
            assert_eq!(r.body["code"], 2300);
        }
        let customer = EddsaPrivateKey::generate().unwrap().public();
        let r = shop.claim(&order_id, &customer, token.as_deref()).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["contract_terms"]["nonce"], json!(customer));
        // An order made without a token is claimed by its id alone (it must be unguessable).
        let (open, none) = shop.create_order("o-open", Some(FULFILLMENT), false).await;
        assert_eq!(none, None);
        assert_eq!(shop.claim(&open, &thief, None).await.status, 200);
    }
);

engine_test!(
    /// `GET /orders/$ID` as wallet-core's `test-merchant-spec-public-orders` walks it.
    async fn the_public_status_answers_each_state_and_credential(engine: Engine) {
        let shop = shop(engine).await;
        assert_eq!(shop.get("orders/foo").await.status, 404);
        assert_eq!(shop.get_html("orders/foo").await.status, 404);
        let (id, token) = shop.create_order("o-public", Some(FULFILLMENT), true).await;
        let token = token.unwrap();

        // unclaimed: no credentials → go to the reorder page; the token → 402 with a pay URI
        let r = shop.get(&format!("orders/{id}")).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["public_reorder_url"], REORDER);
        let r = shop.get(&format!("orders/{id}?token={token}")).await;
        assert_eq!(r.status, 402, "{}", r.body);
        let uri: TalerUri = r.body["taler_pay_uri"].as_str().unwrap().parse().unwrap();
        let TalerUri::Pay {
            order_id,
            claim_token,
            session_id,
            merchant_base,
            ..
        } = uri
        else {
            panic!("a pay URI");
        };
        assert_eq!(order_id, id);
        assert_eq!(claim_token.as_deref(), Some(token.as_str()));
        assert_eq!(session_id, "");
        assert_eq!(merchant_base.as_str(), shop.env.base);
        assert_eq!(
            shop.get_html(&format!("orders/{id}?token={token}"))
                .await
                .status,
            402
        );
        let r = shop
            .get(&format!("orders/{id}?token={}", random_token()))
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.body["code"], 2105);

        let h = shop.claimed(&id, Some(&token)).await;
        // claimed, unpaid
        let r = shop
            .get(&format!("orders/{id}?h_contract={}", random_hash()))
            .await;
        assert_eq!(
            (r.status, r.body["code"].clone()),
            (403, json!(2106)),
            "{}",
            r.body
        );
        let r = shop
            .get(&format!("orders/{id}?token={}", random_token()))
            .await;
        assert_eq!(
            (r.status, r.body["code"].clone()),
            (403, json!(2105)),
            "{}",
            r.body
        );
        assert_eq!(
            shop.get(&format!("orders/{id}?token={token}")).await.status,
            402
        );
        assert_eq!(
            shop.get(&format!("orders/{id}?h_contract={h}"))
                .await
                .status,
            402
        );
        assert_eq!(shop.get(&format!("orders/{id}")).await.status, 202);

        shop.mark_paid(&id, "").await;
        // paid
        assert_eq!(shop.get(&format!("orders/{id}")).await.status, 202);
        let r = shop
            .get(&format!("orders/{id}?h_contract={}", random_hash()))
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        let r = shop
            .get(&format!("orders/{id}?token={}", random_token()))
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        let r = shop.get(&format!("orders/{id}?h_contract={h}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["refunded"], false);
        assert_eq!(r.body["refund_pending"], false);
        assert_eq!(r.body["refund_amount"], format!("{CURRENCY}:0"));
        assert_eq!(
            shop.get(&format!("orders/{id}?token={token}")).await.status,
            200
        );

        // An order made without a token: its id is its credential.
        let (open, _) = shop
            .create_order("o-public-open", Some(FULFILLMENT), false)
            .await;
        assert_eq!(shop.get(&format!("orders/{open}")).await.status, 402);
        // Without a token and without a reorder page, the status is simply refused.
        shop.create_order_with("o-no-reorder", Some(FULFILLMENT), true, false)
            .await;
        assert_eq!(shop.get("orders/o-no-reorder").await.status, 403);
    }
);

engine_test!(
    /// Design document 007's sessions: paid under s1 reads "paid" for s1 and "claimed" for s2;
    /// `/paid` under s2 makes it "paid" for s2; a new order for the same resource is detected as
    /// already paid in s2 (private status, public JSON, and the HTML page's redirect).
    async fn sessions_and_repurchase_detection(engine: Engine) {
        let shop = shop(engine).await;
        let (first, token) = shop.create_order("o-s-1", Some(FULFILLMENT), true).await;
        let token = token.unwrap();

        let r = shop
            .get(&format!("private/orders/{first}?session_id=s1"))
            .await;
        assert_eq!(r.body["order_status"], "unpaid", "{}", r.body);
        assert_eq!(r.body["total_amount"], format!("{CURRENCY}:5"));
        assert_eq!(r.body["summary"], "Beethoven Sonatas");
        assert!(r.body.get("already_paid_order_id").is_none());
        let pay_uri = r.body["taler_pay_uri"].as_str().unwrap();
        assert!(pay_uri.starts_with("taler+http://pay/"), "{pay_uri}");
        assert!(
            pay_uri.ends_with(&format!("/{first}/s1?c={token}")),
            "{pay_uri}"
        );
        let status_url = r.body["order_status_url"].as_str().unwrap().to_owned();
        assert_eq!(
            status_url,
            format!(
                "{}orders/{first}?token={token}&session_id=s1",
                shop.env.base
            )
        );
        // The order status URL is what the storefront redirects the browser to.
        let page = Answer::of(
            shop.http
                .get(&status_url)
                .header("Accept", "text/html")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(page.status, 402);
        assert!(
            page.text().contains(&format!("href=\"{pay_uri}\"")),
            "{}",
            page.text()
        );

        let h = shop.claimed(&first, Some(&token)).await;
        shop.mark_paid(&first, "s1").await;
        let r = shop
            .get(&format!("private/orders/{first}?session_id=s1"))
            .await;
        assert_eq!(r.body["order_status"], "paid", "{}", r.body);
        assert_eq!(r.body["refunded"], false);
        assert_eq!(r.body["refund_pending"], false);
        assert_eq!(r.body["wired"], false);
        assert_eq!(r.body["deposit_total"], format!("{CURRENCY}:0"));
        assert_eq!(r.body["contract_terms"]["order_id"], first);
        assert!(r.body["last_payment"]["t_s"].is_u64());
        assert_eq!(r.body["refund_details"], json!([]));
        assert_eq!(r.body["wire_details"], json!([]));
        // Without a session, paid is paid.
        let r = shop.get(&format!("private/orders/{first}")).await;
        assert_eq!(r.body["order_status"], "paid", "{}", r.body);
        // Another session (another browser): claimed, not paid.
        let r = shop
            .get(&format!("private/orders/{first}?session_id=s2"))
            .await;
        assert_eq!(r.body["order_status"], "claimed", "{}", r.body);
        assert_eq!(
            r.body["order_status_url"],
            format!(
                "{}orders/{first}?h_contract={h}&session_id=s2",
                shop.env.base
            )
        );
        // Paid in this session: the page sends the browser to the resource.
        let page = shop
            .get_html(&format!("orders/{first}?token={token}&session_id=s1"))
            .await;
        assert_eq!(page.status, 302);
        assert_eq!(page.headers["location"], FULFILLMENT);
        let r = shop
            .get(&format!("orders/{first}?token={token}&session_id=s1"))
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["fulfillment_url"], FULFILLMENT);
        // ... but under s2 it shows the payment page again (the wallet will prove its payment).
        let page = shop
            .get_html(&format!("orders/{first}?h_contract={h}&session_id=s2"))
            .await;
        assert_eq!(page.status, 402);
        assert!(page.text().contains("/s2?c="), "{}", page.text());

        // The wallet proves the payment for s2.
        let r = shop.paid(&first, &h, "s2").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, json!({"refunded": false}));
        let r = shop
            .get(&format!("private/orders/{first}?session_id=s2"))
            .await;
        assert_eq!(r.body["order_status"], "paid", "{}", r.body);
        let r = shop
            .get(&format!("private/orders/{first}?session_id=s1"))
            .await;
        assert_eq!(r.body["order_status"], "claimed", "{}", r.body);

        // A new order for the same resource, looked at in s2: already paid by the first.
        let (second, token2) = shop.create_order("o-s-2", Some(FULFILLMENT), true).await;
        let token2 = token2.unwrap();
        let r = shop
            .get(&format!("private/orders/{second}?session_id=s2"))
            .await;
        assert_eq!(r.body["order_status"], "unpaid", "{}", r.body);
        assert_eq!(r.body["already_paid_order_id"], first);
        assert_eq!(r.body["already_paid_fulfillment_url"], FULFILLMENT);
        let r = shop
            .get(&format!("private/orders/{second}?session_id=s3"))
            .await;
        assert!(r.body.get("already_paid_order_id").is_none(), "{}", r.body);
        let r = shop
            .get(&format!("orders/{second}?token={token2}&session_id=s2"))
            .await;
        assert_eq!(r.status, 402, "{}", r.body);
        assert_eq!(r.body["already_paid_order_id"], first);
        let page = shop
            .get_html(&format!("orders/{second}?token={token2}&session_id=s2"))
            .await;
        assert_eq!(page.status, 302);
        assert_eq!(page.headers["location"], FULFILLMENT);
        // Another resource is not "the same purchase".
        let (other, _) = shop
            .create_order("o-s-3", Some("https://shop.example/essay/other"), true)
            .await;
        let r = shop
            .get(&format!("private/orders/{other}?session_id=s2"))
            .await;
        assert!(r.body.get("already_paid_order_id").is_none(), "{}", r.body);
    }
);

engine_test!(
    /// `/paid` proves a payment only with the merchant's own confirmation of this contract.
    async fn paid_refuses_foreign_signatures_and_other_contracts(engine: Engine) {
        let shop = shop(engine).await;
        let (id, token) = shop.create_order("o-paid", Some(FULFILLMENT), true).await;
        let h = shop.claimed(&id, token.as_deref()).await;
        shop.mark_paid(&id, "s1").await;

        let forged = EddsaPrivateKey::generate().unwrap().sign(&PaymentOk {
            h_contract_terms: h,
        });
        let r = shop
            .post(
                &format!("orders/{id}/paid"),
                &json!({"sig": forged, "h_contract": h, "session_id": "s2"}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].clone()),
            (403, json!(2201)),
            "{}",
            r.body
        );
        // A confirmation of another contract (our signature, but not this order's hash).
        let other: HashCode = random_hash().parse().unwrap();
        let r = shop.paid(&id, &other, "s2").await;
        assert_eq!(
            (r.status, r.body["code"].clone()),
            (400, json!(2200)),
            "{}",
            r.body
        );
        let r = shop.paid("no-such-order", &h, "s2").await;
        assert_eq!(r.status, 404, "{}", r.body);
        // Nothing changed: s2 still sees a claimed order.
        let r = shop
            .get(&format!("private/orders/{id}?session_id=s2"))
            .await;
        assert_eq!(r.body["order_status"], "claimed", "{}", r.body);
        // A replay of the right proof is fine, again and again.
        for _ in 0..2 {
            assert_eq!(shop.paid(&id, &h, "s2").await.status, 200);
        }
    }
);

engine_test!(
    /// A long poll waits on the order's notifications: it answers as soon as the order is paid
    /// (long before its timeout), and with the unchanged state when the timeout passes.
    async fn long_polls_wake_on_payment_and_time_out_otherwise(engine: Engine) {
        let shop = shop(engine).await;
        let (id, token) = shop.create_order("o-poll", Some(FULFILLMENT), true).await;
        let token = token.unwrap();

        let started = Instant::now();
        let r = shop
            .get(&format!("private/orders/{id}?session_id=s1&timeout_ms=300"))
            .await;
        assert_eq!(r.body["order_status"], "unpaid", "{}", r.body);
        assert!(started.elapsed() >= Duration::from_millis(300));

        let h = shop.claimed(&id, Some(&token)).await;
        let notifier = shop.env.app.merchant().store().notifier().clone();
        let before = notifier.subscriber_count();
        let private = {
            let http = shop.http.clone();
            let url = shop.url(&format!(
                "private/orders/{id}?session_id=s1&timeout_ms=50000"
            ));
            tokio::spawn(async move { Answer::of(http.get(url).send().await.unwrap()).await })
        };
        let public = {
            let http = shop.http.clone();
            let url = shop.url(&format!(
                "orders/{id}?h_contract={h}&session_id=s1&timeout_ms=50000"
            ));
            tokio::spawn(async move { Answer::of(http.get(url).send().await.unwrap()).await })
        };
        // Both wait (subscribed: the order, and the session of each).
        cardcash_testkit::wait_until(Duration::from_secs(20), || {
            let n = notifier.subscriber_count();
            async move { n >= before + 4 }
        })
        .await;
        let paid_at = Instant::now();
        shop.mark_paid(&id, "s1").await;
        let private = private.await.unwrap();
        let public = public.await.unwrap();
        assert!(
            paid_at.elapsed() < Duration::from_secs(40),
            "woken by the payment"
        );
        assert_eq!(private.body["order_status"], "paid", "{}", private.body);
        assert_eq!(public.status, 200, "{}", public.body);

        // A repurchase in the session wakes a poll on the new order too.
        let (second, token2) = shop.create_order("o-poll-2", Some(FULFILLMENT), true).await;
        let before = notifier.subscriber_count();
        let poll = {
            let http = shop.http.clone();
            let url = shop.url(&format!(
                "orders/{second}?token={}&session_id=s2&timeout_ms=50000",
                token2.unwrap()
            ));
            tokio::spawn(async move { Answer::of(http.get(url).send().await.unwrap()).await })
        };
        cardcash_testkit::wait_until(Duration::from_secs(20), || {
            let n = notifier.subscriber_count();
            async move { n >= before + 2 }
        })
        .await;
        let rebound_at = Instant::now();
        assert_eq!(shop.paid(&id, &h, "s2").await.status, 200);
        let poll = poll.await.unwrap();
        assert!(rebound_at.elapsed() < Duration::from_secs(40));
        assert_eq!(poll.status, 402, "{}", poll.body);
        assert_eq!(poll.body["already_paid_order_id"], id);
    }
);

engine_test!(
    /// The order page for browsers: summary, amount, the QR code of the `taler://pay` URI and
    /// a link to it, no JavaScript; paid in the session, it sends the browser on.
    async fn the_html_page_shows_the_qr_code_and_redirects_once_paid(engine: Engine) {
        let shop = shop(engine).await;
        let (id, token) = shop.create_order("o-html", Some(FULFILLMENT), true).await;
        let token = token.unwrap();
        let page = shop
            .get_html(&format!("orders/{id}?token={token}&session_id=s9"))
            .await;
        assert_eq!(page.status, 402);
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = page.text();
        let base = shop.env.base.trim_start_matches("http://");
        let uri = format!("taler+http://pay/{base}{id}/s9?c={token}");
        assert!(html.contains(&format!("href=\"{uri}\"")), "{html}");
        assert!(html.contains("<svg"), "the QR code is inline");
        assert!(html.contains("Beethoven Sonatas"));
        assert!(html.contains(&format!("{CURRENCY}:5")));
        assert!(html.contains("Pretty Pianos"));
        assert!(!html.contains("<script"));
        // A browser without credentials is sent to the reorder page.
        let page = shop.get_html(&format!("orders/{id}")).await;
        assert_eq!(page.status, 302);
        assert_eq!(page.headers["location"], REORDER);

        shop.claimed(&id, Some(&token)).await;
        shop.mark_paid(&id, "s9").await;
        let page = shop
            .get_html(&format!("orders/{id}?token={token}&session_id=s9"))
            .await;
        assert_eq!(page.status, 302);
        assert_eq!(page.headers["location"], FULFILLMENT);
    }
);

fn fake_deposit(with_fee: &str, fee: &str) -> cardcash_merchant::db::payments::NewDeposit {
    use cardcash_util::EddsaSignature;
    let bytes = |n: usize| cardcash_crypto::random_bytes::<64>().unwrap()[..n].to_vec();
    cardcash_merchant::db::payments::NewDeposit {
        coin_pub: EddsaPrivateKey::generate().unwrap().public(),
        coin_sig: EddsaSignature::from_slice(&bytes(64)).unwrap(),
        exchange_url: "https://exchange.example/".into(),
        h_denom: HashCode::from_slice(&bytes(64)).unwrap(),
        amount_with_fee: format!("{CURRENCY}:{with_fee}").parse().unwrap(),
        deposit_fee: format!("{CURRENCY}:{fee}").parse().unwrap(),
        refund_fee: format!("{CURRENCY}:0.01").parse().unwrap(),
        exchange_pub: EddsaPrivateKey::generate().unwrap().public(),
        exchange_sig: EddsaSignature::from_slice(&bytes(64)).unwrap(),
        exchange_timestamp: Timestamp::now(),
    }
}

engine_test!(
    /// Refunds in the status: the private view (refunded, pending, details, what the exchange
    /// pays), the wallet's long polls for a refund (`refund=`) and for its pickup
    /// (`await_refund_obtained`), `/paid` telling the wallet, and a refunded order no longer
    /// counting as a repurchase unless asked.
    async fn refunds_show_in_the_status_and_end_long_polls(engine: Engine) {
        use cardcash_merchant::db::payments::{GrantRefund, RefundOutcome};
        let shop = shop(engine).await;
        let (id, token) = shop.create_order("o-refund", Some(FULFILLMENT), true).await;
        let h = shop.claimed(&id, token.as_deref()).await;
        let store = shop.env.app.merchant().store();
        let instance = store.instance(DEFAULT_INSTANCE).await.unwrap().unwrap();
        let order = store
            .pay_order(instance.serial, &id)
            .await
            .unwrap()
            .unwrap();
        store
            .record_payment(
                order.serial,
                vec![fake_deposit("4", "0.02"), fake_deposit("1", "0.01")],
                Some(PaidMark {
                    instance_serial: instance.serial,
                    order_id: id.clone(),
                    session_id: "s1".into(),
                    paid_at: Timestamp::now(),
                }),
            )
            .await
            .unwrap();
        let r = shop.get(&format!("private/orders/{id}")).await;
        assert_eq!(r.body["order_status"], "paid", "{}", r.body);
        assert_eq!(r.body["deposit_total"], format!("{CURRENCY}:4.97"));
        assert_eq!(r.body["refunded"], false);

        // A wallet waits for a refund above zero.
        let notifier = store.notifier().clone();
        let before = notifier.subscriber_count();
        let poll = {
            let request = shop.http.get(shop.url(&format!(
                "orders/{id}?h_contract={h}&refund={CURRENCY}:0&timeout_ms=50000"
            )));
            tokio::spawn(async move { Answer::of(request.send().await.unwrap()).await })
        };
        cardcash_testkit::wait_until(Duration::from_secs(20), || {
            let n = notifier.subscriber_count();
            async move { n > before }
        })
        .await;
        let granted_at = Instant::now();
        let granted = store
            .grant_refund(
                &order,
                format!("{CURRENCY}:2").parse().unwrap(),
                "scratched cover",
                Timestamp::now(),
            )
            .await
            .unwrap();
        assert!(
            matches!(granted, GrantRefund::Granted { .. }),
            "{granted:?}"
        );
        let poll = poll.await.unwrap();
        assert!(granted_at.elapsed() < Duration::from_secs(40));
        assert_eq!(poll.status, 200, "{}", poll.body);
        assert_eq!(poll.body["refunded"], true);
        assert_eq!(poll.body["refund_pending"], true);
        assert_eq!(poll.body["refund_amount"], format!("{CURRENCY}:2"));
        assert_eq!(poll.body["refund_taken"], format!("{CURRENCY}:0"));

        let r = shop
            .get(&format!("private/orders/{id}?session_id=s1"))
            .await;
        assert_eq!(r.body["order_status"], "paid", "{}", r.body);
        assert_eq!(r.body["refunded"], true);
        assert_eq!(r.body["refund_pending"], true);
        assert_eq!(r.body["refund_amount"], format!("{CURRENCY}:2"));
        let details = r.body["refund_details"].as_array().unwrap();
        assert_eq!(
            details.len(),
            1,
            "one grant, however many coins: {}",
            r.body
        );
        assert_eq!(details[0]["reason"], "scratched cover");
        assert_eq!(details[0]["amount"], format!("{CURRENCY}:2"));
        assert_eq!(details[0]["pending"], true);

        // The wallet waits until its refund is picked up.
        let before = notifier.subscriber_count();
        let poll = {
            let request = shop.http.get(shop.url(&format!(
                "orders/{id}?h_contract={h}&await_refund_obtained=yes&timeout_ms=50000"
            )));
            tokio::spawn(async move { Answer::of(request.send().await.unwrap()).await })
        };
        cardcash_testkit::wait_until(Duration::from_secs(20), || {
            let n = notifier.subscriber_count();
            async move { n > before }
        })
        .await;
        let outcomes = store
            .refunds(order.serial)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.serial,
                    RefundOutcome::Confirmed {
                        exchange_pub: EddsaPrivateKey::generate().unwrap().public(),
                        exchange_sig: shop.key.sign(&PaymentOk {
                            h_contract_terms: h,
                        }),
                    },
                )
            })
            .collect();
        let obtained_at = Instant::now();
        store
            .store_refund_outcomes(&order, outcomes, true)
            .await
            .unwrap();
        let poll = poll.await.unwrap();
        assert!(obtained_at.elapsed() < Duration::from_secs(40));
        assert_eq!(poll.status, 200, "{}", poll.body);
        assert_eq!(poll.body["refund_pending"], false, "{}", poll.body);
        assert_eq!(poll.body["refund_taken"], format!("{CURRENCY}:2"));

        // /paid tells a wallet replaying the payment that it was refunded.
        let r = shop.paid(&id, &h, "s2").await;
        assert_eq!(r.body, json!({"refunded": true}));
        // A refunded purchase is not a repurchase, unless the storefront says it is.
        let (second, _) = shop
            .create_order("o-refund-2", Some(FULFILLMENT), true)
            .await;
        let r = shop
            .get(&format!("private/orders/{second}?session_id=s2"))
            .await;
        assert!(r.body.get("already_paid_order_id").is_none(), "{}", r.body);
        let r = shop
            .get(&format!(
                "private/orders/{second}?session_id=s2&allow_refunded_for_repurchase=YES"
            ))
            .await;
        assert_eq!(r.body["already_paid_order_id"], id, "{}", r.body);
    }
);
