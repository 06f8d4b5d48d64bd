//! Handlers of the thin Core Bank API subset (docs.taler.net api-corebank; libeufin
//! `CoreBankApi.kt`): config, accounts, internal transfers, an account's history, tokens.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cardcash_http::{TalerJson, TalerPath, TalerQuery};

use super::AppState;
use super::auth::Auth;
use super::wire_gateway::account_name;
use crate::account::{AccountInfo, AccountName, NewAccount};
use crate::auth::Scope;
use crate::db::AccountTransactionRow;
use crate::error::{BankError, Result};
use crate::ledger::InternalTransfer;
use crate::password::Password;
use crate::types::{
    AccountData, AccountMinimalData, BankAccountTransactionInfo, BankAccountTransactionsResponse,
    CoreConfig, CreateTransactionRequest, CreateTransactionResponse, CurrencySpecification,
    Direction, ListAccountsResponse, RegisterAccountRequest, RegisterAccountResponse, TokenRequest,
    TokenSuccessResponse,
};
use cardcash_api::wire_gateway::{HistoryParams, HistoryQuery};

/// Core Bank API version. We implement a small subset, so we announce the oldest protocol.
pub const CORE_BANK_VERSION: &str = "0:0:0";
/// Default validity of a bearer token.
pub const DEFAULT_TOKEN_DURATION: Duration = Duration::from_secs(24 * 3600);

/// `GET /config`.
pub async fn get_config(State(state): State<AppState>) -> TalerJson<CoreConfig> {
    let currency = *state.ledger.currency();
    TalerJson(CoreConfig {
        name: "taler-corebank".to_owned(),
        version: CORE_BANK_VERSION.to_owned(),
        currency,
        currency_specification: CurrencySpecification::two_decimals(&currency, currency.as_str()),
        allow_registrations: state.config.allow_registration,
        implementation: Some(super::wire_gateway::IMPLEMENTATION.to_owned()),
    })
}

fn account_data(info: AccountInfo) -> AccountData {
    AccountData {
        name: info.legal_name,
        balance: info.balance.into(),
        payto_uri: info.payto_uri,
        debit_threshold: info.debit_threshold,
        is_taler_exchange: info.is_taler_exchange,
    }
}

/// `POST /accounts`: the admin creates any account; with `ALLOW_REGISTRATION`, anyone may
/// create a customer account (no exchange flag, default debit limit).
pub async fn post_accounts(
    State(state): State<AppState>,
    who: Option<Auth>,
    TalerJson(req): TalerJson<RegisterAccountRequest>,
) -> Result<TalerJson<RegisterAccountResponse>> {
    let is_admin = match &who {
        Some(Auth(p)) => p.require_admin().is_ok(),
        None => false,
    };
    if !is_admin {
        match who {
            None if state.config.allow_registration => {}
            None => {
                return Err(BankError::Unauthorized(
                    "only the admin may create accounts",
                ));
            }
            Some(_) => return Err(BankError::Forbidden("(admin only)".to_owned())),
        }
        if req.is_taler_exchange || req.debit_threshold.is_some() {
            return Err(BankError::Forbidden("(admin only)".to_owned()));
        }
    }
    let name: AccountName = req.username.parse().map_err(|e| BankError::BadParameter {
        name: "username",
        reason: format!("{e}"),
    })?;
    if name.is_admin() {
        return Err(BankError::NameReserved(name.to_string()));
    }
    let password = Password::new(req.password).map_err(|e| BankError::BadParameter {
        name: "password",
        reason: e.to_string(),
    })?;
    let new = NewAccount {
        name,
        legal_name: Some(req.name),
        password: Some(password),
        is_exchange: req.is_taler_exchange,
        debit_limit: req.debit_threshold,
    };
    let info = state.ledger.create_account(new).await?;
    Ok(TalerJson(RegisterAccountResponse {
        internal_payto_uri: info.payto_uri,
    }))
}

/// `GET /accounts` (admin).
pub async fn get_accounts(
    State(state): State<AppState>,
    Auth(who): Auth,
) -> Result<TalerJson<ListAccountsResponse>> {
    who.require_admin()?;
    let accounts = state
        .ledger
        .accounts()
        .await?
        .into_iter()
        .map(|info| AccountMinimalData {
            username: info.name.to_string(),
            name: info.legal_name,
            payto_uri: info.payto_uri,
            balance: info.balance.into(),
            debit_threshold: info.debit_threshold,
            is_taler_exchange: info.is_taler_exchange,
        })
        .collect();
    Ok(TalerJson(ListAccountsResponse { accounts }))
}

