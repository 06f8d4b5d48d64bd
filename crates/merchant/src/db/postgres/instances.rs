//! Instances and accounts on PostgreSQL.

use cardcash_store::columns::pg_amount_opt;
use cardcash_store::{PgDb, StoreError};
use cardcash_util::{Currency, WireSalt};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::super::instances::{AccountRow, CreateInstance, InstanceAuth, InstanceRow, NewInstance};
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
    let (method, hash) = match &r.auth {
        InstanceAuth::External => ("external", None),
        InstanceAuth::Token { password_hash } => ("token", Some(password_hash.as_str())),
    };
    let (dep_val, dep_frac) = cols_opt(r.default_max_deposit_fee.as_ref());
    let (wire_val, wire_frac) = cols_opt(r.default_max_wire_fee.as_ref());
    let serial: i64 = sqlx::query_scalar(
        "INSERT INTO instances (instance_id, merchant_pub, merchant_priv, name, email, \
         phone_number, website, logo, address, jurisdiction, use_stefan, auth_method, auth_hash, \
         default_max_deposit_fee_val, default_max_deposit_fee_frac, default_max_wire_fee_val, \
         default_max_wire_fee_frac, default_wire_fee_amortization, default_pay_delay, \
         default_refund_delay, default_wire_transfer_delay, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21, $22) RETURNING instance_serial",
    )
    .bind(&r.id)
    .bind(r.merchant_pub.as_bytes().as_slice())
    .bind(r.merchant_priv.as_slice())
    .bind(&r.name)
    .bind(&r.email)
    .bind(&r.phone_number)
    .bind(&r.website)
    .bind(&r.logo)
    .bind(r.address.to_string())
    .bind(r.jurisdiction.to_string())
    .bind(i32::from(r.use_stefan))
    .bind(method)
    .bind(hash)
    .bind(dep_val)
    .bind(dep_frac)
    .bind(wire_val)
    .bind(wire_frac)
    .bind(i32::try_from(r.default_wire_fee_amortization).unwrap_or(i32::MAX))
    .bind(duration_micros(r.default_pay_delay))
    .bind(duration_micros(r.default_refund_delay))
    .bind(duration_micros(r.default_wire_transfer_delay))
    .bind(micros(r.created_at))
    .fetch_one(tx.conn())
    .await?;
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
