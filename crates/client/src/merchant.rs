//! Client of a GNU Taler merchant backend's private API (docs.taler.net core/api-merchant; our
//! notes spec/merchant.md §1.2–§1.5, §2), as a shop frontend uses it: instance setup
//! (`POST /management/instances`, `POST /private/accounts`), products and locks, orders, their
//! status with `session_id` long polling (design document 007), order history and refunds.
//!
//! One client acts for one instance with its bearer token (`secret-token:…`); the instance
//! `default` is served at the backend's root, any other at `{backend}/instances/{id}/`.
//! Management requests (creating the instance) go to the backend's root, with the management
//! token when one is given (else the instance's own).
//!
//! The wallet-facing endpoints (claim, pay, public status) are another client
//! (`merchant_wallet`).
//!
//! Instances and accounts use `cardcash_api::merchant::instances`. Interim wire types: the
//! other request and response bodies below are the minimal shapes this client needs, kept HERE
//! (not in `cardcash-api`) while the merchant's owners write
//! `cardcash_api::merchant::{orders, status, inventory}`; they will be replaced by those types
//! as they land. Every response type ignores fields it does not know and defaults optional
//! ones, so a richer backend answer decodes.

use std::time::Duration;

use cardcash_api::merchant::instances::{
    AccountAddDetails, AccountAddResponse, InstanceConfigurationMessage,
};
use cardcash_util::{Amount, BaseUrl, RelativeTime, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::http::{Auth, Endpoint, HttpClient};

/// The instance the backend serves at its root.
pub const DEFAULT_INSTANCE: &str = "default";

/// `POST /private/products` body (`ProductAddDetail`; interim type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductAddDetail {
    pub product_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub product_name: Option<String>,
    pub description: String,
    pub unit: String,
    /// Price per unit.
    pub price: Amount,
    /// `-1` = unlimited.
    pub total_stock: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image: Option<String>,
    #[serde(default)]
    pub taxes: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_restock: Option<Timestamp>,
}

/// `GET /private/products/$ID` answer (`ProductDetail`, the fields a shop shows; interim type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductDetail {
    #[serde(default)]
    pub product_name: Option<String>,
    pub description: String,
    pub unit: String,
    pub price: Amount,
    /// `-1` = unlimited.
    pub total_stock: i64,
    #[serde(default)]
    pub total_sold: u64,
    #[serde(default)]
    pub total_lost: u64,
    /// Units held by carts' and unpaid orders' locks, when the backend reports it.
    #[serde(default)]
    pub total_locked: Option<u64>,
    #[serde(default)]
    pub next_restock: Option<Timestamp>,
}

impl ProductDetail {
    /// Units still to be had (`None`: unlimited): stock − sold − lost − locked (when known).
    pub fn available(&self) -> Option<u64> {
        let total = u64::try_from(self.total_stock).ok()?;
        Some(
            total
                .saturating_sub(self.total_sold)
                .saturating_sub(self.total_lost)
                .saturating_sub(self.total_locked.unwrap_or(0)),
        )
    }
}

/// `POST /private/products/$ID/lock` body (interim type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    pub lock_uuid: String,
    pub duration: RelativeTime,
    /// `0` releases the lock.
    pub quantity: u64,
}

/// The 410 answer of a lock or an order when the stock is short (interim type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfStockResponse {
    pub product_id: String,
    pub requested_quantity: u64,
    pub available_quantity: u64,
    #[serde(default)]
    pub restock_expected: Option<Timestamp>,
}

/// A line of an order taken from the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryProduct {
    pub product_id: String,
    pub quantity: u64,
}

/// The `order` of a [`PostOrderRequest`] (a v0 order with the fields a shop sets; interim
/// type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub summary: String,
    pub amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fulfillment_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fulfillment_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub public_reorder_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extra: Option<serde_json::Value>,
}

/// `POST /private/orders` body (interim type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostOrderRequest {
    pub order: Order,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refund_delay: Option<RelativeTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub inventory_products: Vec<InventoryProduct>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub lock_uuids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub create_token: Option<bool>,
}

/// `POST /private/orders` answer (interim type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostOrderResponse {
    pub order_id: String,
    /// The claim token, when the order has one.
    #[serde(default)]
    pub token: Option<String>,
}

