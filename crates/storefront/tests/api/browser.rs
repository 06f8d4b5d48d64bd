//! A real browser walks the shop: headless Chromium (the machine's Debian packages) driven
//! through chromedriver's W3C WebDriver HTTP API, and the real wallet (`cardcash-wallet`)
//! paying the `taler://pay` URI the merchant's payment page shows. Browse → buy the Sonatas →
//! reload (nothing paid again) → a new browser session (the wallet detects the repurchase) →
//! a refund granted on `/admin` in the browser → the wallet picks it up → the page says
//! refunded. Every step leaves a screenshot in `target/browser-artifacts/<engine>/`, and the
//! pages are checked for what a person sees (text, the stylesheet applied, a QR code large
//! enough to scan).
//!
//! Without Chromium or chromedriver the test says so and passes, unless
//! `CARDCASH_REQUIRE_BROWSER=1` (CI) makes it fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use cardcash_api::wire_gateway::AddIncomingRequest;
use cardcash_testkit::{Engine, engine_test, wait_for, wait_until};
use cardcash_util::{Amount, EddsaPublicKey};
use cardcash_wallet::{Wallet, WalletConfig};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::helpers::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page, the browser or the wallet may take.
const WAIT: Duration = Duration::from_secs(30);
/// The W3C name of an element reference in WebDriver JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// A screenshot of a rendered page is tens of KB; a blank one a few hundred bytes.
const MIN_SCREENSHOT_BYTES: usize = 8 * 1024;

/// `Some(reason)` when the browser cannot run here; panics instead when CI requires it.
fn browser_missing() -> Option<String> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return None;
    }
    let reason = format!(
        "{} not installed (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    assert!(
        std::env::var("CARDCASH_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "CARDCASH_REQUIRE_BROWSER=1 but {reason}"
    );
    Some(reason)
}

/// `target/browser-artifacts/<engine>/`, emptied of an earlier run's screenshots.
fn artifact_dir(engine: Engine) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("browser-artifacts").join(engine.to_string());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("old artifacts removed");
    }
    std::fs::create_dir_all(&dir).expect("artifact directory");
    dir
}

