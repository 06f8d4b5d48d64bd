//! Instances and accounts on PostgreSQL.

use cardcash_store::columns::pg_amount_opt;
use cardcash_store::{PgDb, StoreError};
use cardcash_util::{Currency, HashCode, Timestamp, WireSalt};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::super::instances::{
    AccountChange, AccountRow, AddAccount, CreateInstance, InstanceAuth, InstanceRow,
    LoginTokenRow, NewInstance, NewLoginToken, TokenRef, scope_of,
};
use super::super::{cols_opt, corrupt, duration, duration_micros, json, micros, time};
use super::{bytes, eddsa, flag, hash};

/// The columns of an instance row (a macro: sqlx takes only literal SQL).
macro_rules! instance_columns {
    () => {
        "instance_serial, instance_id, merchant_pub, merchant_priv, name, \
     email, phone_number, website, logo, address, jurisdiction, use_stefan, auth_method, \
     auth_hash, default_max_deposit_fee_val, default_max_deposit_fee_frac, \
     default_max_wire_fee_val, default_max_wire_fee_frac, default_wire_fee_amortization, \
     default_pay_delay, default_refund_delay, default_wire_transfer_delay, created_at, deleted"
    };
}

/// The columns of an instance's settings, which creation and reconfiguration write alike, in
/// the order [`bind_settings`] binds them (a macro: sqlx takes only literal SQL).
macro_rules! settings_columns {
    () => {
        "name, email, phone_number, website, logo, address, jurisdiction, use_stefan, \
         default_max_deposit_fee_val, default_max_deposit_fee_frac, default_max_wire_fee_val, \
         default_max_wire_fee_frac, default_wire_fee_amortization, default_pay_delay, \
         default_refund_delay, default_wire_transfer_delay"
    };
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// `q` with the values of [`settings_columns!`] for `r` bound as its next 16 parameters.
fn bind_settings<'q>(q: PgQuery<'q>, r: &'q InstanceRow) -> PgQuery<'q> {
    let (dep_val, dep_frac) = cols_opt(r.default_max_deposit_fee.as_ref());
    let (wire_val, wire_frac) = cols_opt(r.default_max_wire_fee.as_ref());
    q.bind(&r.name)
        .bind(&r.email)
        .bind(&r.phone_number)
        .bind(&r.website)
        .bind(&r.logo)
        .bind(r.address.to_string())
        .bind(r.jurisdiction.to_string())
        .bind(i32::from(r.use_stefan))
        .bind(dep_val)
        .bind(dep_frac)
        .bind(wire_val)
        .bind(wire_frac)
        .bind(i32::try_from(r.default_wire_fee_amortization).unwrap_or(i32::MAX))
        .bind(duration_micros(r.default_pay_delay))
        .bind(duration_micros(r.default_refund_delay))
        .bind(duration_micros(r.default_wire_transfer_delay))
}

fn instance_row(row: &PgRow, currency: Currency) -> Result<InstanceRow, StoreError> {
    let merchant_priv: [u8; 32] = bytes(row, "merchant_priv", |b| b.try_into().ok())?;
    let method: &str = row.try_get("auth_method")?;
    let auth = match method {
        "external" => InstanceAuth::External,
        "token" => InstanceAuth::Token {
            password_hash: row
                .try_get::<Option<String>, _>("auth_hash")?
                .ok_or_else(|| corrupt("token auth without hash"))?,
        },
        other => return Err(corrupt(format!("auth method {other:?}"))),
    };
    let amortization: i32 = row.try_get("default_wire_fee_amortization")?;
    Ok(InstanceRow {
        serial: row.try_get("instance_serial")?,
        id: row.try_get("instance_id")?,
        merchant_pub: eddsa(row, "merchant_pub")?,
        merchant_priv,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        phone_number: row.try_get("phone_number")?,
        website: row.try_get("website")?,
        logo: row.try_get("logo")?,
        address: json(row.try_get("address")?)?,
        jurisdiction: json(row.try_get("jurisdiction")?)?,
        use_stefan: flag(row, "use_stefan")?,
        auth,
        default_max_deposit_fee: pg_amount_opt(row, "default_max_deposit_fee", currency)?,
        default_max_wire_fee: pg_amount_opt(row, "default_max_wire_fee", currency)?,
        default_wire_fee_amortization: u32::try_from(amortization)
            .map_err(|_| corrupt("amortization"))?,
        default_pay_delay: duration(row.try_get("default_pay_delay")?)?,
        default_refund_delay: duration(row.try_get("default_refund_delay")?)?,
        default_wire_transfer_delay: duration(row.try_get("default_wire_transfer_delay")?)?,
        created_at: time(row.try_get("created_at")?)?,
        deleted: flag(row, "deleted")?,
    })
}

fn account_row(row: &PgRow) -> Result<AccountRow, StoreError> {
    Ok(AccountRow {
        serial: row.try_get("account_serial")?,
        h_wire: hash(row, "h_wire")?,
        salt: bytes(row, "salt", WireSalt::from_slice)?,
        payto_uri: row.try_get("payto_uri")?,
        active: flag(row, "active")?,
        credit_facade_url: row.try_get("credit_facade_url")?,
        credit_facade_credentials: row.try_get("credit_facade_credentials")?,
    })
}

pub(crate) async fn create_instance(
    db: &PgDb,
    new: &NewInstance,
) -> Result<CreateInstance, StoreError> {
    let mut tx = db.begin().await?;
    let existing: Option<i32> =
        sqlx::query_scalar("SELECT deleted FROM instances WHERE instance_id = $1 FOR UPDATE")
            .bind(&new.row.id)
            .fetch_optional(tx.conn())
            .await?;
    if let Some(deleted) = existing {
        tx.rollback().await?;
        return Ok(CreateInstance::Exists {
            deleted: deleted != 0,
        });
    }
    let r = &new.row;
    let (method, hash) = auth_columns(&r.auth);
    let query = sqlx::query(concat!(
        "INSERT INTO instances (instance_id, merchant_pub, merchant_priv, ",
        settings_columns!(),
        ", auth_method, auth_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) RETURNING instance_serial"
    ))
    .bind(&r.id)
    .bind(r.merchant_pub.as_bytes().as_slice())
    .bind(r.merchant_priv.as_slice());
    let serial: i64 = bind_settings(query, r)
        .bind(method)
        .bind(hash)
        .bind(micros(r.created_at))
        .fetch_one(tx.conn())
        .await?
        .try_get("instance_serial")?;
    for a in &new.accounts {
        insert_account(tx.conn(), serial, a).await?;
    }
    tx.commit().await?;
    Ok(CreateInstance::Created { serial })
}

pub(crate) async fn insert_account(
    conn: &mut PgConnection,
    instance_serial: i64,
    a: &AccountRow,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO instance_accounts (instance_serial, h_wire, salt, payto_uri, active, \
         credit_facade_url, credit_facade_credentials) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         RETURNING account_serial",
    )
    .bind(instance_serial)
    .bind(a.h_wire.as_bytes().as_slice())
    .bind(a.salt.as_bytes().as_slice())
    .bind(&a.payto_uri)
    .bind(i32::from(a.active))
    .bind(&a.credit_facade_url)
    .bind(&a.credit_facade_credentials)
    .fetch_one(conn)
    .await?)
}