/// `GET /private/orders/$ID` answer, by `order_status` (interim type; the fields design
/// document 007 needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "order_status", rename_all = "lowercase")]
pub enum MerchantOrderStatusResponse {
    /// Paid (in the session asked about, if one was given).
    Paid {
        #[serde(default)]
        refunded: bool,
        #[serde(default)]
        refund_pending: bool,
        refund_amount: Amount,
        order_status_url: String,
        #[serde(default)]
        contract_terms: Option<serde_json::Value>,
    },
    /// Claimed by a wallet but not paid in the session asked about.
    Claimed {
        order_status_url: String,
        #[serde(default)]
        contract_terms: Option<serde_json::Value>,
    },
    /// Not claimed yet.
    Unpaid {
        #[serde(default)]
        taler_pay_uri: Option<String>,
        order_status_url: String,
        #[serde(default)]
        already_paid_order_id: Option<String>,
        #[serde(default)]
        summary: Option<String>,
        #[serde(default)]
        total_amount: Option<Amount>,
    },
}

impl MerchantOrderStatusResponse {
    /// The client order status URL (the backend's public page for this order and session).
    pub fn order_status_url(&self) -> &str {
        match self {
            Self::Paid {
                order_status_url, ..
            }
            | Self::Claimed {
                order_status_url, ..
            }
            | Self::Unpaid {
                order_status_url, ..
            } => order_status_url,
        }
    }
}

/// One entry of `GET /private/orders` (interim type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderHistoryEntry {
    pub order_id: String,
    #[serde(default)]
    pub row_id: Option<u64>,
    pub timestamp: Timestamp,
    pub amount: Amount,
    pub summary: String,
    #[serde(default)]
    pub refundable: bool,
    #[serde(default)]
    pub paid: bool,
}

/// `GET /private/orders` answer (interim type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderHistory {
    pub orders: Vec<OrderHistoryEntry>,
}

/// `POST /private/orders/$ID/refund` body (interim type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    pub refund: Amount,
    pub reason: String,
}

/// `POST /private/orders/$ID/refund` answer (interim type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantRefundResponse {
    pub taler_refund_uri: String,
    #[serde(default)]
    pub h_contract: Option<String>,
}

/// A client of one merchant instance's private API.
#[derive(Debug, Clone)]
pub struct MerchantClient {
    /// The instance's base URL with its token.
    instance: Endpoint,
    /// The backend's root with the management token.
    management: Endpoint,
    instance_id: String,
}

impl MerchantClient {
    /// A client of instance `instance` at the backend `backend` (its root, where `/config` is),
    /// presenting `token` (`secret-token:…`), with its own pool.
    pub fn new(
        backend: BaseUrl,
        instance: &str,
        token: impl Into<String>,
    ) -> Result<Self, ClientError> {
        Self::with_http(HttpClient::new()?, backend, instance, token)
    }

    /// Like [`Self::new`] on a shared pool.
    pub fn with_http(
        http: HttpClient,
        backend: BaseUrl,
        instance: &str,
        token: impl Into<String>,
    ) -> Result<Self, ClientError> {
        let token = token.into();
        let root = Endpoint::new(
            http,
            "the merchant backend",
            backend,
            Auth::bearer(token.clone()),
        );
        let instance_endpoint = if instance == DEFAULT_INSTANCE {
            root.clone()
        } else {
            root.below(&["instances", instance], "the merchant backend")?
        };
        Ok(Self {
            instance: instance_endpoint,
            management: root,
            instance_id: instance.to_owned(),
        })
    }

    /// The same client, sending `token` (`secret-token:…`) on management requests instead of
    /// the instance's own.
    pub fn with_management_token(mut self, token: impl Into<String>) -> Self {
        self.management = Endpoint::new(
            self.management.http().clone(),
            "the merchant backend",
            self.management.base_url().clone(),
            Auth::bearer(token),
        );
        self
    }

    /// The instance's id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The instance's base URL.
    pub fn instance_base_url(&self) -> &BaseUrl {
        self.instance.base_url()
    }

