//! Design document 007 on a real merchant backend, step by step (spec/merchant.md §4.1): the
//! shop's answers as a browser sees them, the backend's view through its private API, and a
//! wallet that claims and pays (or replays an earlier payment with `/paid`).

use std::time::Duration;

use cardcash_api::merchant::status::MerchantOrderStatusResponse;
use cardcash_storefront::cookie::{CookieSigner, SESSION};
use cardcash_testkit::{Engine, engine_test};

use crate::helpers::*;

const ORDER_COOKIE: &str = "order_id_sonatas";

/// The value inside a signed cookie (`VALUE.MAC`).
fn unsigned(cookie: &str) -> &str {
    cookie.rsplit_once('.').expect("a signed cookie").0
}

engine_test!(
    /// Steps 1–5 and 10: no cookies → a session and an order for the Sonatas, bound to the
    /// session, and a redirect to the backend's status page; a reload checks the same order;
    /// the PDF is behind the same paywall.
    async fn a_first_visit_orders_and_redirects_to_the_status_page(engine: Engine) {
        let env = Env::new(engine).await;
        let mut browser = env.browser();
        let first = browser.get("sonatas").await;
        let status_url = first.redirect().to_owned();
        let session = unsigned(first.cookie(SESSION).expect("a session cookie")).to_owned();
        let order_id = unsigned(first.cookie(ORDER_COOKIE).expect("an order cookie")).to_owned();
        assert!(
            status_url.starts_with(&format!(
                "{}orders/{order_id}?",
                env.world.merchant().base_url()
            )),
            "{status_url}"
        );
        assert_eq!(
            query_param(&status_url, "session_id"),
            Some(session.clone())
        );
        assert!(query_param(&status_url, "token").is_some(), "a claim token");
        // The backend has the order: unpaid, the Sonatas at their price.
        match env
            .merchant
            .order_status(&order_id, Some(&session), Duration::ZERO)
            .await
            .unwrap()
        {
            MerchantOrderStatusResponse::Unpaid(u) => {
                assert_eq!(u.summary, "Beethoven Sonatas");
                assert_eq!(u.total_amount, Some(kudos("9.87")));
                assert!(u.taler_pay_uri.contains(&order_id), "{}", u.taler_pay_uri);
            }
            other => panic!("a new order is unpaid: {other:?}"),
        }
        // Reload: the same order, no new cookies.
        let again = browser.get("sonatas").await;
        assert_eq!(again.redirect(), status_url);
        assert!(again.set_cookies.is_empty(), "{:?}", again.set_cookies);
        // The file is not served either.
        let pdf = browser.get("sonatas/sonatas.pdf").await;
        assert_eq!(pdf.redirect(), status_url);
        env.shutdown().await;
    }
);