/// A chromedriver child process (its own process group, so Chromium goes with it on drop).
struct ChromeDriver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl ChromeDriver {
    async fn start() -> Self {
        // A free port: bound and released; chromedriver takes it at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver starts")
        };
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("client"),
        };
        wait_until(WAIT, || async {
            match driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .await
            {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        driver
    }

    /// A new browser (its own profile in `profile`: a new browser session, no cookies).
    async fn session(&self, profile: &Path) -> Session {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--window-size=1200,1000",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let body = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let answer = send(self.http.post(format!("{}/session", self.url)).json(&body)).await;
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        Session {
            url: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The driver and the browsers it started (same process group), by our child's id.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver call: its `value`, or a panic naming the WebDriver error.
async fn send(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("chromedriver answers");
    let status = response.status();
    let body: Value = response.json().await.expect("WebDriver JSON");
    assert!(status.is_success(), "WebDriver {status}: {body}");
    body["value"].clone()
}

/// One browser (a WebDriver session).
struct Session {
    url: String,
    http: reqwest::Client,
}

impl Session {
    async fn get(&self, path: &str) -> Value {
        send(self.http.get(format!("{}{path}", self.url))).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        send(self.http.post(format!("{}{path}", self.url)).json(&body)).await
    }

    async fn navigate(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn reload(&self) {
        self.post("/refresh", json!({})).await;
    }

    /// The address of the page shown, without credentials (`/admin`'s are in the URL).
    async fn current_url(&self) -> String {
        let shown = self.get("/url").await;
        let mut url = reqwest::Url::parse(shown.as_str().expect("URL")).expect("a URL");
        url.set_username("").expect("a host");
        url.set_password(None).expect("a host");
        url.to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    async fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// What a person reads on the page.
    async fn text(&self) -> String {
        self.script(
            "return document.body ? document.body.innerText : '';",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits until the browser shows a page at `url` (the start of its address) whose text
    /// contains `text` (redirects and self-reloading pages settle meanwhile).
    async fn wait_for_page(&self, url: &str, text: &str) {
        let found = cardcash_testkit::try_wait_for(WAIT, || async {
            (self.current_url().await.starts_with(url) && self.text().await.contains(text))
                .then_some(())
        })
        .await;
        if found.is_none() {
            panic!(
                "the browser did not show {url} with {text:?}; it shows {} with:\n{}",
                self.current_url().await,
                self.text().await
            );
        }
    }

    /// The element matching the CSS `selector` (waited for).
    async fn element(&self, selector: &str) -> String {
        wait_for(WAIT, || async {
            let response = self
                .http
                .post(format!("{}/element", self.url))
                .json(&json!({"using": "css selector", "value": selector}))
                .send()
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            let body: Value = response.json().await.ok()?;
            body["value"][ELEMENT].as_str().map(str::to_owned)
        })
        .await
    }

    async fn attribute(&self, element: &str, name: &str) -> String {
        self.get(&format!("/element/{element}/attribute/{name}"))
            .await
            .as_str()
            .unwrap_or_else(|| panic!("no attribute {name}"))
            .to_owned()
    }

    async fn click(&self, element: &str) {
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    async fn type_into(&self, element: &str, text: &str) {
        self.post(&format!("/element/{element}/clear"), json!({}))
            .await;
        self.post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// A computed style property of the first element matching `selector`.
    async fn style(&self, selector: &str, property: &str) -> String {
        self.script(
            "return getComputedStyle(document.querySelector(arguments[0]))\
             .getPropertyValue(arguments[1]);",
            json!([selector, property]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The rendered width × height in CSS pixels of the first element matching `selector`.
    async fn size(&self, selector: &str) -> (f64, f64) {
        let rect = self
            .script(
                "const r = document.querySelector(arguments[0]).getBoundingClientRect();\
                 return [r.width, r.height];",
                json!([selector]),
            )
            .await;
        (
            rect[0].as_f64().expect("width"),
            rect[1].as_f64().expect("height"),
        )
    }

    /// Fetches `path` with the browser's cookies: (status, content type, size).
    async fn fetch(&self, path: &str) -> (u64, String, u64) {
        let v = self
            .post(
                "/execute/async",
                json!({
                    "script": "const done = arguments[arguments.length - 1];\
                               fetch(arguments[0], {redirect: 'manual'})\
                               .then(r => r.arrayBuffer().then(b => done([r.status, \
                               r.headers.get('content-type') || '', b.byteLength])))\
                               .catch(e => done([0, String(e), 0]));",
                    "args": [path],
                }),
            )
            .await;
        (
            v[0].as_u64().expect("status"),
            v[1].as_str().unwrap_or_default().to_owned(),
            v[2].as_u64().expect("size"),
        )
    }

    /// Saves a PNG of the window as `dir/name.png`; checks that something was drawn.
    async fn screenshot(&self, dir: &Path, name: &str) {
        let data = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64"))
            .expect("a base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        assert!(
            png.len() > MIN_SCREENSHOT_BYTES,
            "{name}: a screenshot of {} bytes shows next to nothing",
            png.len()
        );
        // (Created again: another run of this test may have emptied it meanwhile.)
        std::fs::create_dir_all(dir).expect("artifact directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    async fn close(self) {
        send(self.http.delete(&self.url)).await;
    }
}

/// A wallet file with KUDOS 20 withdrawn from the world's exchange (a manual withdrawal: the
/// reserve credited through the bank's Wire Gateway for the exchange).
async fn funded_wallet(env: &Env, path: &Path) -> Wallet {
    let wallet = Wallet::open(path, WalletConfig::default()).expect("wallet");
    let exchange = env.world.exchange().base_url().clone();
    let created = wallet
        .accept_manual_withdrawal(&exchange, kudos("20"))
        .await
        .expect("a manual withdrawal");
    let reserve_pub: EddsaPublicKey = created.reserve_pub.parse().expect("reserve key");
    let bank = env.world.bank();
    let debit_account = bank
        .app()
        .ledger()
        .payto()
        .account_uri("admin", "Admin")
        .expect("payto");
    bank.exchange_wire_gateway()
        .add_incoming(&AddIncomingRequest {
            amount: kudos("20"),
            reserve_pub,
            debit_account,
        })
        .await
        .expect("the bank credits the exchange");
    wallet
        .run_until_done(Some(Instant::now() + WAIT))
        .await
        .expect("the withdrawal completes");
    wallet
}

fn available(wallet: &Wallet) -> Amount {
    let balances = wallet.get_balances().expect("balances");
    assert_eq!(balances.len(), 1, "{balances:?}");
    balances[0].available
}

/// How many of the shop's orders the merchant backend counts as paid.
async fn paid_orders(env: &Env) -> usize {
    let history = env.merchant.recent_orders(100).await.expect("order list");
    history.orders.iter().filter(|o| o.paid).count()
}

engine_test!(
    /// The whole purchase in Chromium, with screenshots of every step.
    async fn a_browser_buys_reloads_comes_back_and_sees_the_refund(engine: Engine) {
        if let Some(reason) = browser_missing() {
            eprintln!("SKIPPING browser test: {reason}");
            return;
        }
        let artifacts = artifact_dir(engine);
        let env = Env::paying(engine).await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let wallet = funded_wallet(&env, &dir.path().join("wallet.sqlite3")).await;
        let funded = available(&wallet);
        let driver = ChromeDriver::start().await;
        let shop = env.shop.base_url().to_string();
        let sonatas = format!("{shop}sonatas");
        let merchant = env.world.merchant().base_url().to_string();

        // 1. The catalogue, styled by the shop's stylesheet.
        let browser = driver.session(&dir.path().join("profile-1")).await;
        browser.navigate(&shop).await;
        browser.wait_for_page(&shop, "Beethoven Sonatas").await;
        let text = browser.text().await;
        assert!(
            text.contains("Grand piano") && text.contains("9.87 KUDOS"),
            "{text}"
        );
        assert!(
            browser
                .style("body", "font-family")
                .await
                .contains("Georgia"),
            "the stylesheet is applied to the body"
        );
        assert_eq!(
            browser.style("header", "background-color").await,
            "rgb(29, 27, 25)",
            "the dark header of the stylesheet"
        );
        let (width, _) = browser.size("#f001").await;
        assert!(width >= 250.0, "the Sonatas' card is {width} px wide");
        browser.screenshot(&artifacts, "01-catalogue").await;

        // 2. "Buy and read" → the shop orders and sends the browser to the merchant's page.
        let buy = browser.element("#f001 a.button").await;
        browser.click(&buy).await;
        browser.wait_for_page(&merchant, "Beethoven Sonatas").await;
        let text = browser.text().await;
        assert!(text.contains("KUDOS:9.87"), "{text}");
        let first_order = order_of(&browser.current_url().await);
        let pay = browser.element("a.pay").await;
        let uri = browser.attribute(&pay, "href").await;
        assert!(
            uri.starts_with("taler://pay/") || uri.starts_with("taler+http://pay/"),
            "{uri}"
        );
        assert!(uri.contains(&first_order), "{uri} names {first_order}");
        let (qr_w, qr_h) = browser.size(".qr svg").await;
        assert!(
            qr_w >= 200.0 && qr_h >= 200.0,
            "a QR code of {qr_w}×{qr_h} px is too small to scan"
        );
        browser.screenshot(&artifacts, "02-payment-page").await;

        // 3. The wallet pays the URI shown on the page; the page reloads to the Sonatas.
        let offer = wallet.prepare_pay_for_uri(&uri).await.expect("the offer");
        assert_eq!(offer.status, "payment-possible", "{offer:?}");
        assert_eq!(offer.order_id, first_order);
        assert_eq!(offer.amount_raw, kudos("9.87"));
        wallet
            .confirm_pay(&offer.transaction_id, None)
            .await
            .expect("the wallet pays");
        wallet
            .run_until_done(Some(Instant::now() + WAIT))
            .await
            .expect("the change refreshed");
        let paid = available(&wallet);
        assert!(paid < funded, "{funded} → {paid}");
        assert_eq!(paid_orders(&env).await, 1);
        browser.reload().await;
        browser
            .wait_for_page(&sonatas, "Thank you: this copy is yours")
            .await;
        let pdf = browser.element("a[href='/sonatas/sonatas.pdf']").await;
        assert_eq!(browser.attribute(&pdf, "class").await, "button");
        let (status, content_type, size) = browser.fetch("/sonatas/sonatas.pdf").await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "application/pdf"),
            "the PDF with the browser's cookies"
        );
        assert!(size > 500, "a PDF of {size} bytes");
        browser.screenshot(&artifacts, "03-sonatas-served").await;

        // 4. Reload: served again, nothing paid.
        browser.reload().await;
        browser
            .wait_for_page(&sonatas, "Thank you: this copy is yours")
            .await;
        assert_eq!(available(&wallet), paid, "a reload costs nothing");
        assert_eq!(paid_orders(&env).await, 1, "no second paid order");
        browser.screenshot(&artifacts, "04-reloaded").await;

        // 5. A new browser session: a new order, which the wallet recognises as bought.
        let second = driver.session(&dir.path().join("profile-2")).await;
        second.navigate(&sonatas).await;
        second.wait_for_page(&merchant, "Beethoven Sonatas").await;
        let second_order = order_of(&second.current_url().await);
        assert_ne!(second_order, first_order, "a new order for the new session");
        let pay = second.element("a.pay").await;
        let uri = second.attribute(&pay, "href").await;
        second
            .screenshot(&artifacts, "05-new-session-payment-page")
            .await;
        let again = wallet.prepare_pay_for_uri(&uri).await.expect("the offer");
        assert_eq!(again.status, "already-confirmed", "{again:?}");
        assert_eq!(again.already_paid_order_id.as_deref(), Some(&*first_order));

        // 6. The new session is served, still paid once.
        second.reload().await;
        second
            .wait_for_page(&sonatas, "Thank you: this copy is yours")
            .await;
        assert_eq!(available(&wallet), paid, "the repurchase costs nothing");
        assert_eq!(paid_orders(&env).await, 1, "no second paid order");
        second.screenshot(&artifacts, "06-new-session-served").await;

        // 7. The shop's owner refunds KUDOS 2 on /admin (HTTP Basic in the URL).
        let admin = driver.session(&dir.path().join("profile-admin")).await;
        let with_password = shop.replacen("://", &format!("://admin:{ADMIN_PASSWORD}@"), 1);
        admin.navigate(&format!("{with_password}admin")).await;
        admin.wait_for_page(&shop, &first_order).await;
        let (_, id_height) = admin.size("td code").await;
        assert!(
            id_height < 30.0,
            "an order id on one line, not {id_height} px high"
        );
        admin.screenshot(&artifacts, "07-admin").await;
        let row = format!("form:has(input[name='order_id'][value='{first_order}'])");
        let amount = admin.element(&format!("{row} input[name='amount']")).await;
        admin.type_into(&amount, "KUDOS:2").await;
        let button = admin.element(&format!("{row} button")).await;
        admin.click(&button).await;
        admin.wait_for_page(&shop, "The refund was granted").await;
        assert!(admin.current_url().await.ends_with("notice=refunded"));
        admin.screenshot(&artifacts, "08-admin-refunded").await;
        admin.close().await;

        // 8. The Sonatas' page offers the refund to the wallet (the order's session is the
        // second browser's now: the wallet re-bound it there).
        second.reload().await;
        second.wait_for_page(&sonatas, "Collect the refund").await;
        assert!(second.text().await.contains("2.00 KUDOS"));
        let collect = second.element("main a.button").await;
        let href = second.attribute(&collect, "href").await;
        assert!(
            href.starts_with(&format!("{merchant}orders/{first_order}")),
            "{href}"
        );
        second.screenshot(&artifacts, "09-collect-refund").await;

        // 9. The wallet picks the refund up; the page says refunded.
        let picked = wallet
            .start_refund_query(&offer.transaction_id)
            .await
            .expect("the refund pickup");
        assert_eq!(picked.amount_refund_granted, kudos("2"));
        wallet
            .run_until_done(Some(Instant::now() + WAIT))
            .await
            .expect("the refunded coins refreshed");
        assert!(available(&wallet) > paid, "the refund came back");
        second.reload().await;
        second.wait_for_page(&sonatas, "was refunded").await;
        let (_, content_type, _) = second.fetch("/sonatas/sonatas.pdf").await;
        assert_ne!(content_type, "application/pdf", "no file after a refund");
        second.screenshot(&artifacts, "10-refunded").await;

        eprintln!(
            "browser screenshots: {}",
            artifacts
                .canonicalize()
                .unwrap_or(artifacts.clone())
                .display()
        );
        second.close().await;
        browser.close().await;
        drop(driver);
        wallet.close();
        env.shutdown().await;
    }
);