    /// `GET /management/instances/$ID`: whether the instance exists (any 2xx answer).
    pub async fn instance_exists(&self) -> Result<bool, ClientError> {
        match self
            .management
            .get(&["management", "instances", &self.instance_id])
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /management/instances`.
    pub async fn create_instance(
        &self,
        request: &InstanceConfigurationMessage,
    ) -> Result<(), ClientError> {
        self.management
            .post(&["management", "instances"])
            .json(request)
            .no_content()
            .await
    }

    /// `POST /private/accounts`: adds a bank account to the instance.
    pub async fn add_account(&self, payto_uri: &str) -> Result<AccountAddResponse, ClientError> {
        self.instance
            .post(&["private", "accounts"])
            .json(&AccountAddDetails {
                payto_uri: payto_uri.to_owned(),
                credit_facade_url: None,
                credit_facade_credentials: None,
            })
            .json_response()
            .await
    }

    /// `POST /private/products`.
    pub async fn create_product(&self, product: &ProductAddDetail) -> Result<(), ClientError> {
        self.instance
            .post(&["private", "products"])
            .json(product)
            .no_content()
            .await
    }

    /// `GET /private/products/$ID`; `None` when the backend does not know it.
    pub async fn product(&self, product_id: &str) -> Result<Option<ProductDetail>, ClientError> {
        match self
            .instance
            .get(&["private", "products", product_id])
            .json_response()
            .await
        {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /private/products/$ID/lock`: holds `quantity` units for `duration` under
    /// `lock_uuid` (the same UUID again replaces its lock; `0` releases it). A 410 answer
    /// (stock short) is [`LockOutcome::OutOfStock`].
    pub async fn lock_product(
        &self,
        product_id: &str,
        lock_uuid: &str,
        duration: Duration,
        quantity: u64,
    ) -> Result<LockOutcome, ClientError> {
        let result = self
            .instance
            .post(&["private", "products", product_id, "lock"])
            .json(&LockRequest {
                lock_uuid: lock_uuid.to_owned(),
                duration: RelativeTime::from_duration(duration),
                quantity,
            })
            .no_content()
            .await;
        match result {
            Ok(()) => Ok(LockOutcome::Locked),
            Err(e) if e.status() == Some(410) => Ok(LockOutcome::OutOfStock(e.body_as())),
            Err(e) => Err(e),
        }
    }

    /// `POST /private/orders`. A 410 answer (stock short) is [`OrderOutcome::OutOfStock`].
    pub async fn create_order(
        &self,
        request: &PostOrderRequest,
    ) -> Result<OrderOutcome, ClientError> {
        let result = self
            .instance
            .post(&["private", "orders"])
            .json(request)
            .json_response()
            .await;
        match result {
            Ok(created) => Ok(OrderOutcome::Created(created)),
            Err(e) if e.status() == Some(410) => Ok(OrderOutcome::OutOfStock(e.body_as())),
            Err(e) => Err(e),
        }
    }

    /// `GET /private/orders/$ID?session_id=…&timeout_ms=…`: the order's status as seen from
    /// `session_id`, waiting up to `timeout` for a payment when it is not paid
    /// (`Duration::ZERO`: answer at once).
    pub async fn order_status(
        &self,
        order_id: &str,
        session_id: Option<&str>,
        timeout: Duration,
    ) -> Result<MerchantOrderStatusResponse, ClientError> {
        let mut request = self
            .instance
            .get(&["private", "orders", order_id])
            .query_opt("session_id", session_id);
        if !timeout.is_zero() {
            request = request
                .query("timeout_ms", timeout.as_millis())
                .long_poll(timeout);
        }
        request.json_response().await
    }

    /// `GET /private/orders?limit=-N`: the `limit` most recent orders, newest first.
    pub async fn recent_orders(&self, limit: u32) -> Result<OrderHistory, ClientError> {
        self.instance
            .get(&["private", "orders"])
            .query("limit", -i64::from(limit))
            .json_response()
            .await
    }

    /// `POST /private/orders/$ID/refund`: grants a refund of `refund` (the backend's
    /// semantics: the order's refund total grows to include it).
    pub async fn refund(
        &self,
        order_id: &str,
        refund: Amount,
        reason: &str,
    ) -> Result<MerchantRefundResponse, ClientError> {
        self.instance
            .post(&["private", "orders", order_id, "refund"])
            .json(&RefundRequest {
                refund,
                reason: reason.to_owned(),
            })
            .json_response()
            .await
    }
}

/// What a lock request achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    Locked,
    /// 410: not enough stock (the backend's explanation, when it sent one).
    OutOfStock(Option<OutOfStockResponse>),
}