engine_test!(
    /// Step 2: a session cookie that does not verify is no session — a new session and a new
    /// order; step 3: a forged order cookie (another order id) is refused the same way, and an
    /// order the backend does not know (a genuine cookie from elsewhere) is replaced.
    async fn tampered_or_unknown_cookies_start_over(engine: Engine) {
        let env = Env::new(engine).await;
        let mut browser = env.browser();
        let first = browser.get("sonatas").await;
        let first_order = unsigned(first.cookie(ORDER_COOKIE).unwrap()).to_owned();
        let signed_session = first.cookie(SESSION).unwrap().to_owned();
        let old_session = unsigned(&signed_session).to_owned();

        // Another session id under the old MAC.
        let forged = format!("X{}", &signed_session[1..]);
        browser.jar.insert(SESSION.into(), forged);
        let answer = browser.get("sonatas").await;
        let new_session = unsigned(answer.cookie(SESSION).expect("a new session")).to_owned();
        let new_order = unsigned(answer.cookie(ORDER_COOKIE).expect("a new order")).to_owned();
        assert_ne!(new_session, old_session);
        assert_ne!(new_session, format!("X{}", &old_session[1..]));
        assert_ne!(new_order, first_order);
        assert_eq!(
            query_param(answer.redirect(), "session_id"),
            Some(new_session.clone())
        );

        // The first order's id under the new order cookie's MAC: refused, another order.
        let cookie = browser.jar[ORDER_COOKIE].clone();
        let mac = cookie.rsplit_once('.').unwrap().1;
        browser
            .jar
            .insert(ORDER_COOKIE.into(), format!("{first_order}.{mac}"));
        let answer = browser.get("sonatas").await;
        let third = unsigned(answer.cookie(ORDER_COOKIE).expect("a new order")).to_owned();
        assert!(third != first_order && third != new_order);
        assert!(answer.cookie(SESSION).is_none(), "the session stays");

        // A genuinely signed order cookie naming an order the backend does not know.
        let signer = CookieSigner::new(b"a cookie secret for the tests", false);
        browser.jar.insert(
            ORDER_COOKIE.into(),
            signer.sign(ORDER_COOKIE, "no-such-order"),
        );
        let answer = browser.get("sonatas").await;
        let fourth = unsigned(answer.cookie(ORDER_COOKIE).expect("a new order")).to_owned();
        assert_ne!(fourth, "no-such-order");
        assert_eq!(order_of(answer.redirect()), fourth);
        env.shutdown().await;
    }
);

engine_test!(
    /// Step 6: an order claimed by a wallet that has not paid it in this session (here: a
    /// claim only) is dropped; the shop makes a new order for the same session.
    async fn a_claimed_order_is_replaced_by_a_new_one(engine: Engine) {
        let env = Env::new(engine).await;
        let mut browser = env.browser();
        let first = browser.get("sonatas").await;
        let status_url = first.redirect().to_owned();
        let order_id = order_of(&status_url);
        let nonce = cardcash_crypto::EddsaPrivateKey::generate()
            .unwrap()
            .public();
        env.wallet()
            .client
            .claim(
                &order_id,
                &cardcash_api::merchant::ClaimRequest {
                    nonce,
                    token: query_param(&status_url, "token"),
                },
            )
            .await
            .expect("claim");
        let answer = browser.get("sonatas").await;
        let new_order = unsigned(answer.cookie(ORDER_COOKIE).expect("a new order")).to_owned();
        assert_ne!(new_order, order_id);
        assert_eq!(order_of(answer.redirect()), new_order);
        assert_eq!(
            query_param(answer.redirect(), "session_id"),
            query_param(&status_url, "session_id"),
            "the session stays"
        );
        env.shutdown().await;
    }
);

