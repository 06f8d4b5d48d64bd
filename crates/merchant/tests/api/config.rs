//! `GET /config`.

use cardcash_testkit::{Engine, engine_test};

use crate::helpers::{CURRENCY, Env};

engine_test!(
    /// The backend names itself and its currency, as wallets and shop plugins expect.
    async fn config_names_the_backend_and_its_currency(engine: Engine) {
        let env = Env::new(engine).await;
        let (status, body) = env.get("config").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], "taler-merchant");
        assert_eq!(body["currency"], CURRENCY);
        assert!(body["version"].as_str().unwrap().contains(':'));
        assert!(body["currencies"][CURRENCY].is_object(), "{body}");
    }
);
