//! The paywall of design document 007 ("payment flow"), step by step, as pure functions; the
//! handler (`http::sonatas`) only does the IO between them. Spec: spec/merchant.md §4.1, §4.4;
//! seed 004.
//!
//! 1. The resource name comes from the URL (`/sonatas` → `sonatas`).
//! 2. The session id comes from the signed `session_id` cookie ([`crate::cookie`]); a missing
//!    or tampered one is null.
//! 3. The order id comes from the (also signed) `order_id_{resource}` cookie.
//! 4. If either is null ([`current_order`]), a new order is created ([`order_request`]); a
//!    session id is made only when there is none, so a browser keeps one session for every
//!    resource it bought.
//! 5. `GET /private/orders/{order}?session_id={session}`; [`decide`] maps the answer to the
//!    next step:
//! 6. claimed (in another session, or by someone else) → [`Decision::NewOrder`]: drop the
//!    order id, back to step 4;
//! 7. paid with a refund → [`Decision::Refunded`];
//! 8. a refund the wallet has not collected yet (`refund_pending`) →
//!    [`Decision::CollectRefund`] with the backend's public order page. Steps 7 and 8 are
//!    checked in the order 8, 7: a refund still to be collected is also a non-zero refund,
//!    and step 7 would otherwise hide the link;
//! 9. paid → [`Decision::Serve`];
//! 10. otherwise → [`Decision::Redirect`] to the order status URL (the backend's page with the
//!     QR code). When the backend reports that this session already paid another order for
//!     the same fulfillment URL (`already_paid_order_id`: the wallet proved an old payment
//!     with `/paid`), [`Decision::AdoptPaidOrder`]: the order cookie takes that order and the
//!     browser comes back to the resource, which step 9 then serves.
//!
//! A 404 for the order (a cookie from another backend, a deleted order) counts as null in
//! step 3.

use cardcash_api::merchant::orders::PostOrderRequest;
use cardcash_api::merchant::status::MerchantOrderStatusResponse;
use cardcash_util::{Amount, BaseUrl, RelativeTime};
use serde_json::json;

/// A paywalled resource of the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The name in the URL and in the order cookie (`sonatas`).
    pub name: &'static str,
    /// The order summary.
    pub title: &'static str,
    pub price: Amount,
}

impl Resource {
    /// The canonical URL of the resource: the orders' fulfillment URL. It names the resource,
    /// not a purchase, so that a wallet recognises a second order for it (repurchase
    /// detection).
    pub fn url(&self, base: &BaseUrl) -> String {
        format!("{base}{}", self.name)
    }
}

/// Step 4's condition: the session and order to check in step 5, or `None` when either is
/// missing and a new order is needed.
pub fn current_order<'a>(
    session_id: Option<&'a str>,
    order_id: Option<&'a str>,
) -> Option<(&'a str, &'a str)> {
    session_id.zip(order_id)
}

/// Step 4's order: summary and price of the resource, its canonical URL as fulfillment URL and
/// as the public re-order URL (opening it without cookies starts a purchase), the configured
/// refund delay (none when zero: all sales final), a claim token, bound to the session.
pub fn order_request(
    resource: &Resource,
    base: &BaseUrl,
    session_id: &str,
    refund_delay: RelativeTime,
) -> PostOrderRequest {
    let url = resource.url(base);
    PostOrderRequest {
        order: json!({
            "summary": resource.title,
            "amount": resource.price,
            "fulfillment_url": url,
            "public_reorder_url": url,
        }),
        refund_delay: (refund_delay != RelativeTime::ZERO).then_some(refund_delay),
        payment_target: None,
        session_id: Some(session_id.to_owned()),
        inventory_products: None,
        lock_uuids: None,
        create_token: Some(true),
        otp_id: None,
    }
}

/// The client order status URL of any answer to step 5.
pub fn order_status_url(status: &MerchantOrderStatusResponse) -> &str {
    match status {
        MerchantOrderStatusResponse::Unpaid(u) => &u.order_status_url,
        MerchantOrderStatusResponse::Claimed(c) => &c.order_status_url,
        MerchantOrderStatusResponse::Paid(p) => &p.order_status_url,
    }
}

/// What to do after step 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Step 6: the order was claimed outside this session; forget it and make a new one.
    NewOrder,
    /// Step 7: paid, then refunded (`amount`); the resource is no longer served.
    Refunded { amount: Amount },
    /// Step 8: a refund of `amount` waits for the wallet at `url` (the backend's public order
    /// page).
    CollectRefund { amount: Amount, url: String },
    /// Step 9: paid in this session; serve the resource.
    Serve,
    /// Step 10, repurchase: this session paid `order_id` for the same resource; take it.
    AdoptPaidOrder { order_id: String },
    /// Step 10: not paid; send the browser to the order status URL.
    Redirect { url: String },
}

/// Steps 6–10 from the backend's answer to step 5.
pub fn decide(status: &MerchantOrderStatusResponse) -> Decision {
    match status {
        MerchantOrderStatusResponse::Claimed(_) => Decision::NewOrder,
        MerchantOrderStatusResponse::Paid(p) if p.refund_pending => Decision::CollectRefund {
            amount: p.refund_amount,
            url: p.order_status_url.clone(),
        },
        MerchantOrderStatusResponse::Paid(p) if p.refunded || !p.refund_amount.is_zero() => {
            Decision::Refunded {
                amount: p.refund_amount,
            }
        }
        MerchantOrderStatusResponse::Paid(_) => Decision::Serve,
        MerchantOrderStatusResponse::Unpaid(u) => match &u.already_paid_order_id {
            Some(order_id) => Decision::AdoptPaidOrder {
                order_id: order_id.clone(),
            },
            None => Decision::Redirect {
                url: u.order_status_url.clone(),
            },
        },
    }
}