/// `GET /accounts/{name}` (owner or admin).
pub async fn get_account(
    State(state): State<AppState>,
    Auth(who): Auth,
    TalerPath(name): TalerPath<String>,
) -> Result<TalerJson<AccountData>> {
    let name = account_name(&name)?;
    who.check(&name, Scope::ReadOnly)?;
    Ok(TalerJson(account_data(state.ledger.account(&name).await?)))
}

/// `POST /accounts/{name}/token` (owner or admin, read-write credential).
pub async fn post_token(
    State(state): State<AppState>,
    Auth(who): Auth,
    TalerPath(name): TalerPath<String>,
    TalerJson(req): TalerJson<TokenRequest>,
) -> Result<TalerJson<TokenSuccessResponse>> {
    let name = account_name(&name)?;
    who.check(&name, Scope::ReadWrite)?;
    let scope = Scope::parse(&req.scope).ok_or_else(|| BankError::BadParameter {
        name: "scope",
        reason: "must be readonly or readwrite".to_owned(),
    })?;
    let duration = req
        .duration
        .and_then(|d| d.to_duration())
        .unwrap_or(DEFAULT_TOKEN_DURATION);
    let (access_token, expiration) = state.ledger.create_token(&name, scope, duration).await?;
    Ok(TalerJson(TokenSuccessResponse {
        expiration,
        access_token,
    }))
}

/// `POST /accounts/{name}/transactions`: an internal transfer (owner or admin).
pub async fn post_transactions(
    State(state): State<AppState>,
    Auth(who): Auth,
    TalerPath(name): TalerPath<String>,
    TalerJson(req): TalerJson<CreateTransactionRequest>,
) -> Result<TalerJson<CreateTransactionResponse>> {
    let name = account_name(&name)?;
    who.check(&name, Scope::ReadWrite)?;
    let uri = &req.payto_uri;
    let subject = uri
        .message()
        .or_else(|| uri.subject())
        .ok_or(BankError::MissingParameter("message"))?
        .to_owned();
    let uri_amount = match uri.param("amount") {
        None => None,
        Some(text) => Some(text.parse().map_err(|_| BankError::BadParameter {
            name: "amount",
            reason: "the payto amount parameter is not an amount".to_owned(),
        })?),
    };
    let amount = match (uri_amount, req.amount) {
        (Some(a), Some(b)) if a != b => {
            return Err(BankError::BadParameter {
                name: "amount",
                reason: "the payto amount and the amount field differ".to_owned(),
            });
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return Err(BankError::MissingParameter("amount")),
    };
    let transfer = InternalTransfer {
        creditor: req.payto_uri.clone(),
        amount,
        subject,
        request_uid: req.request_uid,
    };
    let booked = state.ledger.internal_transfer(&name, &transfer).await?;
    let row_id = u64::try_from(booked.row_id)
        .map_err(|_| BankError::Invariant("negative row id".to_owned()))?;
    Ok(TalerJson(CreateTransactionResponse { row_id }))
}

fn transaction_info(r: AccountTransactionRow) -> Result<BankAccountTransactionInfo> {
    Ok(BankAccountTransactionInfo {
        creditor_payto_uri: r.creditor.to_string(),
        debtor_payto_uri: r.debtor.to_string(),
        amount: r.amount,
        direction: if r.is_debit {
            Direction::Debit
        } else {
            Direction::Credit
        },
        subject: r.subject,
        row_id: u64::try_from(r.row_id)
            .map_err(|_| BankError::Invariant("negative row id".to_owned()))?,
        date: r.date,
    })
}

/// `GET /accounts/{name}/transactions` (owner or admin): 200 with rows, 204 when empty.
pub async fn get_transactions(
    State(state): State<AppState>,
    Auth(who): Auth,
    TalerPath(name): TalerPath<String>,
    TalerQuery(query): TalerQuery<HistoryQuery>,
) -> Result<Response> {
    let name = account_name(&name)?;
    who.check(&name, Scope::ReadOnly)?;
    let params = HistoryParams::parse(&query)?;
    let rows = state.ledger.account_history(&name, &params).await?;
    if rows.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let transactions = rows
        .into_iter()
        .map(transaction_info)
        .collect::<Result<Vec<_>>>()?;
    Ok(TalerJson(BankAccountTransactionsResponse { transactions }).into_response())
}

/// `GET /accounts/{name}/transactions/{row_id}` (owner or admin).
pub async fn get_transaction(
    State(state): State<AppState>,
    Auth(who): Auth,
    TalerPath((name, row_id)): TalerPath<(String, i64)>,
) -> Result<TalerJson<BankAccountTransactionInfo>> {
    let name = account_name(&name)?;
    who.check(&name, Scope::ReadOnly)?;
    let row = state.ledger.account_transaction(&name, row_id).await?;
    Ok(TalerJson(transaction_info(row)?))
}
