//! Operator functions for the `cardcash cardproc …` commands: create, list and delete API users.
//!
//! A new user gets the next free id and a random 32-byte secret, returned once in base64 (the
//! form Wallee hands out and `cardcash_client::CardprocClient::new` takes).

use crate::config::{CardprocConfig, Role};
use crate::db::CardprocStore;
use crate::error::CardprocError;
use cardcash_api::cardproc::IsoTime;
use cardcash_api::cardproc::mac::MacKey;

/// Opens the configured database (migrating it if needed).
pub async fn open_store(config: &CardprocConfig) -> Result<CardprocStore, CardprocError> {
    Ok(CardprocStore::connect(&config.database_url).await?)
}

/// Creates an API user in the configured database; returns `(id, base64 secret)`.
pub async fn create_user(
    config: &CardprocConfig,
    role: Role,
) -> Result<(u64, String), CardprocError> {
    let store = open_store(config).await?;
    let created = create_user_in(&store, config.space_id, role).await;
    store.close().await;
    created
}

/// Creates an API user in `store` for `space_id`; returns `(id, base64 secret)`.
pub async fn create_user_in(
    store: &CardprocStore,
    space_id: u64,
    role: Role,
) -> Result<(u64, String), CardprocError> {
    let bytes = cardcash_crypto::random::random_bytes::<32>()
        .map_err(|e| CardprocError::Internal(format!("no randomness: {e}")))?;
    let secret =
        MacKey::from_bytes(bytes.to_vec()).map_err(|e| CardprocError::Internal(e.to_string()))?;
    let id = store
        .create_user(&secret, role, space_id, IsoTime::now())
        .await?;
    Ok((id, secret.to_base64()))
}

/// `(id, role, space)` of every API user.
pub async fn list_users(config: &CardprocConfig) -> Result<Vec<(u64, Role, u64)>, CardprocError> {
    let store = open_store(config).await?;
    let users = store.users().await;
    store.close().await;
    Ok(users?
        .into_iter()
        .map(|u| (u.id, u.role, u.space_id))
        .collect())
}

/// Deletes an API user; returns whether it existed.
pub async fn delete_user(config: &CardprocConfig, id: u64) -> Result<bool, CardprocError> {
    let store = open_store(config).await?;
    let deleted = store.delete_user(id).await;
    store.close().await;
    Ok(deleted?)
}
