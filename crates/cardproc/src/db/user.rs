//! SQL for `api_user`: the MAC users (terminals and readers such as C2EC).
//!
//! Secrets are stored as the base64 the user holds: HMAC verification needs the key itself, so
//! it cannot be hashed (c2ec.md §3 notes the same contradiction in the original design).
//! Protect the database accordingly.

use cardcash_store::{Db, Tx};

use super::{corrupt, get_i64, get_id, get_string, id_sql};
use crate::config::Role;
use crate::error::CardprocError;
use cardcash_api::cardproc::IsoTime;
use cardcash_api::cardproc::mac::MacKey;

/// A stored API user.
#[derive(Debug, Clone)]
pub struct ApiUserRow {
    /// `x-mac-userid`.
    pub id: u64,
    /// The MAC key.
    pub secret: MacKey,
    /// What the user may do.
    pub role: Role,
    /// The space the user belongs to.
    pub space_id: u64,
}

/// Creates or updates a user (configured users are written at every start).
pub async fn upsert(
    tx: &mut Tx,
    id: u64,
    secret: &MacKey,
    role: Role,
    space_id: u64,
    now: IsoTime,
) -> Result<(), CardprocError> {
    sqlx::query(
        "INSERT INTO api_user (user_id, secret, role, space_id, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, role = excluded.role, space_id = excluded.space_id",
    )
    .bind(id_sql(id).ok_or_else(|| corrupt("user id"))?)
    .bind(secret.to_base64())
    .bind(role.as_str())
    .bind(id_sql(space_id).ok_or_else(|| corrupt("space id"))?)
    .bind(now.to_sql())
    .execute(tx.conn())
    .await
    .map_err(|e| CardprocError::Store(e.into()))?;
    Ok(())
}

/// Creates a user with the next free id and returns the id. Concurrent creations may collide
/// on the primary key; the caller's retry then picks the next id.
pub async fn create(
    tx: &mut Tx,
    secret: &MacKey,
    role: Role,
    space_id: u64,
    now: IsoTime,
) -> Result<u64, CardprocError> {
    let (max,): (Option<i64>,) = sqlx::query_as("SELECT MAX(user_id) FROM api_user")
        .fetch_one(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    let id = u64::try_from(max.unwrap_or(0).saturating_add(1)).map_err(|_| corrupt("user id"))?;
    sqlx::query("INSERT INTO api_user (user_id, secret, role, space_id, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id_sql(id).ok_or_else(|| corrupt("user id"))?)
        .bind(secret.to_base64())
        .bind(role.as_str())
        .bind(id_sql(space_id).ok_or_else(|| corrupt("space id"))?)
        .bind(now.to_sql())
        .execute(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    Ok(id)
}

fn decode(row: &sqlx::any::AnyRow) -> Result<ApiUserRow, CardprocError> {
    Ok(ApiUserRow {
        id: get_id(row, "user_id")?,
        secret: MacKey::from_base64(&get_string(row, "secret")?).map_err(|_| corrupt("secret"))?,
        role: get_string(row, "role")?
            .parse()
            .map_err(|_| corrupt("role"))?,
        space_id: u64::try_from(get_i64(row, "space_id")?).map_err(|_| corrupt("space id"))?,
    })
}

/// Looks a user up by id.
pub async fn get(db: &Db, id: u64) -> Result<Option<ApiUserRow>, CardprocError> {
    let Some(id) = id_sql(id) else {
        return Ok(None);
    };
    let row =
        sqlx::query("SELECT user_id, secret, role, space_id FROM api_user WHERE user_id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await
            .map_err(|e| CardprocError::Store(e.into()))?;
    row.as_ref().map(decode).transpose()
}

/// Every user, by id.
pub async fn list(db: &Db) -> Result<Vec<ApiUserRow>, CardprocError> {
    let rows = sqlx::query("SELECT user_id, secret, role, space_id FROM api_user ORDER BY user_id")
        .fetch_all(db.pool())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    rows.iter().map(decode).collect()
}

/// Deletes a user; returns whether it existed.
pub async fn delete(tx: &mut Tx, id: u64) -> Result<bool, CardprocError> {
    let Some(id) = id_sql(id) else {
        return Ok(false);
    };
    let done = sqlx::query("DELETE FROM api_user WHERE user_id = $1")
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(|e| CardprocError::Store(e.into()))?;
    Ok(done.rows_affected() > 0)
}
