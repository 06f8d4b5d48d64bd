//! Instances, authentication, login tokens and bank accounts: `/management/instances…` (admin)
//! and each instance's `/private`, `/private/auth`, `/private/token(s)`, `/private/accounts…`.
//! Thin handlers: extract → authorize → one call of `crate::instances` → response.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use cardcash_api::merchant::instances::{
    AccountAddDetails, AccountAddResponse, AccountPatchDetails, AccountsSummaryResponse,
    BankAccountDetail, BankAccountEntry, InstanceAuthConfig, InstanceAuthInfo,
    InstanceConfigurationMessage, InstanceEntry, InstanceReconfigurationMessage, InstancesResponse,
    LoginTokenRequest, LoginTokenSuccessResponse, MerchantAccount, QueryInstancesResponse,
    TokenInfo, TokenInfos,
};
use cardcash_http::{TalerJson, TalerPath, TalerQuery};
use cardcash_util::{ErrorCode, HashCode, Timestamp};
use serde::Deserialize;

use super::AppState;
use crate::auth::{Credentials, InstanceId, Permission, credentials};
use crate::db::instances::{AccountChange, InstanceAuth, InstanceRow, LoginTokenRow, TokenRef};
use crate::error::MerchantError;
use crate::instances::{token_hash, wire_method};

type Result<T> = std::result::Result<T, MerchantError>;

/// The management routes (admin instance only), served once at the backend's root.
pub fn management_routes() -> Router<AppState> {
    Router::new()
        // https://docs.taler.net/core/merchant/post-management-instances.html
        .route(
            "/management/instances",
            post(post_management_instances).get(get_management_instances),
        )
        // https://docs.taler.net/core/merchant/get-management-instances-INSTANCE.html
        .route(
            "/management/instances/{instance}",
            get(get_management_instance)
                .patch(patch_management_instance)
                .delete(delete_management_instance),
        )
        .route(
            "/management/instances/{instance}/auth",
            post(post_management_instance_auth),
        )
}

/// The routes of every instance (relative to its base URL).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/private",
            get(get_private).patch(patch_private).delete(delete_private),
        )
        .route("/private/auth", post(post_private_auth))
        // https://docs.taler.net/core/merchant/post-private-token.html
        .route(
            "/private/token",
            post(post_private_token).delete(delete_private_token),
        )
        .route("/private/tokens", get(get_private_tokens))
        .route(
            "/private/tokens/{serial}",
            delete(delete_private_tokens_serial),
        )
        // https://docs.taler.net/core/merchant/post-private-accounts.html
        .route(
            "/private/accounts",
            post(post_private_accounts).get(get_private_accounts),
        )
        .route(
            "/private/accounts/{h_wire}",
            get(get_private_account)
                .patch(patch_private_account)
                .delete(delete_private_account),
        )
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    /// `YES` removes the instance and its data instead of marking it deleted.
    #[serde(default)]
    purge: Option<String>,
}