engine_test!(
    /// Step 9, then reloads and a new browser session: a wallet pays the order under the
    /// browser's session → the Sonatas (page and PDF); a reload serves them without any new
    /// order; a new browser session gets a new order, the wallet recognises the fulfillment
    /// URL and proves the old payment with `/paid` instead of paying (repurchase detection),
    /// and the shop serves the Sonatas to the new session (the claimed order is replaced,
    /// step 6, and the backend names the order already paid in this session, step 10).
    async fn a_paid_order_serves_the_sonatas_and_a_repurchase_pays_nothing(engine: Engine) {
        let env = Env::paying(engine).await;
        let mut wallet = env.wallet();
        let mut browser = env.browser();
        let status_url = browser.get("sonatas").await.redirect().to_owned();
        let Handled::Paid { order_id } = wallet.handle(&env.world, &status_url).await else {
            panic!("a first purchase is paid")
        };
        assert_eq!(
            wallet.purchases[0].fulfillment_url,
            shop_url(&env, "sonatas")
        );

        let page = browser.get("sonatas").await;
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(page.text().contains("sonatas.pdf"), "{}", page.text());
        let pdf = browser.get("sonatas/sonatas.pdf").await;
        assert_eq!(pdf.status, 200);
        assert_eq!(pdf.content_type.as_deref(), Some("application/pdf"));
        assert!(pdf.body.starts_with(b"%PDF-"));
        // Reload: served again, nothing new.
        let reload = browser.get("sonatas").await;
        assert_eq!(reload.status, 200);
        assert!(reload.set_cookies.is_empty(), "{:?}", reload.set_cookies);
        assert_eq!(wallet.purchases.len(), 1);
        // Only the order cookie lost: a new order in the same session, which the backend
        // finds already paid in this session (`already_paid_order_id`): served at once.
        browser.jar.remove(ORDER_COOKIE);
        let lost = browser.get("sonatas").await;
        assert_eq!(lost.status, 200, "{}", lost.text());
        assert_eq!(
            lost.cookie(ORDER_COOKIE).map(unsigned),
            Some(order_id.as_str())
        );

        // A new browser session (cookies gone) on the same wallet.
        let mut fresh = env.browser();
        let answer = fresh.get("sonatas").await;
        let second_url = answer.redirect().to_owned();
        assert_ne!(
            order_of(&second_url),
            order_id,
            "a new order for the new session"
        );
        let handled = wallet.handle(&env.world, &second_url).await;
        assert_eq!(
            handled,
            Handled::Replayed {
                paid_order_id: order_id.clone()
            }
        );
        let served = fresh.get("sonatas").await;
        assert_eq!(served.status, 200, "{}", served.text());
        assert!(served.text().contains("sonatas.pdf"));
        assert_eq!(
            served.cookie(ORDER_COOKIE).map(unsigned),
            Some(order_id.as_str()),
            "the browser now holds the order paid before"
        );
        assert_eq!(wallet.purchases.len(), 1, "paid once");
        env.shutdown().await;
    }
);

engine_test!(
    /// Steps 8 and 7: the shop's admin refunds part of the purchase; the paywall then links to
    /// the backend's order page where the wallet collects it (step 8); once collected, the
    /// "refunded" page (step 7); the file is no longer served.
    async fn a_refund_is_collected_then_the_purchase_shows_as_refunded(engine: Engine) {
        let env = Env::paying(engine).await;
        let mut wallet = env.wallet();
        let mut browser = env.browser();
        let status_url = browser.get("sonatas").await.redirect().to_owned();
        let Handled::Paid { order_id } = wallet.handle(&env.world, &status_url).await else {
            panic!("paid")
        };
        assert_eq!(browser.get("sonatas").await.status, 200);

        let mut admin = env.browser();
        let csrf = env.shop.shop().csrf_token().to_owned();
        let refund = admin
            .admin(
                "admin/refund",
                Some(ADMIN_PASSWORD),
                Some(&[
                    ("csrf", &csrf),
                    ("order_id", &order_id),
                    ("amount", "KUDOS:2"),
                    ("reason", "a page is missing"),
                ]),
            )
            .await;
        assert_eq!(refund.redirect(), "/admin?notice=refunded");

        let pending = browser.get("sonatas").await;
        assert_eq!(pending.status, 200);
        let text = pending.text();
        assert!(text.contains("Collect the refund"), "{text}");
        assert!(text.contains("2.00 KUDOS"), "{text}");
        assert!(
            text.contains(&format!(
                "href=\"{}orders/{order_id}",
                env.world.merchant().base_url()
            )),
            "a link to the backend's order page: {text}"
        );
        assert!(!text.contains("sonatas.pdf"));

        assert_eq!(wallet.pick_up_refund(&order_id).await, kudos("2"));
        let refunded = browser.get("sonatas").await;
        assert_eq!(refunded.status, 200);
        assert!(
            refunded.text().contains("was refunded"),
            "{}",
            refunded.text()
        );
        let pdf = browser.get("sonatas/sonatas.pdf").await;
        assert!(!pdf.body.starts_with(b"%PDF-"), "no file after a refund");
        env.shutdown().await;
    }
);