pub(crate) async fn instance(
    db: &PgDb,
    currency: Currency,
    id: &str,
) -> Result<Option<InstanceRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        instance_columns!(),
        " FROM instances WHERE instance_id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?
    .map(|row| instance_row(&row, currency))
    .transpose()
}

pub(crate) async fn instances(
    db: &PgDb,
    currency: Currency,
) -> Result<Vec<InstanceRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        instance_columns!(),
        " FROM instances ORDER BY instance_id"
    ))
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| instance_row(row, currency))
    .collect()
}

pub(crate) async fn accounts(
    db: &PgDb,
    instance_serial: i64,
) -> Result<Vec<AccountRow>, StoreError> {
    sqlx::query(
        "SELECT account_serial, h_wire, salt, payto_uri, active, credit_facade_url, \
         credit_facade_credentials FROM instance_accounts WHERE instance_serial = $1 \
         ORDER BY account_serial",
    )
    .bind(instance_serial)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(account_row)
    .collect()
}

fn auth_columns(auth: &InstanceAuth) -> (&'static str, Option<&str>) {
    match auth {
        InstanceAuth::External => ("external", None),
        InstanceAuth::Token { password_hash } => ("token", Some(password_hash.as_str())),
    }
}

pub(crate) async fn update_instance(db: &PgDb, r: &InstanceRow) -> Result<bool, StoreError> {
    let query = sqlx::query(
        "UPDATE instances SET name = $2, email = $3, phone_number = $4, website = $5, logo = $6, \
         address = $7, jurisdiction = $8, use_stefan = $9, default_max_deposit_fee_val = $10, \
         default_max_deposit_fee_frac = $11, default_max_wire_fee_val = $12, \
         default_max_wire_fee_frac = $13, default_wire_fee_amortization = $14, \
         default_pay_delay = $15, default_refund_delay = $16, default_wire_transfer_delay = $17 \
         WHERE instance_serial = $1 AND deleted = 0",
    )
    .bind(r.serial);
    let done = bind_settings(query, r).execute(db.pool()).await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn soft_delete_instance(db: &PgDb, id: &str) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE instances SET deleted = 1 WHERE instance_id = $1 AND deleted = 0")
            .bind(id)
            .execute(db.pool())
            .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn purge_instance(db: &PgDb, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM instances WHERE instance_id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn set_instance_auth(
    db: &PgDb,
    serial: i64,
    auth: &InstanceAuth,
) -> Result<bool, StoreError> {
    let (method, hash) = auth_columns(auth);
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE instances SET auth_method = $2, auth_hash = $3 \
         WHERE instance_serial = $1 AND deleted = 0",
    )
    .bind(serial)
    .bind(method)
    .bind(hash)
    .execute(tx.conn())
    .await?;
    if done.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM login_tokens WHERE instance_serial = $1")
        .bind(serial)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(true)
}

fn token_row(row: &PgRow) -> Result<LoginTokenRow, StoreError> {
    Ok(LoginTokenRow {
        serial: row.try_get("token_serial")?,
        scope: scope_of(row.try_get("scope")?)?,
        refreshable: flag(row, "refreshable")?,
        description: row.try_get("description")?,
        created_at: time(row.try_get("created_at")?)?,
        expires_at: time(row.try_get("expires_at")?)?,
    })
}

pub(crate) async fn insert_login_token(db: &PgDb, t: &NewLoginToken) -> Result<i64, StoreError> {
    // Expired tokens of the instance go when a new one comes: the table stays small.
    Ok(sqlx::query_scalar(
        "WITH expired AS (DELETE FROM login_tokens WHERE instance_serial = $1 \
         AND expires_at <= $6) \
         INSERT INTO login_tokens (instance_serial, token_hash, scope, refreshable, description, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING token_serial",
    )
    .bind(t.instance_serial)
    .bind(t.token_hash.as_bytes().as_slice())
    .bind(t.scope.as_str())
    .bind(i32::from(t.refreshable))
    .bind(&t.description)
    .bind(micros(t.created_at))
    .bind(micros(t.expires_at))
    .fetch_one(db.pool())
    .await?)
}

pub(crate) async fn login_token(
    db: &PgDb,
    instance_serial: i64,
    hash: &HashCode,
) -> Result<Option<LoginTokenRow>, StoreError> {
    sqlx::query(
        "SELECT token_serial, scope, refreshable, description, created_at, expires_at \
         FROM login_tokens WHERE instance_serial = $1 AND token_hash = $2",
    )
    .bind(instance_serial)
    .bind(hash.as_bytes().as_slice())
    .fetch_optional(db.pool())
    .await?
    .map(|row| token_row(&row))
    .transpose()
}

pub(crate) async fn login_tokens(
    db: &PgDb,
    instance_serial: i64,
    now: Timestamp,
) -> Result<Vec<LoginTokenRow>, StoreError> {
    sqlx::query(
        "SELECT token_serial, scope, refreshable, description, created_at, expires_at \
         FROM login_tokens WHERE instance_serial = $1 AND expires_at > $2 ORDER BY token_serial",
    )
    .bind(instance_serial)
    .bind(micros(now))
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(token_row)
    .collect()
}

pub(crate) async fn delete_login_token(
    db: &PgDb,
    instance_serial: i64,
    which: &TokenRef,
) -> Result<bool, StoreError> {
    let done = match which {
        TokenRef::Serial(serial) => {
            sqlx::query("DELETE FROM login_tokens WHERE instance_serial = $1 AND token_serial = $2")
                .bind(instance_serial)
                .bind(serial)
                .execute(db.pool())
                .await?
        }
        TokenRef::Hash(hash) => {
            sqlx::query("DELETE FROM login_tokens WHERE instance_serial = $1 AND token_hash = $2")
                .bind(instance_serial)
                .bind(hash.as_bytes().as_slice())
                .execute(db.pool())
                .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// The columns of an account row.
macro_rules! account_columns {
    () => {
        "account_serial, h_wire, salt, payto_uri, active, credit_facade_url, \
         credit_facade_credentials"
    };
}

pub(crate) async fn add_account(
    db: &PgDb,
    instance_serial: i64,
    a: &AccountRow,
) -> Result<AddAccount, StoreError> {
    let mut tx = db.begin().await?;
    // Lock the instance so that two additions of the same payto URI are serialised.
    sqlx::query("SELECT 1 FROM instances WHERE instance_serial = $1 FOR UPDATE")
        .bind(instance_serial)
        .execute(tx.conn())
        .await?;
    let existing = sqlx::query(concat!(
        "SELECT ",
        account_columns!(),
        " FROM instance_accounts WHERE instance_serial = $1 AND payto_uri = $2"
    ))
    .bind(instance_serial)
    .bind(&a.payto_uri)
    .fetch_optional(tx.conn())
    .await?
    .map(|row| account_row(&row))
    .transpose()?;
    let outcome = match existing {
        None => {
            let serial = insert_account(tx.conn(), instance_serial, a).await?;
            AddAccount::Added(AccountRow {
                serial,
                ..a.clone()
            })
        }
        Some(old) if old.active => {
            if old.credit_facade_url == a.credit_facade_url
                && old.credit_facade_credentials == a.credit_facade_credentials
            {
                AddAccount::Same(old)
            } else {
                AddAccount::Conflict
            }
        }
        Some(old) => {
            sqlx::query(
                "UPDATE instance_accounts SET active = 1, credit_facade_url = $2, \
                 credit_facade_credentials = $3 WHERE account_serial = $1",
            )
            .bind(old.serial)
            .bind(&a.credit_facade_url)
            .bind(&a.credit_facade_credentials)
            .execute(tx.conn())
            .await?;
            AddAccount::Added(AccountRow {
                active: true,
                credit_facade_url: a.credit_facade_url.clone(),
                credit_facade_credentials: a.credit_facade_credentials.clone(),
                ..old
            })
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

pub(crate) async fn account(
    db: &PgDb,
    instance_serial: i64,
    h_wire: &HashCode,
) -> Result<Option<AccountRow>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        account_columns!(),
        " FROM instance_accounts WHERE instance_serial = $1 AND h_wire = $2"
    ))
    .bind(instance_serial)
    .bind(h_wire.as_bytes().as_slice())
    .fetch_optional(db.pool())
    .await?
    .map(|row| account_row(&row))
    .transpose()
}

pub(crate) async fn update_account(
    db: &PgDb,
    instance_serial: i64,
    h_wire: &HashCode,
    change: &AccountChange,
) -> Result<bool, StoreError> {
    // One statement: each column keeps its value unless the change names it.
    let (set_facade, url, credentials) = match &change.facade {
        Some((url, credentials)) => (true, url.clone(), credentials.clone()),
        None => (false, None, None),
    };
    let done = sqlx::query(
        "UPDATE instance_accounts SET \
         credit_facade_url = CASE WHEN $3 THEN $4 ELSE credit_facade_url END, \
         credit_facade_credentials = CASE WHEN $3 THEN $5 ELSE credit_facade_credentials END, \
         active = COALESCE($6, active) \
         WHERE instance_serial = $1 AND h_wire = $2",
    )
    .bind(instance_serial)
    .bind(h_wire.as_bytes().as_slice())
    .bind(set_facade)
    .bind(url)
    .bind(credentials)
    .bind(change.active.map(i32::from))
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