impl DeleteQuery {
    fn purge(&self) -> bool {
        self.purge.as_deref() == Some("YES")
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenPath {
    serial: i64,
}

#[derive(Debug, Deserialize)]
pub struct AccountPath {
    h_wire: HashCode,
}

fn no_content() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn query_response(state: &AppState, row: &InstanceRow) -> Result<QueryInstancesResponse> {
    let accounts = state.merchant.store().accounts(row.serial).await?;
    Ok(QueryInstancesResponse {
        name: row.name.clone(),
        merchant_pub: row.merchant_pub,
        auth: InstanceAuthInfo {
            method: match row.auth {
                InstanceAuth::External => "external",
                InstanceAuth::Token { .. } => "token",
            }
            .to_owned(),
        },
        email: row.email.clone(),
        phone_number: row.phone_number.clone(),
        website: row.website.clone(),
        logo: row.logo.clone(),
        address: row.address.clone(),
        jurisdiction: row.jurisdiction.clone(),
        use_stefan: row.use_stefan,
        default_wire_transfer_delay: row.default_wire_transfer_delay,
        default_pay_delay: row.default_pay_delay,
        default_refund_delay: row.default_refund_delay,
        default_max_wire_fee: row.default_max_wire_fee,
        default_max_deposit_fee: row.default_max_deposit_fee,
        default_wire_fee_amortization: row.default_wire_fee_amortization,
        accounts: accounts
            .into_iter()
            .filter(|a| a.active)
            .map(|a| MerchantAccount {
                payto_uri: a.payto_uri,
                h_wire: a.h_wire,
                salt: a.salt,
                active: a.active,
            })
            .collect(),
    })
}

// ----- /management/instances -----

pub async fn post_management_instances(
    State(state): State<AppState>,
    headers: HeaderMap,
    TalerJson(req): TalerJson<InstanceConfigurationMessage>,
) -> Result<StatusCode> {
    state.merchant.authorize_management(&headers).await?;
    state.merchant.create_instance(&req).await?;
    Ok(no_content())
}

pub async fn get_management_instances(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<TalerJson<InstancesResponse>> {
    let m = &state.merchant;
    m.authorize_management_for(&headers, Permission::InstancesRead)
        .await?;
    let mut instances = Vec::new();
    for row in m.store().instances().await? {
        let mut payment_targets: Vec<String> = Vec::new();
        for a in m.store().accounts(row.serial).await? {
            let method = wire_method(&a.payto_uri);
            if a.active && !payment_targets.contains(&method) {
                payment_targets.push(method);
            }
        }
        instances.push(InstanceEntry {
            id: row.id,
            name: row.name,
            merchant_pub: row.merchant_pub,
            payment_targets,
            deleted: row.deleted,
            website: row.website,
            logo: row.logo,
        });
    }
    Ok(TalerJson(InstancesResponse { instances }))
}

pub async fn get_management_instance(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
) -> Result<TalerJson<QueryInstancesResponse>> {
    state
        .merchant
        .authorize_management_for(&headers, Permission::InstancesRead)
        .await?;
    let row = state.merchant.live_instance(&id.0).await?;
    Ok(TalerJson(query_response(&state, &row).await?))
}

pub async fn patch_management_instance(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerJson(patch): TalerJson<InstanceReconfigurationMessage>,
) -> Result<StatusCode> {
    state.merchant.authorize_management(&headers).await?;
    let row = state.merchant.live_instance(&id.0).await?;
    state.merchant.patch_instance(&row, &patch).await?;
    Ok(no_content())
}

pub async fn delete_management_instance(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerQuery(q): TalerQuery<DeleteQuery>,
) -> Result<StatusCode> {
    state.merchant.authorize_management(&headers).await?;
    state.merchant.delete_instance(&id.0, q.purge()).await?;
    Ok(no_content())
}

pub async fn post_management_instance_auth(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerJson(auth): TalerJson<InstanceAuthConfig>,
) -> Result<StatusCode> {
    state.merchant.authorize_management(&headers).await?;
    let row = state.merchant.live_instance(&id.0).await?;
    state.merchant.change_auth(&row, &auth).await?;
    Ok(no_content())
}

// ----- /private -----

pub async fn get_private(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
) -> Result<TalerJson<QueryInstancesResponse>> {
    let row = state
        .merchant
        .authorize(&id, &headers, Permission::InstancesRead)
        .await?;
    Ok(TalerJson(query_response(&state, &row).await?))
}

pub async fn patch_private(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerJson(patch): TalerJson<InstanceReconfigurationMessage>,
) -> Result<StatusCode> {
    let row = state
        .merchant
        .authorize(&id, &headers, Permission::InstancesWrite)
        .await?;
    state.merchant.patch_instance(&row, &patch).await?;
    Ok(no_content())
}

pub async fn delete_private(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerQuery(q): TalerQuery<DeleteQuery>,
) -> Result<StatusCode> {
    let row = state
        .merchant
        .authorize(&id, &headers, Permission::InstancesWrite)
        .await?;
    state.merchant.delete_instance(&row.id, q.purge()).await?;
    Ok(no_content())
}

pub async fn post_private_auth(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerJson(auth): TalerJson<InstanceAuthConfig>,
) -> Result<StatusCode> {
    let row = state
        .merchant
        .authorize(&id, &headers, Permission::InstancesWrite)
        .await?;
    state.merchant.change_auth(&row, &auth).await?;
    Ok(no_content())
}

// ----- login tokens -----

pub async fn post_private_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerJson(req): TalerJson<LoginTokenRequest>,
) -> Result<TalerJson<LoginTokenSuccessResponse>> {
    let m = &state.merchant;
    let instance = m.live_instance(&id.0).await?;
    let who = m.authenticate(&instance, &headers, true).await?;
    let (token, row) = m
        .issue_token(
            &instance,
            &req.scope,
            req.refreshable.unwrap_or(false),
            req.duration,
            req.description,
            who.token(),
        )
        .await?;
    Ok(TalerJson(LoginTokenSuccessResponse {
        access_token: token.clone(),
        token,
        scope: if row.refreshable {
            format!("{}:refreshable", row.scope)
        } else {
            row.scope.to_string()
        },
        expiration: row.expires_at,
        refreshable: row.refreshable,
    }))
}

pub async fn delete_private_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m.live_instance(&id.0).await?;
    m.authenticate(&instance, &headers, false).await?;
    if let Ok(Credentials::Bearer(secret)) = credentials(&headers) {
        m.store()
            .delete_login_token(instance.serial, TokenRef::Hash(token_hash(&secret)))
            .await?;
    }
    Ok(no_content())
}

fn token_info(t: LoginTokenRow) -> TokenInfo {
    TokenInfo {
        serial: t.serial,
        creation_time: t.created_at,
        expiration: t.expires_at,
        scope: t.scope.to_string(),
        refreshable: t.refreshable,
        description: t.description,
    }
}

pub async fn get_private_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
) -> Result<TalerJson<TokenInfos>> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::InstancesRead)
        .await?;
    let tokens = m
        .store()
        .login_tokens(instance.serial, Timestamp::now())
        .await?;
    Ok(TalerJson(TokenInfos {
        tokens: tokens.into_iter().map(token_info).collect(),
    }))
}

