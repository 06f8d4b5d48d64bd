//! `/admin`: Basic authentication, the order list, refunds with the anti-CSRF token.

use cardcash_testkit::{Engine, engine_test};

use crate::helpers::*;

engine_test!(
    /// Without the password (or with a wrong one) 401 with a Basic challenge; with it, the
    /// recent orders; a refund form without the shop's token is refused; a refund the
    /// backend refuses (an unpaid order) comes back as a notice.
    async fn admin_needs_its_password_and_its_forms(engine: Engine) {
        let env = Env::new(engine).await;
        let mut browser = env.browser();
        let order_id = order_of(browser.get("sonatas").await.redirect());

        let mut admin = env.browser();
        for password in [None, Some("wrong")] {
            let refused = admin.admin("admin", password, None).await;
            assert_eq!(refused.status, 401);
        }
        let page = admin.admin("admin", Some(ADMIN_PASSWORD), None).await;
        assert_eq!(page.status, 200);
        assert!(page.text().contains(&order_id), "{}", page.text());
        assert!(page.text().contains("unpaid"));

        let csrf = env.shop.shop().csrf_token().to_owned();
        let form =
            |token: &'static str| [("csrf", token), ("amount", "KUDOS:1"), ("reason", "test")];
        let mut forged = form("forged").to_vec();
        forged.push(("order_id", &order_id));
        let refused = admin
            .admin("admin/refund", Some(ADMIN_PASSWORD), Some(&forged))
            .await;
        assert_eq!(refused.status, 400);
        let unauthenticated = admin.admin("admin/refund", None, Some(&forged)).await;
        assert_eq!(unauthenticated.status, 401);

        let genuine = [
            ("csrf", csrf.as_str()),
            ("order_id", order_id.as_str()),
            ("amount", "KUDOS:1"),
            ("reason", "test"),
        ];
        let answer = admin
            .admin("admin/refund", Some(ADMIN_PASSWORD), Some(&genuine))
            .await;
        assert_eq!(answer.redirect(), "/admin?notice=refund-refused");
        env.shutdown().await;
    }
);
