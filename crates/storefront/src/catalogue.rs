//! Pretty Pianos' catalogue (the merchant guide's pre-sales configuration, seed 003): the piano
//! `p001` (physical, limited stock) and the Beethoven Sonatas `f001` (a PDF, unlimited), and
//! the shop's own provisioning of its instance and products at start when they are missing.

use cardcash_api::merchant::instances::{
    FlexibleDuration, InstanceAccount, InstanceAuthConfig, InstanceConfigurationMessage,
};
use cardcash_api::merchant::inventory::ProductAddDetail;
use cardcash_client::{ClientError, MerchantClient};
use cardcash_util::{Amount, RelativeTime};

use crate::config::StorefrontConfig;
use crate::paywall::Resource;

/// The piano's product id.
pub const PIANO: &str = "p001";
/// The Sonatas' product id.
pub const SONATAS: &str = "f001";
/// The shop's name (the instance's `name`).
pub const SHOP_NAME: &str = "Pretty Pianos";

/// The paywalled Sonatas.
pub fn sonatas(config: &StorefrontConfig) -> Resource {
    Resource {
        name: "sonatas",
        title: "Beethoven Sonatas",
        price: config.sonatas_price,
    }
}

/// A product as the guide adds them: no image, no taxes (`taxes: []`), no restock date.
fn product(
    id: &str,
    name: &str,
    description: &str,
    unit: &str,
    price: Amount,
    total_stock: i64,
) -> ProductAddDetail {
    ProductAddDetail {
        product_id: id.to_owned(),
        product_name: Some(name.to_owned()),
        description: description.to_owned(),
        description_i18n: None,
        unit: unit.to_owned(),
        price,
        image: None,
        taxes: Some(Vec::new()),
        categories: None,
        total_stock,
        address: None,
        next_restock: None,
        minimum_age: None,
        forgettable: None,
        forgettable_legacy: None,
    }
}

/// `p001` as the guide adds it.
pub fn piano_product(config: &StorefrontConfig) -> ProductAddDetail {
    let stock = i64::try_from(config.piano_stock).unwrap_or(i64::MAX);
    product(
        PIANO,
        "Grand piano",
        "piano",
        "unit",
        config.piano_price,
        stock,
    )
}

/// `f001` as the guide adds it (`total_stock` −1: a file never runs out).
pub fn sonatas_product(config: &StorefrontConfig) -> ProductAddDetail {
    product(
        SONATAS,
        "Beethoven Sonatas",
        "Beethoven Sonatas",
        "file",
        config.sonatas_price,
        -1,
    )
}

/// The instance the shop creates when the backend has none by its name: token auth with the
/// shop's own token, its bank account (if configured), the guide's delays (wire transfers
/// after 2 days, payment within 5 hours).
pub fn instance_request(config: &StorefrontConfig) -> InstanceConfigurationMessage {
    let password = config
        .merchant_token
        .strip_prefix("secret-token:")
        .unwrap_or(&config.merchant_token)
        .to_owned();
    let days = |n: u64| Some(FlexibleDuration(RelativeTime::from_secs(n * 24 * 3600)));
    InstanceConfigurationMessage {
        id: config.instance.clone(),
        name: SHOP_NAME.to_owned(),
        auth: InstanceAuthConfig {
            method: "token".to_owned(),
            token: None,
            password: Some(password),
        },
        accounts: config
            .payto_uri
            .iter()
            .map(|payto| InstanceAccount {
                payto_uri: payto.clone(),
                credit_facade_url: None,
                credit_facade_credentials: None,
            })
            .collect(),
        payto_uris: Vec::new(),
        email: None,
        phone_number: None,
        website: None,
        logo: None,
        address: Some(serde_json::json!({})),
        jurisdiction: Some(serde_json::json!({})),
        use_stefan: Some(true),
        default_max_wire_fee: None,
        default_wire_fee_amortization: None,
        default_max_deposit_fee: None,
        default_wire_transfer_delay: days(2),
        default_pay_delay: Some(FlexibleDuration(RelativeTime::from_secs(5 * 3600))),
        default_refund_delay: None,
    }
}

/// What [`provision`] had to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    pub instance: bool,
    pub products: Vec<&'static str>,
}

/// Creates the instance (with its bank account, if configured) and the two products where the
/// backend does not have them yet. Existing ones are left as they are (their stock is the
/// backend's business from then on).
pub async fn provision(
    client: &MerchantClient,
    config: &StorefrontConfig,
) -> Result<Provisioned, ClientError> {
    let mut done = Provisioned::default();
    if !client.instance_exists().await? {
        client.create_instance(&instance_request(config)).await?;
        done.instance = true;
    }
    for (id, product) in [
        (PIANO, piano_product(config)),
        (SONATAS, sonatas_product(config)),
    ] {
        if client.product(id).await?.is_none() {
            client.create_product(&product).await?;
            done.products.push(id);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_util::BaseUrl;

    fn config() -> StorefrontConfig {
        StorefrontConfig::new(
            "KUDOS".parse().unwrap(),
            BaseUrl::parse("http://m.example/").unwrap(),
            "secret-token:eighty-eight-keys",
            b"0123456789abcdef".to_vec(),
            "pw",
        )
    }

    #[test]
    fn the_products_are_the_guides() {
        let c = config();
        let piano = serde_json::to_value(piano_product(&c)).unwrap();
        assert_eq!(piano["product_id"], "p001");
        assert_eq!(piano["description"], "piano");
        assert_eq!(piano["unit"], "unit");
        assert_eq!(piano["price"], "KUDOS:20000");
        assert_eq!(piano["total_stock"], 3);
        let sonatas = serde_json::to_value(sonatas_product(&c)).unwrap();
        assert_eq!(sonatas["product_id"], "f001");
        assert_eq!(sonatas["unit"], "file");
        assert_eq!(sonatas["price"], "KUDOS:9.87");
        assert_eq!(sonatas["total_stock"], -1);
    }

    #[test]
    fn the_instance_authenticates_with_the_shops_token() {
        let m = serde_json::to_value(instance_request(&config())).unwrap();
        assert_eq!(m["id"], "default");
        assert_eq!(m["name"], "Pretty Pianos");
        assert_eq!(
            m["auth"],
            serde_json::json!({"method":"token","password":"eighty-eight-keys"})
        );
        assert!(m.get("accounts").is_none());
        let mut c = config();
        c.payto_uri = Some("payto://iban/CH9300762011623852957".into());
        let m = serde_json::to_value(instance_request(&c)).unwrap();
        assert_eq!(
            m["accounts"],
            serde_json::json!([{"payto_uri":"payto://iban/CH9300762011623852957"}])
        );
    }
}