pub async fn delete_private_tokens_serial(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerPath(path): TalerPath<TokenPath>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::InstancesWrite)
        .await?;
    if m.store()
        .delete_login_token(instance.serial, TokenRef::Serial(path.serial))
        .await?
    {
        Ok(no_content())
    } else {
        Err(MerchantError::refused_status(
            StatusCode::NOT_FOUND,
            ErrorCode::GenericTokenUnknown,
            format!("no login token {}", path.serial),
        ))
    }
}

// ----- bank accounts -----

fn unknown_account(h_wire: &HashCode) -> MerchantError {
    MerchantError::refused(
        ErrorCode::MerchantPrivateAccountDeleteUnknownAccount,
        format!("no account {h_wire}"),
    )
}

pub async fn post_private_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerJson(req): TalerJson<AccountAddDetails>,
) -> Result<TalerJson<AccountAddResponse>> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::InstancesWrite)
        .await?;
    let row = m.add_account(&instance, &req).await?;
    Ok(TalerJson(AccountAddResponse {
        h_wire: row.h_wire,
        salt: row.salt,
    }))
}

pub async fn get_private_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
) -> Result<TalerJson<AccountsSummaryResponse>> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::InstancesRead)
        .await?;
    let accounts = m.store().accounts(instance.serial).await?;
    Ok(TalerJson(AccountsSummaryResponse {
        accounts: accounts
            .into_iter()
            .map(|a| BankAccountEntry {
                payto_uri: a.payto_uri,
                h_wire: a.h_wire,
                active: a.active,
            })
            .collect(),
    }))
}

pub async fn get_private_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerPath(path): TalerPath<AccountPath>,
) -> Result<TalerJson<BankAccountDetail>> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::InstancesRead)
        .await?;
    let a = m
        .store()
        .account(instance.serial, &path.h_wire)
        .await?
        .ok_or_else(|| unknown_account(&path.h_wire))?;
    Ok(TalerJson(BankAccountDetail {
        payto_uri: a.payto_uri,
        h_wire: a.h_wire,
        salt: a.salt,
        credit_facade_url: a.credit_facade_url,
        active: a.active,
    }))
}

pub async fn patch_private_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerPath(path): TalerPath<AccountPath>,
    TalerJson(req): TalerJson<AccountPatchDetails>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::InstancesWrite)
        .await?;
    let change = AccountChange {
        facade: Some((
            req.credit_facade_url,
            req.credit_facade_credentials.map(|c| c.to_string()),
        )),
        active: None,
    };
    if m.store()
        .update_account(instance.serial, &path.h_wire, change)
        .await?
    {
        Ok(no_content())
    } else {
        Err(unknown_account(&path.h_wire))
    }
}

pub async fn delete_private_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: InstanceId,
    TalerPath(path): TalerPath<AccountPath>,
) -> Result<StatusCode> {
    let m = &state.merchant;
    let instance = m
        .authorize(&id, &headers, Permission::InstancesWrite)
        .await?;
    let change = AccountChange {
        facade: None,
        active: Some(false),
    };
    if m.store()
        .update_account(instance.serial, &path.h_wire, change)
        .await?
    {
        Ok(no_content())
    } else {
        Err(unknown_account(&path.h_wire))
    }
}
