//! The piano cart on the backend's inventory locks, the catalogue, and the shop's
//! provisioning of its instance and products.

use std::time::Duration;

use cardcash_api::merchant::status::MerchantOrderStatusResponse;
use cardcash_testkit::{Engine, engine_test};

use crate::helpers::*;

/// The piano's `total_available` at the backend.
async fn available(env: &Env) -> i64 {
    env.merchant
        .product("p001")
        .await
        .unwrap()
        .expect("the piano exists")
        .total_available
}

engine_test!(
    /// At start the shop creates its products as the merchant guide adds them, once; a shop
    /// whose instance does not exist yet creates it (with its own token) and its products.
    async fn the_shop_provisions_its_catalogue_once(engine: Engine) {
        let env = Env::new(engine).await;
        assert!(
            !env.shop.provisioned().instance,
            "the world made the instance"
        );
        assert_eq!(env.shop.provisioned().products, vec!["p001", "f001"]);
        let piano = env.merchant.product("p001").await.unwrap().unwrap();
        assert_eq!(piano.description, "piano");
        assert_eq!(piano.unit, "unit");
        assert_eq!(piano.price, kudos("20000"));
        assert_eq!(piano.total_stock, 3);
        let sonatas = env.merchant.product("f001").await.unwrap().unwrap();
        assert_eq!(sonatas.unit, "file");
        assert_eq!(sonatas.price, kudos("9.87"));
        assert_eq!(sonatas.total_stock, -1);

        // A second shop on the same backend finds everything there, with no management
        // token at all.
        let again = Env::start_shop(&env.world, |c| c.merchant_admin_token = None).await;
        assert_eq!(again.provisioned(), &Default::default());
        again.shutdown().await.unwrap();

        // A shop of another instance creates it.
        let other = Env::start_shop(&env.world, |c| {
            c.instance = "pianos".into();
            c.merchant_token = "secret-token:eighty-eight-keys".into();
        })
        .await;
        assert!(other.provisioned().instance);
        assert_eq!(other.provisioned().products, vec!["p001", "f001"]);
        let own = cardcash_client::MerchantClient::new(
            env.world.merchant().base_url().clone(),
            "pianos",
            "secret-token:eighty-eight-keys",
        )
        .unwrap();
        assert_eq!(
            own.product("p001").await.unwrap().unwrap().total_stock,
            3,
            "the shop's own token opens its new instance"
        );
        other.shutdown().await.unwrap();

        // The catalogue shows both products and the stock.
        let page = env.browser().get("").await;
        assert_eq!(page.status, 200);
        let text = page.text();
        assert!(text.contains("Grand piano") && text.contains("Beethoven Sonatas"));
        assert!(text.contains("<strong>3</strong> in stock"), "{text}");
        assert_eq!(env.browser().get("style.css").await.status, 200);
        // The shared service layers: Prometheus metrics of the shop's routes.
        let metrics = env.browser().get("metrics").await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics.text().contains("route=\"/style.css\""),
            "{}",
            metrics.text()
        );
        env.shutdown().await;
    }
);

engine_test!(
    /// Adding locks a piano at the backend under the cart's lock UUID, removing releases it;
    /// the checkout's order takes the lock over (`lock_uuids` + `inventory_products`) and the
    /// browser goes to the order's status page; the cart is empty afterwards.
    async fn the_cart_locks_pianos_and_checkout_takes_the_lock(engine: Engine) {
        let env = Env::new(engine).await;
        let mut browser = env.browser();
        assert_eq!(available(&env).await, 3);
        let added = browser.post("cart/add").await;
        assert_eq!(added.redirect(), "/cart?notice=added");
        assert_eq!(available(&env).await, 2);
        browser.post("cart/add").await;
        assert_eq!(available(&env).await, 1);
        let cart = browser.get("cart?notice=added").await;
        assert!(cart.text().contains("40000.00 KUDOS"), "{}", cart.text());
        assert!(cart.text().contains("10 minutes"));
        let removed = browser.post("cart/remove").await;
        assert_eq!(removed.redirect(), "/cart?notice=removed");
        assert_eq!(available(&env).await, 2);

        let checkout = browser.post("cart/checkout").await;
        let status_url = checkout.redirect().to_owned();
        let order_id = order_of(&status_url);
        assert!(order_id.starts_with("piano-"), "{order_id}");
        assert!(
            checkout
                .set_cookies
                .iter()
                .any(|(n, v)| n == "cart" && v.is_empty())
        );
        assert_eq!(available(&env).await, 2, "the order holds the cart's piano");
        match env
            .merchant
            .order_status(&order_id, None, Duration::ZERO)
            .await
            .unwrap()
        {
            MerchantOrderStatusResponse::Unpaid(u) => {
                assert_eq!(u.total_amount, Some(kudos("20000")));
                assert_eq!(u.summary, "Pretty Pianos: piano");
            }
            other => panic!("{other:?}"),
        }
        // The cart is empty now; a checkout of nothing orders nothing.
        let empty = browser.post("cart/checkout").await;
        assert_eq!(empty.redirect(), "/cart?notice=cart-empty");
        // The delivery page of an unpaid order offers to pay.
        let delivery = browser.get(&format!("delivery/{order_id}")).await;
        assert!(
            delivery.text().contains("not paid yet"),
            "{}",
            delivery.text()
        );
        env.shutdown().await;
    }
);

