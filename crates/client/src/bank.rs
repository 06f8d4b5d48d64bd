//! Client of the bank's Core Bank API subset (docs.taler.net core/api-corebank): config,
//! accounts, balances, transactions between accounts, bearer tokens — and the way to each
//! exchange account's Wire Gateway (`/accounts/{name}/taler-wire-gateway/`).
//!
//! Credentials are those of the account the requests act for (HTTP Basic, or a bearer token
//! from [`BankClient::create_token`]); the admin's token for the admin-only listing.

use cardcash_api::corebank::{
    AccountData, BankAccountTransactionInfo, BankAccountTransactionsResponse, CoreConfig,
    CreateTransactionRequest, CreateTransactionResponse, ListAccountsResponse,
    RegisterAccountRequest, RegisterAccountResponse, TokenRequest, TokenSuccessResponse,
};
use cardcash_util::BaseUrl;

use crate::error::ClientError;
use crate::http::{Auth, Endpoint, HttpClient};
use crate::wire_gateway::{HistoryRequest, WireGatewayClient};

/// A client of one bank, acting with one set of credentials.
#[derive(Debug, Clone)]
pub struct BankClient {
    endpoint: Endpoint,
}

impl BankClient {
    /// A client of the bank at `base` (its root, where `/config` is) with its own pool.
    pub fn new(base: BaseUrl, auth: Auth) -> Result<Self, ClientError> {
        Ok(Self::with_http(HttpClient::new()?, base, auth))
    }

    /// Like [`Self::new`] on a shared pool.
    pub fn with_http(http: HttpClient, base: BaseUrl, auth: Auth) -> Self {
        Self {
            endpoint: Endpoint::new(http, "the bank", base, auth),
        }
    }

    /// The same bank and pool with other credentials.
    pub fn with_auth(&self, auth: Auth) -> Self {
        Self::with_http(
            self.endpoint.http().clone(),
            self.endpoint.base_url().clone(),
            auth,
        )
    }

    /// The bank's base URL.
    pub fn base_url(&self) -> &BaseUrl {
        self.endpoint.base_url()
    }

    /// The Wire Gateway of the exchange account `account`, with these credentials.
    pub fn wire_gateway(&self, account: &str) -> Result<WireGatewayClient, ClientError> {
        let endpoint = self.endpoint.below(
            &["accounts", account, "taler-wire-gateway"],
            "the bank's Wire Gateway",
        )?;
        Ok(WireGatewayClient::from_endpoint(endpoint))
    }

    /// `GET /config` (unauthenticated).
    pub async fn config(&self) -> Result<CoreConfig, ClientError> {
        self.endpoint
            .get(&["config"])
            .without_auth()
            .json_response()
            .await
    }

    /// `POST /accounts`: opens an account (admin, or anyone where registrations are open).
    pub async fn register_account(
        &self,
        request: &RegisterAccountRequest,
    ) -> Result<RegisterAccountResponse, ClientError> {
        self.endpoint
            .post(&["accounts"])
            .json(request)
            .json_response()
            .await
    }

    /// `GET /accounts` (admin): every account.
    pub async fn accounts(&self) -> Result<ListAccountsResponse, ClientError> {
        self.endpoint.get(&["accounts"]).json_response().await
    }

    /// `GET /accounts/{name}`: balance, payto URI, debit limit.
    pub async fn account(&self, name: &str) -> Result<AccountData, ClientError> {
        self.endpoint.get(&["accounts", name]).json_response().await
    }

    /// `POST /accounts/{name}/token`: a bearer token for the account (use it with
    /// `Auth::bearer`).
    pub async fn create_token(
        &self,
        name: &str,
        request: &TokenRequest,
    ) -> Result<TokenSuccessResponse, ClientError> {
        self.endpoint
            .post(&["accounts", name, "token"])
            .json(request)
            .json_response()
            .await
    }

    /// `GET /accounts/{name}/transactions`: a page of the account's history (long polling with
    /// a positive limit and a timeout); an empty page (204) is an empty `Vec`.
    pub async fn transactions(
        &self,
        name: &str,
        page: &HistoryRequest,
    ) -> Result<Vec<BankAccountTransactionInfo>, ClientError> {
        let request = page.apply(self.endpoint.get(&["accounts", name, "transactions"]));
        Ok(request
            .json_or_empty::<BankAccountTransactionsResponse>()
            .await?
            .map(|page| page.transactions)
            .unwrap_or_default())
    }

    /// `GET /accounts/{name}/transactions/{row_id}`.
    pub async fn transaction(
        &self,
        name: &str,
        row_id: u64,
    ) -> Result<BankAccountTransactionInfo, ClientError> {
        self.endpoint
            .get(&["accounts", name, "transactions", &row_id.to_string()])
            .json_response()
            .await
    }

    /// `POST /accounts/{name}/transactions`: pays from the account (idempotent per
    /// `request_uid`).
    pub async fn create_transaction(
        &self,
        name: &str,
        request: &CreateTransactionRequest,
    ) -> Result<CreateTransactionResponse, ClientError> {
        self.endpoint
            .post(&["accounts", name, "transactions"])
            .json(request)
            .json_response()
            .await
    }
}