/// What an order creation achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome {
    Created(PostOrderResponse),
    /// 410: an inventory product is short.
    OutOfStock(Option<OutOfStockResponse>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(instance: &str) -> MerchantClient {
        MerchantClient::new(
            BaseUrl::parse("http://merchant.example/").unwrap(),
            instance,
            "secret-token:abc",
        )
        .unwrap()
    }

    #[test]
    fn instances_live_below_the_root_except_the_default() {
        assert_eq!(
            client("default").instance_base_url().as_str(),
            "http://merchant.example/"
        );
        assert_eq!(
            client("pianos").instance_base_url().as_str(),
            "http://merchant.example/instances/pianos/"
        );
    }

    #[test]
    fn the_token_is_never_printed() {
        let shown = format!("{:?}", client("pianos"));
        assert!(!shown.contains("abc"), "{shown}");
    }

    #[test]
    fn order_status_decodes_each_state() {
        let paid: MerchantOrderStatusResponse = serde_json::from_str(
            r#"{"order_status":"paid","refunded":true,"refund_pending":true,
            "refund_amount":"KUDOS:1","order_status_url":"http://m/orders/A","wired":false,
            "deposit_total":"KUDOS:9.87","contract_terms":{"x":1}}"#,
        )
        .unwrap();
        assert!(matches!(
            &paid,
            MerchantOrderStatusResponse::Paid { refunded: true, refund_pending: true, refund_amount, .. }
                if refund_amount.to_string() == "KUDOS:1"
        ));
        let claimed: MerchantOrderStatusResponse = serde_json::from_str(
            r#"{"order_status":"claimed","order_status_url":"http://m/orders/A?h_contract=X","contract_terms":{}}"#,
        )
        .unwrap();
        assert_eq!(claimed.order_status_url(), "http://m/orders/A?h_contract=X");
        let unpaid: MerchantOrderStatusResponse = serde_json::from_str(
            r#"{"order_status":"unpaid","taler_pay_uri":"taler://pay/m/A/S?c=T",
            "order_status_url":"http://m/orders/A?token=T&session_id=S",
            "creation_time":{"t_s":1},"summary":"s","already_paid_order_id":"OLD"}"#,
        )
        .unwrap();
        assert!(matches!(
            unpaid,
            MerchantOrderStatusResponse::Unpaid { already_paid_order_id: Some(ref id), .. } if id == "OLD"
        ));
    }

    #[test]
    fn order_requests_leave_out_what_is_not_set() {
        let request = PostOrderRequest {
            order: Order {
                summary: "Beethoven Sonatas".into(),
                amount: "KUDOS:9.87".parse().unwrap(),
                order_id: None,
                fulfillment_url: Some("https://shop.example/sonatas".into()),
                fulfillment_message: None,
                public_reorder_url: None,
                extra: None,
            },
            refund_delay: None,
            session_id: Some("S".into()),
            inventory_products: vec![],
            lock_uuids: vec![],
            create_token: Some(true),
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({"order":{"summary":"Beethoven Sonatas","amount":"KUDOS:9.87",
                "fulfillment_url":"https://shop.example/sonatas"},
                "session_id":"S","create_token":true})
        );
    }

    #[test]
    fn stock_is_what_is_left() {
        let p = |total, sold, lost, locked| ProductDetail {
            product_name: None,
            description: "piano".into(),
            unit: "unit".into(),
            price: "KUDOS:20000".parse().unwrap(),
            total_stock: total,
            total_sold: sold,
            total_lost: lost,
            total_locked: locked,
            next_restock: None,
        };
        assert_eq!(p(3, 1, 0, None).available(), Some(2));
        assert_eq!(p(3, 1, 1, Some(2)).available(), Some(0));
        assert_eq!(p(-1, 5, 0, None).available(), None);
    }
}
