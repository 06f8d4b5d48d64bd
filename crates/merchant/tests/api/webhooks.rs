//! Webhooks and the order event stream: CRUD of `/private/webhooks`, signed deliveries of the
//! events the `orders` triggers capture, retries with growing delays, and the SSE stream
//! `/private/orders/events` resumed with `Last-Event-ID` (no loss, no duplicates). A tiny axum
//! receiver records what the merchant sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use cardcash_merchant::webhooks::verify_signature;
use cardcash_store::Database;
use cardcash_testkit::{Engine, engine_test};
use cardcash_util::ErrorCode;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{CURRENCY, Env};

/// Longest wait for anything asynchronous (a generous bound, never a pause).
const PATIENCE: Duration = Duration::from_secs(30);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Whether the signature headers sign the body with `secret`.
    fn signed_by(&self, secret: &str) -> bool {
        let ts: u64 = self.header("Taler-Webhook-Timestamp").parse().unwrap();
        verify_signature(
            secret,
            ts,
            &self.body,
            self.header("Taler-Webhook-Signature"),
        )
    }
}

#[derive(Clone)]
struct ReceiverState {
    seen: Arc<std::sync::Mutex<Vec<Received>>>,
    count: Arc<watch::Sender<usize>>,
    fail_first: Arc<AtomicUsize>,
}

/// A webhook receiver on 127.0.0.1: answers 500 to its first `fail_first` requests, 204 after.
struct Receiver {
    url: String,
    state: ReceiverState,
    _server: tokio::task::JoinHandle<()>,
}

async fn receive(State(s): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let fail = s
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let n = {
        let mut seen = s.seen.lock().unwrap();
        seen.push(Received {
            at: Instant::now(),
            headers,
            body,
        });
        seen.len()
    };
    s.count.send_replace(n);
    if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let state = ReceiverState {
            seen: Arc::default(),
            count: Arc::new(watch::channel(0).0),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
        };
        let app = Router::new()
            .route("/hook", axum::routing::any(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url,
            state,
            _server: server,
        }
    }

    /// Waits until at least `n` requests arrived; returns all so far.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let mut rx = self.state.count.subscribe();
        tokio::time::timeout(PATIENCE, rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} deliveries expected, got {}", self.seen().len()))
            .unwrap();
        self.seen()
    }

    fn seen(&self) -> Vec<Received> {
        self.state.seen.lock().unwrap().clone()
    }
}