engine_test!(
    /// Two carts racing for the last piano: exactly one gets it, the other is told it is sold
    /// out; when the winner puts it back, the other can have it.
    async fn two_carts_race_for_the_last_piano(engine: Engine) {
        let env = Env::with(engine, false, |c| c.piano_stock = 1).await;
        let mut a = env.browser();
        let mut b = env.browser();
        let (ra, rb) = tokio::join!(a.post("cart/add"), b.post("cart/add"));
        let mut outcomes = vec![ra.redirect().to_owned(), rb.redirect().to_owned()];
        outcomes.sort();
        assert_eq!(
            outcomes,
            vec!["/cart?notice=added", "/cart?notice=sold-out"],
            "exactly one cart gets the piano"
        );
        assert_eq!(available(&env).await, 0);
        let (winner, loser) = if ra.redirect() == "/cart?notice=added" {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let page = loser.get("").await;
        assert!(page.text().contains("Sold out"), "{}", page.text());
        assert!(
            loser
                .get("cart?notice=sold-out")
                .await
                .text()
                .contains("Sorry")
        );
        winner.post("cart/remove").await;
        assert_eq!(available(&env).await, 1);
        assert_eq!(
            loser.post("cart/add").await.redirect(),
            "/cart?notice=added"
        );
        env.shutdown().await;
    }
);

engine_test!(
    /// A piano bought: the wallet pays the checkout's order, the stock is sold, and the
    /// order's fulfillment URL is its delivery page at the shop, which now says it is paid.
    async fn a_paid_piano_is_sold_and_delivered(engine: Engine) {
        let env = Env::with(engine, true, |c| c.piano_price = kudos("9")).await;
        let mut browser = env.browser();
        browser.post("cart/add").await;
        let status_url = browser.post("cart/checkout").await.redirect().to_owned();
        let mut wallet = env.wallet();
        let Handled::Paid { order_id } = wallet.handle(&env.world, &status_url).await else {
            panic!("paid")
        };
        assert_eq!(
            wallet.purchases[0].fulfillment_url,
            shop_url(&env, &format!("delivery/{order_id}"))
        );
        let piano = env.merchant.product("p001").await.unwrap().unwrap();
        assert_eq!((piano.total_sold, piano.total_available), (1, 2));
        let delivery = browser.get(&format!("delivery/{order_id}")).await;
        assert!(delivery.text().contains("is paid"), "{}", delivery.text());
        env.shutdown().await;
    }
);

engine_test!(
    /// A cart left alone lets its pianos go when its lock runs out (the backend stops counting
    /// the lock; nobody has to remove anything); its checkout then orders from what is left.
    async fn an_abandoned_cart_releases_its_piano(engine: Engine) {
        let env = Env::with(engine, false, |c| {
            c.lock_duration = Duration::from_millis(1500);
        })
        .await;
        let mut browser = env.browser();
        assert_eq!(
            browser.post("cart/add").await.redirect(),
            "/cart?notice=added"
        );
        assert_eq!(available(&env).await, 2);
        cardcash_testkit::wait_until(cardcash_testkit::WAIT, || async {
            available(&env).await == 3
        })
        .await;
        let checkout = browser.post("cart/checkout").await;
        let order_id = order_of(checkout.redirect());
        assert!(order_id.starts_with("piano-"));
        assert_eq!(available(&env).await, 2, "the order took a piano");
        env.shutdown().await;
    }
);