/// How often one request may go back to step 4 before giving up: one claimed order is
/// replaced once; a backend that reports a fresh order as claimed again is broken.
pub const MAX_ROUNDS: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(s: &str) -> Amount {
        s.parse().unwrap()
    }

    fn sonatas() -> Resource {
        Resource {
            name: "sonatas",
            title: "Beethoven Sonatas",
            price: amount("KUDOS:9.87"),
        }
    }

    fn base() -> BaseUrl {
        BaseUrl::parse("https://shop.example/pianos/").unwrap()
    }

    /// The answers as the backend sends them (JSON), decoded with the merchant's types.
    fn paid(refunded: bool, pending: bool, refund: &str) -> MerchantOrderStatusResponse {
        serde_json::from_value(json!({
            "order_status": "paid", "refunded": refunded, "refund_pending": pending,
            "wired": false, "deposit_total": "KUDOS:9.86", "exchange_code": 0,
            "exchange_http_status": 0, "refund_amount": refund, "contract_terms": {},
            "last_payment": {"t_s": 1}, "wire_details": [], "wire_reports": [],
            "refund_details": [],
            "order_status_url": "https://m.example/orders/A?h_contract=H&session_id=S"
        }))
        .unwrap()
    }

    fn unpaid(already: Option<&str>) -> MerchantOrderStatusResponse {
        let mut v = json!({
            "order_status": "unpaid", "taler_pay_uri": "taler://pay/m.example/A/S?c=T",
            "creation_time": {"t_s": 1}, "summary": "Beethoven Sonatas",
            "order_status_url": "https://m.example/orders/A?token=T&session_id=S"
        });
        if let Some(id) = already {
            v["already_paid_order_id"] = json!(id);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn step_4_needs_both_cookies() {
        assert_eq!(current_order(None, None), None);
        assert_eq!(current_order(Some("S"), None), None);
        assert_eq!(current_order(None, Some("A")), None);
        assert_eq!(current_order(Some("S"), Some("A")), Some(("S", "A")));
    }

    #[test]
    fn step_4_order_names_the_resource_and_binds_the_session() {
        let r = order_request(&sonatas(), &base(), "S1", RelativeTime::from_secs(60));
        let url = "https://shop.example/pianos/sonatas";
        assert_eq!(
            r.order,
            json!({"summary": "Beethoven Sonatas", "amount": "KUDOS:9.87",
                "fulfillment_url": url, "public_reorder_url": url}),
            "no order_id: the backend generates one"
        );
        assert_eq!(r.session_id.as_deref(), Some("S1"));
        assert_eq!(r.create_token, Some(true));
        assert_eq!(r.refund_delay, Some(RelativeTime::from_secs(60)));
        // Stable: a second order for the same resource has the same fulfillment URL.
        let again = order_request(&sonatas(), &base(), "S2", RelativeTime::from_secs(60));
        assert_eq!(again.order["fulfillment_url"], r.order["fulfillment_url"]);
        // All sales final: no refund delay at all.
        let fin = order_request(&sonatas(), &base(), "S1", RelativeTime::ZERO);
        assert_eq!(fin.refund_delay, None);
    }

    #[test]
    fn step_6_claimed_means_a_new_order() {
        let claimed: MerchantOrderStatusResponse = serde_json::from_value(json!({
            "order_status": "claimed", "contract_terms": {},
            "order_status_url": "https://m.example/orders/A?h_contract=H&session_id=S"
        }))
        .unwrap();
        assert_eq!(decide(&claimed), Decision::NewOrder);
        assert_eq!(
            order_status_url(&claimed),
            "https://m.example/orders/A?h_contract=H&session_id=S"
        );
    }

    #[test]
    fn step_7_a_collected_refund_shows_the_refunded_page() {
        assert_eq!(
            decide(&paid(true, false, "KUDOS:9.87")),
            Decision::Refunded {
                amount: amount("KUDOS:9.87")
            }
        );
        // A partial refund is a refund too.
        assert_eq!(
            decide(&paid(false, false, "KUDOS:1")),
            Decision::Refunded {
                amount: amount("KUDOS:1")
            }
        );
    }

    #[test]
    fn step_8_a_pending_refund_links_to_the_backend() {
        assert_eq!(
            decide(&paid(true, true, "KUDOS:2")),
            Decision::CollectRefund {
                amount: amount("KUDOS:2"),
                url: "https://m.example/orders/A?h_contract=H&session_id=S".into()
            }
        );
    }

    #[test]
    fn step_9_paid_serves() {
        assert_eq!(decide(&paid(false, false, "KUDOS:0")), Decision::Serve);
    }

    #[test]
    fn step_10_unpaid_redirects_to_the_status_page() {
        assert_eq!(
            decide(&unpaid(None)),
            Decision::Redirect {
                url: "https://m.example/orders/A?token=T&session_id=S".into()
            }
        );
    }

    #[test]
    fn step_10_a_repurchase_adopts_the_paid_order() {
        assert_eq!(
            decide(&unpaid(Some("OLD"))),
            Decision::AdoptPaidOrder {
                order_id: "OLD".into()
            }
        );
    }
}
