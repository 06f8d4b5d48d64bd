//! The piano cart (merchant guide, "shopping cart experience"): a signed cookie holds the cart's
//! lock UUID and how many pianos it holds; the backend holds that many under the lock
//! (`POST /private/products/p001/lock`, the same UUID again replaces the quantity, 0 releases
//! it) for the configured duration, after which the backend lets them go on its own. Checkout
//! moves the lock into the order (`lock_uuids` + `inventory_products`).
//!
//! Pure rules here; the IO is in `http::cart`.

use cardcash_api::merchant::orders::{InventoryProduct, PostOrderRequest};
use cardcash_util::{Amount, AmountError, BaseUrl, RelativeTime};
use serde_json::json;

/// Most pianos one cart holds.
pub const MAX_QUANTITY: u64 = 9;

/// A cart: its lock at the backend and the number of pianos in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    pub lock_uuid: String,
    pub quantity: u64,
}

impl Cart {
    /// An empty cart with a fresh lock UUID.
    pub fn new(lock_uuid: String) -> Self {
        Self {
            lock_uuid,
            quantity: 0,
        }
    }

    /// The cookie value: `UUID:QUANTITY`.
    pub fn to_cookie(&self) -> String {
        format!("{}:{}", self.lock_uuid, self.quantity)
    }

    /// Reads a (verified) cookie value.
    pub fn from_cookie(value: &str) -> Option<Self> {
        let (uuid, quantity) = value.split_once(':')?;
        let quantity: u64 = quantity.parse().ok()?;
        let uuid_ok = !uuid.is_empty()
            && uuid.len() <= 64
            && uuid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        (uuid_ok && quantity <= MAX_QUANTITY).then(|| Self {
            lock_uuid: uuid.to_owned(),
            quantity,
        })
    }

    /// The quantity after adding one piano (`None`: the cart is full).
    pub fn quantity_after_add(&self) -> Option<u64> {
        (self.quantity < MAX_QUANTITY).then_some(self.quantity + 1)
    }

    /// The quantity after removing one piano (never below 0).
    pub fn quantity_after_remove(&self) -> u64 {
        self.quantity.saturating_sub(1)
    }

    /// The cart's total at `price` per piano.
    pub fn total(&self, price: &Amount) -> Result<Amount, AmountError> {
        price.checked_mul(self.quantity)
    }
}

/// The checkout's order: the pianos of the cart from the inventory, the cart's lock moved into
/// the order, the shop's own order id in a fulfillment URL of its own (a piano is bought per
/// purchase, so each order needs a URL of its own or a wallet would take a second piano
/// for a repurchase of the first), no session (nothing is paywalled).
pub fn checkout_request(
    cart: &Cart,
    product_id: &str,
    price: &Amount,
    base: &BaseUrl,
    order_id: &str,
    refund_delay: RelativeTime,
) -> Result<PostOrderRequest, AmountError> {
    let pianos = if cart.quantity == 1 {
        "piano".to_owned()
    } else {
        format!("{} pianos", cart.quantity)
    };
    Ok(PostOrderRequest {
        order: json!({
            "summary": format!("Pretty Pianos: {pianos}"),
            "amount": cart.total(price)?,
            "order_id": order_id,
            "fulfillment_url": format!("{base}delivery/{order_id}"),
            "public_reorder_url": format!("{base}cart"),
        }),
        refund_delay: (refund_delay != RelativeTime::ZERO).then_some(refund_delay),
        payment_target: None,
        session_id: None,
        inventory_products: Some(vec![InventoryProduct {
            product_id: product_id.to_owned(),
            quantity: cart.quantity,
        }]),
        lock_uuids: Some(vec![cart.lock_uuid.clone()]),
        create_token: Some(true),
        otp_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "6b7c0a2e-0c1f-4c83-9d0b-1a2b3c4d5e6f";

    #[test]
    fn the_cookie_round_trips_and_refuses_junk() {
        let cart = Cart {
            lock_uuid: UUID.into(),
            quantity: 2,
        };
        assert_eq!(Cart::from_cookie(&cart.to_cookie()), Some(cart));
        for junk in ["", ":1", "x", "a:b", "a;b:1", &format!("{UUID}:10")] {
            assert_eq!(Cart::from_cookie(junk), None, "{junk}");
        }
    }

    #[test]
    fn add_and_remove_stay_within_bounds() {
        let mut cart = Cart::new(UUID.into());
        assert_eq!(cart.quantity_after_remove(), 0);
        assert_eq!(cart.quantity_after_add(), Some(1));
        cart.quantity = MAX_QUANTITY;
        assert_eq!(cart.quantity_after_add(), None);
        assert_eq!(cart.quantity_after_remove(), MAX_QUANTITY - 1);
    }

    #[test]
    fn checkout_moves_the_lock_into_a_per_purchase_order() {
        let cart = Cart {
            lock_uuid: UUID.into(),
            quantity: 2,
        };
        let base = BaseUrl::parse("https://shop.example/").unwrap();
        let price: Amount = "KUDOS:20000".parse().unwrap();
        let r =
            checkout_request(&cart, "p001", &price, &base, "piano-X1", RelativeTime::ZERO).unwrap();
        assert_eq!(r.order["amount"], "KUDOS:40000");
        assert_eq!(r.order["summary"], "Pretty Pianos: 2 pianos");
        assert_eq!(r.order["order_id"], "piano-X1");
        assert_eq!(
            r.order["fulfillment_url"],
            "https://shop.example/delivery/piano-X1"
        );
        assert_eq!(
            r.inventory_products,
            Some(vec![InventoryProduct {
                product_id: "p001".into(),
                quantity: 2
            }])
        );
        assert_eq!(r.lock_uuids, Some(vec![UUID.to_owned()]));
        assert_eq!(r.session_id, None);
        assert_eq!(r.refund_delay, None);
    }
}