async fn post(env: &Env, path: &str, body: &Value) -> (u16, Value) {
    let r = env
        .http
        .post(format!("{}{path}", env.base))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn send(
    env: &Env,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut r = env.http.request(method, format!("{}{path}", env.base));
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A backend whose default instance (external auth) exists, with `adjust` applied.
async fn env_with(
    engine: Engine,
    adjust: impl FnOnce(&mut cardcash_merchant::MerchantConfig),
) -> Env {
    let env = Env::with(engine, adjust).await;
    crate::orders::add_instance(
        &env,
        cardcash_merchant::config::DEFAULT_INSTANCE,
        Some(crate::orders::PAYTO),
    )
    .await;
    env
}

/// Registers a webhook; returns its secret.
async fn add_webhook(env: &Env, id: &str, event_type: &str, url: &str, extra: Value) -> String {
    let mut body = json!({"webhook_id": id, "event_type": event_type, "url": url,
        "http_method": "POST"});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let (status, answer) = post(env, "private/webhooks", &body).await;
    assert_eq!(status, 200, "{answer}");
    answer["secret"].as_str().unwrap().to_owned()
}

async fn create_order(env: &Env, summary: &str, amount: &str) -> String {
    let (status, body) = post(
        env,
        "private/orders",
        &json!({"order": {"summary": summary, "amount": format!("{CURRENCY}:{amount}")}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["order_id"].as_str().unwrap().to_owned()
}

/// TEST-ONLY SQL on the merchant's database (a stand-in for the payment, refund and settlement
/// code, so that the triggers are exercised on their own): `sqlite` or `postgres` by engine.
async fn test_sql(env: &Env, sqlite: &str, postgres: &str) {
    match env.app.merchant().store().database() {
        Database::Sqlite(db) => {
            let sql = sqlite.to_owned();
            db.write(move |tx| {
                tx.execute_batch(&sql)?;
                Ok(())
            })
            .await
            .unwrap();
        }
        Database::Postgres(db) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(postgres.to_owned()))
                .execute(db.pool())
                .await
                .unwrap();
        }
    }
}

/// `(state, attempts)` of every delivery, by serial (test-only SQL).
async fn deliveries(env: &Env) -> Vec<(String, i64)> {
    const SQL: &str = "SELECT state, attempts FROM webhook_deliveries ORDER BY delivery_serial";
    match env.app.merchant().store().database() {
        Database::Sqlite(db) => db
            .read(|conn| {
                cardcash_store::query_all(conn, SQL, [], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
            })
            .unwrap(),
        Database::Postgres(db) => {
            use sqlx::Row;
            sqlx::query(SQL)
                .fetch_all(db.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r.get::<String, _>("state"),
                        i64::from(r.get::<i32, _>("attempts")),
                    )
                })
                .collect()
        }
    }
}

/// Waits until the deliveries satisfy `done` (they are recorded after the receiver answered).
async fn wait_deliveries(env: &Env, done: impl Fn(&[(String, i64)]) -> bool) -> Vec<(String, i64)> {
    let start = Instant::now();
    let mut sub = env
        .app
        .merchant()
        .store()
        .notifier()
        .subscribe_topic(cardcash_merchant::db::webhooks::TOPIC_DELIVERY);
    loop {
        let now = deliveries(env).await;
        if done(&now) {
            return now;
        }
        assert!(start.elapsed() < PATIENCE, "deliveries stayed {now:?}");
        // Recording an outcome notifies nobody: look again on any delivery news or shortly.
        sub.wait(Duration::from_millis(50)).await;
    }
}

engine_test!(
    /// POST (secret shown once; replay 204; another webhook under the id 409), GET list and
    /// one (never the secret), PATCH, DELETE, unknown 404; bad settings 400.
    async fn webhooks_are_created_listed_changed_and_deleted(engine: Engine) {
        let env = env_with(engine, |_| {}).await;
        let hook = json!({"webhook_id": "paid", "event_type": "pay",
            "url": "https://shop.example/hooks/paid", "http_method": "POST",
            "body_template": "{\"order\":\"{{order_id}}\"}"});
        let (status, created) = post(&env, "private/webhooks", &hook).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["webhook_id"], "paid");
        let secret = created["secret"].as_str().unwrap();
        assert!(
            secret.starts_with("whsec_") && secret.len() == 6 + 64,
            "{secret}"
        );
        let (status, _) = post(&env, "private/webhooks", &hook).await;
        assert_eq!(status, 204, "an identical replay");
        let mut other = hook.clone();
        other["url"] = json!("https://elsewhere.example/");
        let (status, body) = post(&env, "private/webhooks", &other).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(
            body["code"],
            ErrorCode::MerchantPrivatePostWebhooksConflictWebhookExists.code()
        );
        // A secret of our own, then bad settings.
        let mut given = hook.clone();
        given["webhook_id"] = json!("refunds");
        given["event_type"] = json!("refund");
        given["secret"] = json!("my-own-secret-0123456789");
        let (status, body) = post(&env, "private/webhooks", &given).await;
        assert_eq!(
            (status, &body["secret"]),
            (200, &json!("my-own-secret-0123456789"))
        );
        for (field, value) in [
            ("event_type", json!("order_paid")),
            ("url", json!("ftp://x.example/")),
            ("http_method", json!("BREW")),
            ("secret", json!("short")),
        ] {
            let mut bad = hook.clone();
            bad["webhook_id"] = json!("bad");
            bad[field] = value;
            let (status, body) = post(&env, "private/webhooks", &bad).await;
            assert_eq!(status, 400, "{field}: {body}");
        }

        let (status, list) = env.get("private/webhooks").await;
        assert_eq!(status, 200);
        assert_eq!(
            list,
            json!({"webhooks": [{"webhook_id": "paid", "event_type": "pay"},
                                {"webhook_id": "refunds", "event_type": "refund"}]})
        );
        let (status, one) = env.get("private/webhooks/paid").await;
        assert_eq!(status, 200);
        assert_eq!(
            one,
            json!({"event_type": "pay", "url": "https://shop.example/hooks/paid",
                   "http_method": "POST", "body_template": "{\"order\":\"{{order_id}}\"}"})
        );
        let patch = json!({"event_type": "order_settled", "url": "https://shop.example/settled",
            "http_method": "PUT"});
        let (status, _) = send(
            &env,
            reqwest::Method::PATCH,
            "private/webhooks/paid",
            Some(&patch),
        )
        .await;
        assert_eq!(status, 204);
        let (_, one) = env.get("private/webhooks/paid").await;
        assert_eq!(one, patch);
        let (status, _) = send(
            &env,
            reqwest::Method::PATCH,
            "private/webhooks/nope",
            Some(&patch),
        )
        .await;
        assert_eq!(status, 404);

        let (status, _) = send(&env, reqwest::Method::DELETE, "private/webhooks/paid", None).await;
        assert_eq!(status, 204);
        let (status, body) = env.get("private/webhooks/paid").await;
        assert_eq!(status, 404);
        assert_eq!(
            body["code"],
            ErrorCode::MerchantGenericWebhookUnknown.code()
        );
        let (status, _) = send(&env, reqwest::Method::DELETE, "private/webhooks/paid", None).await;
        assert_eq!(status, 404);
        env.app.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Creating an order fires order_created once to the webhook of that event (not to a
    /// webhook of another event), signed with the webhook's secret, with the event id header.
    async fn creating_an_order_fires_a_signed_order_created(engine: Engine) {
        let env = env_with(engine, |_| {}).await;
        let receiver = Receiver::start(0).await;
        let other = Receiver::start(0).await;
        // A template header may not forge ours.
        let forging = json!({"header_template": "Taler-Webhook-Signature: v1=00\nX-Extra: 1"});
        let secret = add_webhook(&env, "created", "order_created", &receiver.url, forging).await;
        add_webhook(&env, "paid", "pay", &other.url, json!({})).await;
        let order_id = create_order(&env, "Beethoven Sonatas", "1.5").await;

        let got = receiver.wait_for(1).await;
        let d = &got[0];
        assert!(d.signed_by(&secret), "signature {:?}", d.headers);
        assert_eq!(
            d.headers.get_all("Taler-Webhook-Signature").iter().count(),
            1
        );
        assert_eq!(d.header("X-Extra"), "1");
        assert!(!d.signed_by("whsec_someone_else_0000"));
        assert_eq!(d.header("Taler-Webhook-Event-Type"), "order_created");
        assert_eq!(d.header("content-type"), "application/json");
        let event = d.json();
        assert_eq!(event["event_type"], "order_created");
        assert_eq!(event["order_id"], json!(order_id));
        assert_eq!(event["instance"], "default");
        assert_eq!(event["summary"], "Beethoven Sonatas");
        assert_eq!(event["amount"], format!("{CURRENCY}:1.5"));
        assert_eq!(
            d.header("Taler-Webhook-Event-Id"),
            event["event_id"].to_string()
        );
        // Delivered once, and recorded so.
        wait_deliveries(&env, |d| d == [("delivered".to_owned(), 1)]).await;
        assert_eq!(receiver.seen().len(), 1);
        assert!(other.seen().is_empty());
        env.app.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A receiver failing twice gets the same event three times, the pauses at least the
    /// configured base delay and then twice it; the 2xx ends the delivery.
    async fn a_failing_receiver_gets_retries_with_growing_delays(engine: Engine) {
        let base = Duration::from_millis(300);
        let env = env_with(engine, |c| {
            c.webhook_retry_delay = cardcash_util::RelativeTime::from_duration(base);
        })
        .await;
        let receiver = Receiver::start(2).await;
        let secret = add_webhook(&env, "created", "order_created", &receiver.url, json!({})).await;
        create_order(&env, "Sonatas", "2").await;
        let got = receiver.wait_for(3).await;
        let ids: Vec<_> = got
            .iter()
            .map(|d| d.header("Taler-Webhook-Event-Id").to_owned())
            .collect();
        assert!(ids.iter().all(|i| *i == ids[0] && !i.is_empty()), "{ids:?}");
        assert!(got.iter().all(|d| d.signed_by(&secret)));
        assert!(got.iter().all(|d| d.json() == got[0].json()));
        let first = got[1].at - got[0].at;
        let second = got[2].at - got[1].at;
        assert!(first >= base, "first pause {first:?}");
        assert!(second >= 2 * base, "second pause {second:?}");
        wait_deliveries(&env, |d| d == [("delivered".to_owned(), 3)]).await;
        assert_eq!(receiver.seen().len(), 3);
        env.app.shutdown().await.unwrap();
    }
);

engine_test!(
    /// pay, refund (what it added and the total) and order_settled are captured whoever
    /// changes the order: here TEST-ONLY SQL stands in for the payment, refund and settlement
    /// code. Templates are filled in; each change is delivered exactly once; a refund that
    /// does not raise the total is no event.
    async fn pay_refund_and_settlement_fire_their_webhooks(engine: Engine) {
        let env = env_with(engine, |_| {}).await;
        let receiver = Receiver::start(0).await;
        let template = json!({
            "header_template": "X-Shop: pianos\nX-Order: {{order_id}}",
            "body_template": "{{event_type}} {{order_id}} {{amount}} +{{refund_amount}} ={{refund_total}} ({{reason}})",
        });
        for event in ["pay", "refund", "order_settled"] {
            add_webhook(&env, event, event, &receiver.url, template.clone()).await;
        }
        let id = create_order(&env, "Piano", "10").await;
        let (sqlite_claim, pg_claim) = (
            "nonce = zeroblob(32), h_contract_terms = zeroblob(64)",
            "nonce = decode(repeat('00', 32), 'hex'), h_contract_terms = decode(repeat('00', 64), 'hex')",
        );
        test_sql(
            &env,
            &format!(
                "UPDATE orders SET {sqlite_claim}, paid = 1, paid_at = 1 WHERE order_id = '{id}'"
            ),
            &format!("UPDATE orders SET {pg_claim}, paid = 1, paid_at = 1 WHERE order_id = '{id}'"),
        )
        .await;
        let got = receiver.wait_for(1).await;
        assert_eq!(
            String::from_utf8_lossy(&got[0].body),
            format!("pay {id} {CURRENCY}:10 + = ()")
        );
        assert_eq!(got[0].header("X-Shop"), "pianos");
        assert_eq!(got[0].header("X-Order"), id);
        assert_eq!(got[0].header("content-type"), "");

        let refund = |val: i64, frac: i64| {
            format!(
                "INSERT INTO refunds (order_serial, rtransaction_id, coin_pub, amount_val, \
                 amount_frac, reason, granted_at) SELECT order_serial, {val}{frac}, {coin}, 0, 1, \
                 'scratched', 1 FROM orders WHERE order_id = '{id}'; \
                 UPDATE orders SET refund_val = {val}, refund_frac = {frac} WHERE order_id = '{id}';",
                coin = "{COIN}"
            )
        };
        for (val, frac) in [(0, 50_000_000), (2, 0)] {
            let sql = refund(val, frac);
            test_sql(
                &env,
                &sql.replace("{COIN}", "zeroblob(32)"),
                &sql.replace("{COIN}", "decode(repeat('00', 32), 'hex')"),
            )
            .await;
        }
        // Not more than before: no event.
        test_sql(
            &env,
            &format!("UPDATE orders SET refund_val = 1 WHERE order_id = '{id}'"),
            &format!("UPDATE orders SET refund_val = 1 WHERE order_id = '{id}'"),
        )
        .await;
        test_sql(
            &env,
            &format!("UPDATE orders SET wired = 1 WHERE order_id = '{id}'"),
            &format!("UPDATE orders SET wired = 1 WHERE order_id = '{id}'"),
        )
        .await;
        let mut got = receiver.wait_for(4).await;
        // Deliveries run concurrently: the event id orders them.
        got.sort_by_key(|d| d.header("Taler-Webhook-Event-Id").parse::<u64>().unwrap());
        let bodies: Vec<_> = got
            .iter()
            .map(|d| String::from_utf8_lossy(&d.body).into_owned())
            .collect();
        assert_eq!(
            bodies,
            [
                format!("pay {id} {CURRENCY}:10 + = ()"),
                format!("refund {id} {CURRENCY}:10 +{CURRENCY}:0.5 ={CURRENCY}:0.5 (scratched)"),
                format!("refund {id} {CURRENCY}:10 +{CURRENCY}:1.5 ={CURRENCY}:2 (scratched)"),
                format!("order_settled {id} {CURRENCY}:10 + = ()"),
            ]
        );
        wait_deliveries(&env, |d| {
            d.len() == 4 && d.iter().all(|(s, _)| s == "delivered")
        })
        .await;
        assert_eq!(receiver.seen().len(), 4);
        env.app.shutdown().await.unwrap();
    }
);

/// A Server-Sent Events reader.
struct SseReader {
    response: reqwest::Response,
    text: String,
}

/// `(id, event, data)` of one event.
type SseEvent = (i64, String, Value);

impl SseReader {
    async fn open(env: &Env, query: &str, last_event_id: Option<i64>) -> SseReader {
        let mut r = env
            .http
            .get(format!("{}private/orders/events{query}", env.base));
        if let Some(id) = last_event_id {
            r = r.header("Last-Event-ID", id.to_string());
        }
        let response = r.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseReader {
            response,
            text: String::new(),
        }
    }

    /// The next event (comments skipped).
    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if let Some(id) = id {
                    return (id, event, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream stays open");
            self.text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

engine_test!(
    /// The stream starts now, sends each event once in order with its id, and a client that
    /// reconnects with Last-Event-ID (or ?since=) gets exactly the events after it, including
    /// those made while it was away. `/private/orders/events` is not taken for an order id.
    async fn the_event_stream_resumes_after_last_event_id(engine: Engine) {
        let env = env_with(engine, |_| {}).await;
        let before = create_order(&env, "before the stream", "1").await;
        // A stream from the start shows it (so it is sequenced: a stream from now on will not).
        let mut all = SseReader::open(&env, "?since=0", None).await;
        assert_eq!(all.next().await.2["order_id"], json!(before));
        drop(all);
        let mut sse = SseReader::open(&env, "", None).await;
        let a = create_order(&env, "a", "1").await;
        let b = create_order(&env, "b", "2").await;
        let first = sse.next().await;
        let second = sse.next().await;
        assert_eq!(
            (first.1.as_str(), &first.2["order_id"]),
            ("order_created", &json!(a))
        );
        assert_eq!(first.2["event_id"], json!(first.0));
        assert_eq!(
            (second.1.as_str(), &second.2["order_id"]),
            ("order_created", &json!(b))
        );
        assert!(second.0 > first.0);
        drop(sse);
        // Away: two more orders, one paid (TEST-ONLY SQL standing in for the payment).
        let c = create_order(&env, "c", "3").await;
        let d = create_order(&env, "d", "4").await;
        test_sql(
            &env,
            &format!("UPDATE orders SET nonce = zeroblob(32), h_contract_terms = zeroblob(64), paid = 1 WHERE order_id = '{c}'"),
            &format!("UPDATE orders SET nonce = decode(repeat('00', 32), 'hex'), h_contract_terms = decode(repeat('00', 64), 'hex'), paid = 1 WHERE order_id = '{c}'"),
        )
        .await;
        let mut sse = SseReader::open(&env, "", Some(first.0)).await;
        let mut resumed = Vec::new();
        for _ in 0..4 {
            resumed.push(sse.next().await);
        }
        let seen: Vec<_> = resumed
            .iter()
            .map(|(_, e, data)| (e.clone(), data["order_id"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            seen,
            [
                ("order_created".to_owned(), b.clone()),
                ("order_created".to_owned(), c.clone()),
                ("order_created".to_owned(), d.clone()),
                ("pay".to_owned(), c.clone()),
            ]
        );
        assert_eq!(resumed[0], second);
        assert!(resumed.windows(2).all(|w| w[0].0 < w[1].0));
        // ?since= does the same.
        let mut since = SseReader::open(&env, &format!("?since={}", resumed[2].0), None).await;
        assert_eq!(since.next().await, resumed[3]);
        // The order routes still answer for real order ids.
        let (status, body) = env.get(&format!("private/orders/{d}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["order_status"], "unpaid");
        drop(sse);
        // Shutdown ends an open stream instead of waiting for it.
        let shutdown = tokio::time::timeout(PATIENCE, env.app.shutdown());
        shutdown
            .await
            .expect("shutdown with an open stream")
            .unwrap();
        drop(since);
    }
);

engine_test!(
    /// With the real payment and refund code (coins of the world's exchange): the payment
    /// fires `pay` once (its session), a refund grant `refund` with what it added, a lower grant
    /// nothing; the stream shows the same events in order.
    async fn a_real_payment_and_refund_fire_pay_and_refund(engine: Engine) {
        use crate::payments::{kudos, pay_world};
        let w = pay_world(engine).await;
        let receiver = Receiver::start(0).await;
        for event in ["pay", "refund"] {
            let (status, body) = post(
                &w.env,
                "private/webhooks",
                &json!({"webhook_id": event, "event_type": event, "url": receiver.url,
                        "http_method": "POST", "secret": "a-shared-secret-for-tests"}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
        let mut sse = SseReader::open(&w.env, "", None).await;
        let coins = cardcash_testkit::coins::withdraw(&w.world, &[kudos("5")]).await;
        let order = w.claimed_order("4.99", json!({}), Some(3600)).await;
        let paid = w.pay(&order, &[(&coins[0], kudos("5"))]).await;
        assert_eq!(paid.status, 200, "{:?}", paid.body);
        let got = receiver.wait_for(1).await;
        assert!(got[0].signed_by("a-shared-secret-for-tests"));
        let event = got[0].json();
        assert_eq!(
            (
                &event["event_type"],
                &event["order_id"],
                &event["amount"],
                &event["session_id"]
            ),
            (
                &json!("pay"),
                &json!(order.order_id),
                &json!(format!("{CURRENCY}:4.99")),
                &json!("session-1")
            )
        );
        let id = &order.order_id;
        let grant = |a: &str| json!({"refund": format!("{CURRENCY}:{a}"), "reason": "scratched"});
        for amount in ["1", "0.5", "1.5"] {
            let r = w
                .post(&format!("private/orders/{id}/refund"), &grant(amount))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
        let mut got = receiver.wait_for(3).await;
        got.sort_by_key(|d| d.header("Taler-Webhook-Event-Id").parse::<u64>().unwrap());
        let refunds: Vec<_> = got[1..]
            .iter()
            .map(|d| {
                let e = d.json();
                (
                    e["refund_amount"].clone(),
                    e["refund_total"].clone(),
                    e["reason"].clone(),
                )
            })
            .collect();
        let k = |s: &str| json!(format!("{CURRENCY}:{s}"));
        assert_eq!(
            refunds,
            [
                (k("1"), k("1"), json!("scratched")),
                (k("0.5"), k("1.5"), json!("scratched")),
            ]
        );
        // The stream: created, pay, refund, refund — each once.
        let mut kinds = Vec::new();
        for _ in 0..4 {
            let (_, kind, data) = sse.next().await;
            assert_eq!(data["order_id"], json!(id));
            kinds.push(kind);
        }
        assert_eq!(kinds, ["order_created", "pay", "refund", "refund"]);
        drop(sse);
        assert_eq!(receiver.seen().len(), 3);
        w.shutdown().await;
    }
);

engine_test!(
    /// Each instance streams its own events only, and the stream and the webhooks need the
    /// instance's credentials (401 without).
    async fn streams_are_per_instance_and_need_credentials(engine: Engine) {
        let env = env_with(engine, |_| {}).await;
        let (status, body) = post(
            &env,
            "management/instances",
            &json!({"id": "shop2", "name": "Shop 2",
                    "auth": {"method": "token", "password": "pw-of-shop2"},
                    "address": {}, "jurisdiction": {}, "use_stefan": true,
                    "default_pay_delay": {"d_us": 3_600_000_000u64},
                    "default_refund_delay": {"d_us": 0},
                    "default_wire_transfer_delay": {"d_us": 3_600_000_000u64}}),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        let bearer = "Bearer secret-token:pw-of-shop2";
        let authed = |method: reqwest::Method, path: &str| {
            env.http
                .request(method, format!("{}instances/shop2/{path}", env.base))
                .header("Authorization", bearer)
        };
        for path in ["private/orders/events", "private/webhooks"] {
            let r = env
                .http
                .get(format!("{}instances/shop2/{path}", env.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{path}");
        }
        let r = authed(reqwest::Method::POST, "private/accounts")
            .json(&json!({"payto_uri": crate::orders::PAYTO}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let mine = create_order(&env, "default's", "1").await;
        let r = authed(reqwest::Method::POST, "private/orders")
            .json(&json!({"order": {"summary": "shop2's", "amount": format!("{CURRENCY}:2")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let theirs = r.json::<Value>().await.unwrap()["order_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let response = authed(reqwest::Method::GET, "private/orders/events?since=0")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut shop2 = SseReader {
            response,
            text: String::new(),
        };
        let event = shop2.next().await;
        assert_eq!(
            (&event.2["order_id"], &event.2["instance"]),
            (&json!(theirs), &json!("shop2"))
        );
        let mut default = SseReader::open(&env, "?since=0", None).await;
        let event = default.next().await;
        assert_eq!(
            (&event.2["order_id"], &event.2["instance"]),
            (&json!(mine), &json!("default"))
        );
        // Nothing else in either: a later order of each comes next.
        let mine2 = create_order(&env, "default's second", "1").await;
        assert_eq!(default.next().await.2["order_id"], json!(mine2));
        drop((shop2, default));
        env.app.shutdown().await.unwrap();
    }
);

engine_test!(
    /// 24 orders created concurrently: a stream open before them shows each creation exactly
    /// once, ids strictly increasing, and a stream resumed in the middle continues without a
    /// gap or a repeat.
    async fn concurrent_orders_stream_once_each_in_order(engine: Engine) {
        let env = env_with(engine, |_| {}).await;
        let mut sse = SseReader::open(&env, "", None).await;
        let created: Vec<String> = futures_util::future::join_all((0..24).map(|i| {
            let env = &env;
            async move { create_order(env, &format!("order {i}"), "1").await }
        }))
        .await;
        let mut events = Vec::new();
        for _ in 0..24 {
            events.push(sse.next().await);
        }
        assert!(events.windows(2).all(|w| w[0].0 < w[1].0));
        let mut seen: Vec<_> = events
            .iter()
            .map(|e| e.2["order_id"].as_str().unwrap().to_owned())
            .collect();
        seen.sort();
        let mut expected = created.clone();
        expected.sort();
        assert_eq!(seen, expected);
        let mut resumed = SseReader::open(&env, "", Some(events[9].0)).await;
        for e in &events[10..] {
            assert_eq!(&resumed.next().await, e);
        }
        drop((sse, resumed));
        env.app.shutdown().await.unwrap();
    }
);

engine_test!(
    /// Pruning deletes old events no pending delivery needs, never the newest (the numbering
    /// goes on after it) and never one a delivery still waits for.
    async fn pruning_keeps_the_newest_event_and_pending_deliveries(engine: Engine) {
        let env = env_with(engine, |c| {
            c.webhook_retry_delay = cardcash_util::RelativeTime::from_secs(3600);
        })
        .await;
        let a = create_order(&env, "a", "1").await;
        // a's event is numbered (and matched against the webhooks) before the webhook exists:
        // on PostgreSQL the sequencer may number it later, and a would then get a delivery too.
        let mut first = SseReader::open(&env, "?since=0", None).await;
        assert_eq!(first.next().await.2["order_id"], json!(a));
        drop(first);
        // b's delivery fails and waits an hour for its retry: pending.
        let receiver = Receiver::start(1).await;
        add_webhook(&env, "created", "order_created", &receiver.url, json!({})).await;
        let b = create_order(&env, "b", "1").await;
        receiver.wait_for(1).await;
        wait_deliveries(&env, |d| d == [("pending".to_owned(), 1)]).await;
        let c = create_order(&env, "c", "1").await;
        let mut all = SseReader::open(&env, "?since=0", None).await;
        let mut events = Vec::new();
        for _ in 0..3 {
            events.push(all.next().await);
        }
        drop(all);
        let later = cardcash_util::Timestamp::now()
            .saturating_add(cardcash_util::RelativeTime::from_secs(3600));
        let store = env.app.merchant().store();
        assert_eq!(store.prune_order_events(later, 100).await.unwrap(), 1);
        assert_eq!(store.prune_order_events(later, 100).await.unwrap(), 0);
        let mut left = SseReader::open(&env, "?since=0", None).await;
        let kept: Vec<_> = [left.next().await, left.next().await]
            .iter()
            .map(|e| e.2["order_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kept, [b.clone(), c.clone()]);
        assert_ne!(a, b);
        let d = create_order(&env, "d", "1").await;
        let next = left.next().await;
        assert_eq!(next.2["order_id"], json!(d));
        assert!(next.0 > events[2].0);
        drop(left);
        env.app.shutdown().await.unwrap();
    }
);

/// `last_error` of every delivery, by serial (test-only SQL).
async fn delivery_errors(env: &Env) -> Vec<Option<String>> {
    const SQL: &str = "SELECT last_error FROM webhook_deliveries ORDER BY delivery_serial";
    match env.app.merchant().store().database() {
        Database::Sqlite(db) => db
            .read(|conn| {
                cardcash_store::query_all(conn, SQL, [], |r| Ok(r.get::<_, Option<String>>(0)?))
            })
            .unwrap(),
        Database::Postgres(db) => {
            use sqlx::Row;
            sqlx::query(SQL)
                .fetch_all(db.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<Option<String>, _>("last_error"))
                .collect()
        }
    }
}

/// The production default: webhooks reach public addresses only.
fn public_only(c: &mut cardcash_merchant::MerchantConfig) {
    c.webhook_allow_private_addresses = false;
}

engine_test!(
    /// With the production default, a webhook URL naming the backend's own network as an IP
    /// literal (loopback, private, the cloud metadata service, IPv4-mapped IPv6, other
    /// spellings of 127.0.0.1), with credentials, or not http(s) is refused at creation and
    /// change: 400 GENERIC_PARAMETER_MALFORMED naming `url`. Public URLs are accepted.
    async fn webhooks_to_private_address_literals_are_refused(engine: Engine) {
        let env = env_with(engine, public_only).await;
        let hook = |url: &str| json!({"webhook_id": "h", "event_type": "pay", "url": url, "http_method": "POST"});
        for url in [
            "http://127.0.0.1:9966/management/instances",
            "http://169.254.169.254/latest/meta-data/iam/",
            "http://10.0.0.5/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0:9966/",
            "http://[::1]:9966/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://224.0.0.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "https://user:password@shop.example/hook",
            "file:///etc/passwd",
            "gopher://shop.example/",
        ] {
            let (status, body) = post(&env, "private/webhooks", &hook(url)).await;
            assert_eq!(status, 400, "{url}: {body}");
            assert_eq!(
                body["code"],
                ErrorCode::GenericParameterMalformed.code(),
                "{url}"
            );
            assert!(
                body["hint"].as_str().unwrap().contains("url"),
                "{url}: {body}"
            );
        }
        let (status, body) = post(
            &env,
            "private/webhooks",
            &hook("http://169.254.169.254/latest/meta-data/"),
        )
        .await;
        assert!(
            body["hint"]
                .as_str()
                .unwrap()
                .contains("public addresses only"),
            "{status} {body}"
        );
        // Public literals and names are fine; a change to a private literal is refused too.
        for (id, url) in [
            ("byname", "https://shop.example/hooks"),
            ("byip", "http://93.184.216.34:8080/hooks"),
        ] {
            let mut h = hook(url);
            h["webhook_id"] = json!(id);
            let (status, body) = post(&env, "private/webhooks", &h).await;
            assert_eq!(status, 200, "{url}: {body}");
        }
        let (status, body) = send(
            &env,
            reqwest::Method::PATCH,
            "private/webhooks/byname",
            Some(
                &json!({"event_type": "pay", "url": "http://[::ffff:a9fe:a9fe]/",
                         "http_method": "POST"}),
            ),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], ErrorCode::GenericParameterMalformed.code());
        let (_, one) = env.get("private/webhooks/byname").await;
        assert_eq!(one["url"], "https://shop.example/hooks");
        env.app.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A webhook to a name (`localhost`) is accepted, but the name resolves to loopback only:
    /// every attempt is refused before connecting, so the receiver listening on 127.0.0.1 at
    /// that port gets nothing; the delivery is a failed attempt (retried later) whose error
    /// says why.
    async fn a_name_resolving_to_loopback_is_never_connected_to(engine: Engine) {
        let env = env_with(engine, |c| {
            public_only(c);
            c.webhook_retry_delay = cardcash_util::RelativeTime::from_secs(3600);
        })
        .await;
        let receiver = Receiver::start(0).await;
        let url = receiver.url.replace("127.0.0.1", "localhost");
        assert_ne!(url, receiver.url);
        add_webhook(&env, "created", "order_created", &url, json!({})).await;
        create_order(&env, "Sonatas", "1").await;
        // The attempt is recorded after it ended: nothing can arrive later.
        wait_deliveries(&env, |d| d == [("pending".to_owned(), 1)]).await;
        let errors = delivery_errors(&env).await;
        let error = errors[0].as_deref().unwrap_or_default();
        assert!(
            error.starts_with("refused: localhost resolves to no public address")
                && error.contains("loopback"),
            "{error}"
        );
        assert!(receiver.seen().is_empty(), "{:?}", receiver.seen());
        env.app.shutdown().await.unwrap();
    }
);

engine_test!(
    /// A receiver answering with a redirect (to another receiver) and a huge body: the
    /// redirect is not followed, the attempt failed, and its error keeps only the start of the
    /// answer.
    async fn redirects_are_not_followed_and_failed_answers_are_read_bounded(engine: Engine) {
        let env = env_with(engine, |c| {
            c.webhook_retry_delay = cardcash_util::RelativeTime::from_secs(3600);
        })
        .await;
        let target = Receiver::start(0).await;
        let location = target.url.clone();
        let app = Router::new().route(
            "/hook",
            axum::routing::any(move || {
                let location = location.clone();
                async move {
                    (
                        StatusCode::FOUND,
                        [(axum::http::header::LOCATION, location)],
                        "moved ".repeat(200_000),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        add_webhook(&env, "created", "order_created", &url, json!({})).await;
        create_order(&env, "Sonatas", "1").await;
        wait_deliveries(&env, |d| d == [("pending".to_owned(), 1)]).await;
        let errors = delivery_errors(&env).await;
        let error = errors[0].as_deref().unwrap_or_default();
        assert!(error.starts_with("HTTP 302 Found: moved moved"), "{error}");
        assert!(
            error.len() <= "HTTP 302 Found: ".len() + 256,
            "{}",
            error.len()
        );
        assert!(target.seen().is_empty());
        server.abort();
        env.app.shutdown().await.unwrap();
    }
);
