//! Client of a Taler merchant backend's public, wallet-facing API (docs.taler.net
//! core/api-merchant, the "Wallet" endpoints; wallet-core's `pay-merchant.ts` is the model of
//! how a wallet uses them): `GET /config`, claiming an order, paying it, proving an earlier
//! payment under a new session (`/paid`), aborting a payment, picking up refunds and the public
//! order status.
//!
//! The base URL is the instance's (`https://shop.example/` for the default instance,
//! `…/instances/$ID/` for another), exactly as the `taler://pay` URI names it. Order ids are
//! sent as one percent-encoded path segment each. Nothing here checks a signature: the
//! wallet verifies the merchant's (1101, 1104) and the exchange's (1038) signatures itself.
//!

use std::time::Duration;

use cardcash_api::merchant::payments::{
    AbortRequest, AbortResponse, WalletRefundRequest, WalletRefundResponse,
};
use cardcash_api::merchant::{
    ClaimRequest, ClaimResponse, MerchantConfig, OrderStatusPaid, OrderStatusUnpaid, PaidRequest,
    PayRequest, PayResponse,
};
use cardcash_util::{Amount, BaseUrl, HashCode};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::http::{Auth, Endpoint, HttpClient};

/// `POST /orders/$ID/paid` answer (`PaidRefundStatusResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidResponse {
    /// Whether the order was (partially) refunded.
    #[serde(default)]
    pub refunded: bool,
    /// The point-of-sale confirmation, when the order has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pos_confirmation: Option<String>,
}

/// What the public `GET /orders/$ID` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicOrderStatus {
    /// 200: paid (in this session, when one was given).
    Paid(OrderStatusPaid),
    /// 402: not paid (in this session); maybe paid as another order already.
    Unpaid(OrderStatusUnpaid),
    /// 202: the caller may not see the order; go here instead.
    Goto(serde_json::Value),
}

/// The query of a public order status request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderStatusQuery {
    /// Proves the caller knows the contract (a wallet that claimed it).
    pub h_contract: Option<HashCode>,
    /// The claim token of an unclaimed order.
    pub token: Option<String>,
    /// Paid in this session?
    pub session_id: Option<String>,
    /// Long poll: wait up to this long for the order to be paid.
    pub timeout: Duration,
    /// Long poll for refunds above this amount (`refund=`).
    pub await_refund_above: Option<Amount>,
}

/// A client of one merchant instance's public API.
#[derive(Debug, Clone)]
pub struct MerchantWalletClient {
    endpoint: Endpoint,
}

impl MerchantWalletClient {
    /// A client of the instance at `base` with its own pool.
    pub fn new(base: BaseUrl) -> Result<Self, ClientError> {
        Ok(Self::with_http(HttpClient::new()?, base))
    }

    /// Like [`Self::new`] on a shared pool.
    pub fn with_http(http: HttpClient, base: BaseUrl) -> Self {
        Self {
            endpoint: Endpoint::new(http, "the merchant", base, Auth::None),
        }
    }

    /// The instance's base URL.
    pub fn base_url(&self) -> &BaseUrl {
        self.endpoint.base_url()
    }

    /// `GET /config`.
    pub async fn config(&self) -> Result<MerchantConfig, ClientError> {
        self.endpoint.get(&["config"]).json_response().await
    }

    /// `POST /orders/$ID/claim`: the contract terms with the wallet's nonce, signed (1101).
    /// The same nonce again is answered the same; another nonce is 409 (claimed already).
    pub async fn claim(
        &self,
        order_id: &str,
        request: &ClaimRequest,
    ) -> Result<ClaimResponse, ClientError> {
        self.endpoint
            .post(&["orders", order_id, "claim"])
            .json(request)
            .json_response()
            .await
    }

    /// `POST /orders/$ID/pay`: the coins; the merchant deposits them and confirms (1104).
    /// Sending the same payment again is answered the same.
    pub async fn pay(
        &self,
        order_id: &str,
        request: &PayRequest,
    ) -> Result<PayResponse, ClientError> {
        self.endpoint
            .post(&["orders", order_id, "pay"])
            .json(request)
            .json_response()
            .await
    }

    /// `POST /orders/$ID/paid`: proves an earlier payment (its 1104 signature) and binds the
    /// order to a new session (repurchase detection).
    pub async fn paid(
        &self,
        order_id: &str,
        request: &PaidRequest,
    ) -> Result<PaidResponse, ClientError> {
        let response = self
            .endpoint
            .post(&["orders", order_id, "paid"])
            .json(request)
            .send()
            .await?;
        if response.status() == StatusCode::NO_CONTENT || response.body().is_empty() {
            return Ok(PaidResponse {
                refunded: false,
                pos_confirmation: None,
            });
        }
        response.json()
    }

    /// `POST /orders/$ID/abort`: refunds of the coins of a payment that did not complete.
    pub async fn abort(
        &self,
        order_id: &str,
        request: &AbortRequest,
    ) -> Result<AbortResponse, ClientError> {
        self.endpoint
            .post(&["orders", order_id, "abort"])
            .json(request)
            .json_response()
            .await
    }

    /// `POST /orders/$ID/refund`: the refunds granted for the order, executed at the
    /// exchange. `None` when there are none (204).
    pub async fn refund(
        &self,
        order_id: &str,
        request: &WalletRefundRequest,
    ) -> Result<Option<WalletRefundResponse>, ClientError> {
        self.endpoint
            .post(&["orders", order_id, "refund"])
            .json(request)
            .json_or_empty()
            .await
    }

    /// Public `GET /orders/$ID` (JSON): paid, unpaid (402) or elsewhere (202).
    pub async fn order_status(
        &self,
        order_id: &str,
        query: &OrderStatusQuery,
    ) -> Result<PublicOrderStatus, ClientError> {
        let mut request = self
            .endpoint
            .get(&["orders", order_id])
            .query_opt("h_contract", query.h_contract.as_ref())
            .query_opt("token", query.token.as_ref())
            .query_opt("session_id", query.session_id.as_ref())
            .query_opt("refund", query.await_refund_above.as_ref())
            .header("Accept", "application/json")
            .accept_status(StatusCode::PAYMENT_REQUIRED);
        if !query.timeout.is_zero() {
            request = request
                .query("timeout_ms", query.timeout.as_millis())
                .long_poll(query.timeout);
        }
        let response = request.send().await?;
        match response.status() {
            StatusCode::PAYMENT_REQUIRED => response.json().map(PublicOrderStatus::Unpaid),
            StatusCode::ACCEPTED => response.json().map(PublicOrderStatus::Goto),
            _ => response.json().map(PublicOrderStatus::Paid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_stay_one_segment() {
        let c =
            MerchantWalletClient::new(BaseUrl::parse("http://shop.example/instances/a/").unwrap())
                .unwrap();
        let url = c.endpoint.url(&["orders", "a/b?c", "claim"]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://shop.example/instances/a/orders/a%2Fb%3Fc/claim"
        );
    }
}
