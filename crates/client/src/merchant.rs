//! Client of a GNU Taler merchant backend's private API (docs.taler.net core/api-merchant; our
//! notes spec/merchant.md §1.2–§1.5, §2), as a shop frontend uses it: instance setup
//! (`POST /management/instances`, `POST /private/accounts`), products and locks, orders, their
//! status with `session_id` long polling (design document 007), order history and refunds,
//! settlement (the transfers, the bank's report of one, deleting one) and which order a session
//! paid (`GET /sessions/$SESSION_ID`).
//!
//! One client acts for one instance with its bearer token (`secret-token:…`); the instance
//! `default` is served at the backend's root, any other at `{backend}/instances/{id}/`.
//! Management requests (creating the instance) go to the backend's root, with the management
//! token when one is given (else the instance's own).
//!
//! The wallet-facing endpoints (claim, pay, public status) are another client
//! (`merchant_wallet`).
//!
//! The wire types are the merchant's own, `cardcash_api::merchant::{instances, inventory,
//! orders, status, payments, settlement}`.

use std::time::Duration;

use cardcash_api::merchant::instances::{
    AccountAddDetails, AccountAddResponse, InstanceConfigurationMessage,
};
use cardcash_api::merchant::inventory::{
    LockRequest, OutOfStockResponse, ProductAddDetail, ProductDetail,
};
use cardcash_api::merchant::orders::{OrderHistory, PostOrderRequest, PostOrderResponse};
use cardcash_api::merchant::payments::{MerchantRefundResponse, RefundRequest};
use cardcash_api::merchant::settlement::{
    GetSessionStatusResponse, TransferInformation, TransferList,
};
use cardcash_api::merchant::status::MerchantOrderStatusResponse;
use cardcash_util::{Amount, BaseUrl, RelativeTime};

use crate::error::ClientError;
use crate::http::{Auth, Endpoint, HttpClient};

/// The instance the backend serves at its root.
pub const DEFAULT_INSTANCE: &str = "default";

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

    /// `GET {instance}/private`: whether the instance exists (the backend answers 404 for an
    /// unknown instance before it looks at credentials; 2xx means it exists and the token
    /// opens it). Asked with the instance's own token, so a shop needs no management token
    /// once its instance exists.
    pub async fn instance_exists(&self) -> Result<bool, ClientError> {
        match self.instance.get(&["private"]).send().await {
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
                quantity: Some(quantity),
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

    /// `GET /private/transfers?limit=…&offset=…`: one page of the instance's transfers
    /// (negative `limit`: the newest first, below `offset`).
    pub async fn transfers(
        &self,
        limit: i64,
        offset: Option<u64>,
    ) -> Result<TransferList, ClientError> {
        self.instance
            .get(&["private", "transfers"])
            .query("limit", limit)
            .query_opt("offset", offset)
            .json_response()
            .await
    }

    /// `POST /private/transfers`: reports a wire transfer that arrived at the instance's bank
    /// account (409: it disagrees with an earlier report or with the exchange).
    pub async fn report_transfer(&self, info: &TransferInformation) -> Result<(), ClientError> {
        self.instance
            .post(&["private", "transfers"])
            .json(info)
            .no_content()
            .await
    }

    /// `DELETE /private/transfers/$TID`: deletes a transfer no order was reconciled with.
    pub async fn delete_transfer(&self, transfer_serial_id: u64) -> Result<(), ClientError> {
        self.instance
            .request(
                reqwest::Method::DELETE,
                &["private", "transfers", &transfer_serial_id.to_string()],
            )
            .no_content()
            .await
    }

    /// `GET /sessions/$SESSION_ID?fulfillment_url=…&timeout_ms=…`: which order the session
    /// paid for `fulfillment_url`, waiting up to `timeout` for a payment.
    pub async fn session_status(
        &self,
        session_id: &str,
        fulfillment_url: &str,
        timeout: Duration,
    ) -> Result<SessionStatus, ClientError> {
        let mut request = self
            .instance
            .get(&["sessions", session_id])
            .without_auth()
            .query("fulfillment_url", fulfillment_url);
        if !timeout.is_zero() {
            request = request
                .query("timeout_ms", timeout.as_millis())
                .long_poll(timeout);
        }
        match request.send().await {
            Ok(r) => {
                let body: GetSessionStatusResponse = r.json()?;
                Ok(if r.status().as_u16() == 202 {
                    SessionStatus::Unpaid(body.order_id)
                } else {
                    SessionStatus::Paid(body.order_id)
                })
            }
            Err(e) if e.status() == Some(404) => Ok(SessionStatus::Unknown),
            Err(e) => Err(e),
        }
    }
}

/// What `GET /sessions/$SESSION_ID` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    /// 200: this order was paid in the session.
    Paid(String),
    /// 202: this order was created for the session, not paid yet.
    Unpaid(String),
    /// 404: no order of the session for the fulfillment URL.
    Unknown,
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
}
