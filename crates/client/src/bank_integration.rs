//! Client of the Taler Bank Integration API (docs.taler.net core/api-bank-integration): what a
//! wallet asks about a withdrawal operation it scanned from a `taler://withdraw` URI, and how
//! it registers its reserve there. C2EC serves it at `{c2ec}/taler-integration/`.
//!
//! Withdrawal ids are plain strings here: C2EC's are WOPIDs, other banks' are UUIDs; each is
//! sent as one percent-encoded path segment.

use std::time::Duration;

use cardcash_api::bank_integration::{
    BankIntegrationConfig, BankWithdrawalOperationPostRequest, BankWithdrawalOperationPostResponse,
    BankWithdrawalOperationStatus, WithdrawalStatus,
};
use cardcash_util::BaseUrl;

use crate::error::ClientError;
use crate::http::{Auth, Endpoint, HttpClient};

/// A client of one bank-integration API (it needs no credentials: the withdrawal id is one).
#[derive(Debug, Clone)]
pub struct BankIntegrationClient {
    endpoint: Endpoint,
}

impl BankIntegrationClient {
    /// A client of the API at `base` (`…/taler-integration/`, the `bank_integration_base` of a
    /// `taler://withdraw` URI) with its own pool.
    pub fn new(base: BaseUrl) -> Result<Self, ClientError> {
        Ok(Self::with_http(HttpClient::new()?, base))
    }

    /// Like [`Self::new`] on a shared pool.
    pub fn with_http(http: HttpClient, base: BaseUrl) -> Self {
        Self {
            endpoint: Endpoint::new(http, "the bank integration API", base, Auth::None),
        }
    }

    /// The same client, called `service` in error messages (`"C2EC"`).
    pub fn named(self, service: &str) -> Self {
        Self {
            endpoint: self.endpoint.named(service),
        }
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &BaseUrl {
        self.endpoint.base_url()
    }

    /// `GET /config`.
    pub async fn config(&self) -> Result<BankIntegrationConfig, ClientError> {
        self.endpoint.get(&["config"]).json_response().await
    }

    /// `GET /withdrawal-operation/$WOPID`: the operation's status, waiting up to `timeout` for
    /// it to differ from `old_state` (`Duration::ZERO`: answer at once).
    pub async fn withdrawal_operation(
        &self,
        wopid: &str,
        old_state: Option<WithdrawalStatus>,
        timeout: Duration,
    ) -> Result<BankWithdrawalOperationStatus, ClientError> {
        let mut request = self
            .endpoint
            .get(&["withdrawal-operation", wopid])
            .query_opt("old_state", old_state.map(WithdrawalStatus::as_str));
        if !timeout.is_zero() {
            request = request
                .query("timeout_ms", timeout.as_millis())
                .long_poll(timeout);
        }
        request.json_response().await
    }

    /// `POST /withdrawal-operation/$WOPID`: the wallet selects the exchange and registers its
    /// reserve public key. Repeating the same selection is accepted; a different one is a 409.
    pub async fn select(
        &self,
        wopid: &str,
        selection: &BankWithdrawalOperationPostRequest,
    ) -> Result<BankWithdrawalOperationPostResponse, ClientError> {
        self.endpoint
            .post(&["withdrawal-operation", wopid])
            .json(selection)
            .json_response()
            .await
    }

    /// `POST /withdrawal-operation/$WOPID/abort`: aborts the operation (409 once confirmed).
    pub async fn abort(&self, wopid: &str) -> Result<(), ClientError> {
        self.endpoint
            .post(&["withdrawal-operation", wopid, "abort"])
            .no_content()
            .await
    }
}
