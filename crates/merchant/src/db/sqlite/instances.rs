//! Instances and accounts on SQLite.

use cardcash_store::rusqlite::types::Value;
use cardcash_store::rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Currency, HashCode, Timestamp, WireSalt};

use super::super::instances::{
    AccountChange, AccountRow, AddAccount, CreateInstance, InstanceAuth, InstanceRow,
    LoginTokenRow, NewInstance, NewLoginToken, TokenRef, scope_of,
};
use super::super::{amount_opt, cols_opt, corrupt, duration, duration_micros, fixed, json, micros};
use super::{eddsa, execute, flag, hash, ts};

const INSTANCE_COLUMNS: &str = "instance_serial, instance_id, merchant_pub, merchant_priv, name, \
     email, phone_number, website, logo, address, jurisdiction, use_stefan, auth_method, \
     auth_hash, default_max_deposit_fee_val, default_max_deposit_fee_frac, \
     default_max_wire_fee_val, default_max_wire_fee_frac, default_wire_fee_amortization, \
     default_pay_delay, default_refund_delay, default_wire_transfer_delay, created_at, deleted";

/// The columns of an instance's settings, which creation and reconfiguration write alike, in
/// the order of [`settings`].
macro_rules! settings_columns {
    () => {
        "name, email, phone_number, website, logo, address, jurisdiction, use_stefan, \
         default_max_deposit_fee_val, default_max_deposit_fee_frac, default_max_wire_fee_val, \
         default_max_wire_fee_frac, default_wire_fee_amortization, default_pay_delay, \
         default_refund_delay, default_wire_transfer_delay"
    };
}

/// The values of [`settings_columns!`] for `r`.
fn settings(r: &InstanceRow) -> [Value; 16] {
    let (dep_val, dep_frac) = cols_opt(r.default_max_deposit_fee.as_ref());
    let (wire_val, wire_frac) = cols_opt(r.default_max_wire_fee.as_ref());
    [
        Value::from(r.name.clone()),
        Value::from(r.email.clone()),
        Value::from(r.phone_number.clone()),
        Value::from(r.website.clone()),
        Value::from(r.logo.clone()),
        Value::from(r.address.to_string()),
        Value::from(r.jurisdiction.to_string()),
        Value::from(r.use_stefan),
        Value::from(dep_val),
        Value::from(dep_frac.map(i64::from)),
        Value::from(wire_val),
        Value::from(wire_frac.map(i64::from)),
        Value::from(i64::from(r.default_wire_fee_amortization)),
        Value::from(duration_micros(r.default_pay_delay)),
        Value::from(duration_micros(r.default_refund_delay)),
        Value::from(duration_micros(r.default_wire_transfer_delay)),
    ]
}

fn instance_row(row: &Row<'_>, currency: Currency) -> Result<InstanceRow, StoreError> {
    let priv_bytes: Vec<u8> = row.get(3)?;
    let merchant_priv: [u8; 32] = priv_bytes
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("merchant private key length"))?;
    let method: String = row.get(12)?;
    let auth = match method.as_str() {
        "external" => InstanceAuth::External,
        "token" => InstanceAuth::Token {
            password_hash: row
                .get::<_, Option<String>>(13)?
                .ok_or_else(|| corrupt("token auth without hash"))?,
        },
        other => return Err(corrupt(format!("auth method {other:?}"))),
    };
    let amortization: i64 = row.get(18)?;
    Ok(InstanceRow {
        serial: row.get(0)?,
        id: row.get(1)?,
        merchant_pub: eddsa(row, 2)?,
        merchant_priv,
        name: row.get(4)?,
        email: row.get(5)?,
        phone_number: row.get(6)?,
        website: row.get(7)?,
        logo: row.get(8)?,
        address: json(&row.get::<_, String>(9)?)?,
        jurisdiction: json(&row.get::<_, String>(10)?)?,
        use_stefan: flag(row, 11)?,
        auth,
        default_max_deposit_fee: amount_opt(currency, row.get(14)?, row.get(15)?)?,
        default_max_wire_fee: amount_opt(currency, row.get(16)?, row.get(17)?)?,
        default_wire_fee_amortization: u32::try_from(amortization)
            .map_err(|_| corrupt("amortization"))?,
        default_pay_delay: duration(row.get(19)?)?,
        default_refund_delay: duration(row.get(20)?)?,
        default_wire_transfer_delay: duration(row.get(21)?)?,
        created_at: ts(row, 22)?,
        deleted: flag(row, 23)?,
    })
}

fn account_row(row: &Row<'_>) -> Result<AccountRow, StoreError> {
    let salt: Vec<u8> = row.get(2)?;
    Ok(AccountRow {
        serial: row.get(0)?,
        h_wire: hash(row, 1)?,
        salt: fixed("wire salt", &salt, WireSalt::from_slice)?,
        payto_uri: row.get(3)?,
        active: flag(row, 4)?,
        credit_facade_url: row.get(5)?,
        credit_facade_credentials: row.get(6)?,
    })
}

pub(crate) fn create_instance(
    tx: &mut SqliteTx<'_>,
    new: &NewInstance,
) -> Result<CreateInstance, StoreError> {
    let existing: Option<i64> = tx
        .prepare_cached("SELECT deleted FROM instances WHERE instance_id = ?1")?
        .query_row(params![new.row.id], |r| r.get(0))
        .optional()?;
    if let Some(deleted) = existing {
        return Ok(CreateInstance::Exists {
            deleted: deleted != 0,
        });
    }
    let r = &new.row;
    let (method, hash) = auth_columns(&r.auth);
    let head = [
        Value::from(r.id.clone()),
        Value::from(r.merchant_pub.as_bytes().to_vec()),
        Value::from(r.merchant_priv.to_vec()),
    ];
    let tail = [
        Value::from(method.to_owned()),
        Value::from(hash.map(str::to_owned)),
        Value::from(micros(r.created_at)),
    ];
    execute(
        tx,
        concat!(
            "INSERT INTO instances (instance_id, merchant_pub, merchant_priv, ",
            settings_columns!(),
            ", auth_method, auth_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
             ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
        ),
        params_from_iter(head.into_iter().chain(settings(r)).chain(tail)),
    )?;
    let serial = tx.last_insert_rowid();
    for a in &new.accounts {
        insert_account(tx, serial, a)?;
    }
    Ok(CreateInstance::Created { serial })
}

pub(crate) fn insert_account(
    conn: &Connection,
    instance_serial: i64,
    a: &AccountRow,
) -> Result<i64, StoreError> {
    execute(
        conn,
        "INSERT INTO instance_accounts (instance_serial, h_wire, salt, payto_uri, active, \
         credit_facade_url, credit_facade_credentials) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            instance_serial,
            a.h_wire.as_bytes().as_slice(),
            a.salt.as_bytes().as_slice(),
            a.payto_uri,
            i64::from(a.active),
            a.credit_facade_url,
            a.credit_facade_credentials,
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn instance(
    conn: &Connection,
    currency: Currency,
    id: &str,
) -> Result<Option<InstanceRow>, StoreError> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?1");
    query_opt(conn, &sql, params![id], |row| instance_row(row, currency))
}

pub(crate) fn instances(
    conn: &Connection,
    currency: Currency,
) -> Result<Vec<InstanceRow>, StoreError> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY instance_id");
    query_all(conn, &sql, [], |row| instance_row(row, currency))
}

pub(crate) fn accounts(
    conn: &Connection,
    instance_serial: i64,
) -> Result<Vec<AccountRow>, StoreError> {
    query_all(
        conn,
        "SELECT account_serial, h_wire, salt, payto_uri, active, credit_facade_url, \
         credit_facade_credentials FROM instance_accounts WHERE instance_serial = ?1 \
         ORDER BY account_serial",
        params![instance_serial],
        account_row,
    )
}

fn auth_columns(auth: &InstanceAuth) -> (&'static str, Option<&str>) {
    match auth {
        InstanceAuth::External => ("external", None),
        InstanceAuth::Token { password_hash } => ("token", Some(password_hash.as_str())),
    }
}

pub(crate) fn update_instance(tx: &mut SqliteTx<'_>, r: &InstanceRow) -> Result<bool, StoreError> {
    let n = execute(
        tx,
        "UPDATE instances SET name = ?2, email = ?3, phone_number = ?4, website = ?5, logo = ?6, \
         address = ?7, jurisdiction = ?8, use_stefan = ?9, default_max_deposit_fee_val = ?10, \
         default_max_deposit_fee_frac = ?11, default_max_wire_fee_val = ?12, \
         default_max_wire_fee_frac = ?13, default_wire_fee_amortization = ?14, \
         default_pay_delay = ?15, default_refund_delay = ?16, default_wire_transfer_delay = ?17 \
         WHERE instance_serial = ?1 AND deleted = 0",
        params_from_iter(std::iter::once(Value::from(r.serial)).chain(settings(r))),
    )?;
    Ok(n == 1)
}

pub(crate) fn soft_delete_instance(tx: &mut SqliteTx<'_>, id: &str) -> Result<bool, StoreError> {
    let n = execute(
        tx,
        "UPDATE instances SET deleted = 1 WHERE instance_id = ?1 AND deleted = 0",
        params![id],
    )?;
    Ok(n == 1)
}

pub(crate) fn purge_instance(tx: &mut SqliteTx<'_>, id: &str) -> Result<bool, StoreError> {
    let n = execute(
        tx,
        "DELETE FROM instances WHERE instance_id = ?1",
        params![id],
    )?;
    Ok(n == 1)
}

pub(crate) fn set_instance_auth(
    tx: &mut SqliteTx<'_>,
    serial: i64,
    auth: &InstanceAuth,
) -> Result<bool, StoreError> {
    let (method, hash) = auth_columns(auth);
    let n = execute(
        tx,
        "UPDATE instances SET auth_method = ?2, auth_hash = ?3 \
         WHERE instance_serial = ?1 AND deleted = 0",
        params![serial, method, hash],
    )?;
    if n == 1 {
        execute(
            tx,
            "DELETE FROM login_tokens WHERE instance_serial = ?1",
            params![serial],
        )?;
    }
    Ok(n == 1)
}

fn token_row(row: &Row<'_>) -> Result<LoginTokenRow, StoreError> {
    Ok(LoginTokenRow {
        serial: row.get(0)?,
        scope: scope_of(&row.get::<_, String>(1)?)?,
        refreshable: flag(row, 2)?,
        description: row.get(3)?,
        created_at: ts(row, 4)?,
        expires_at: ts(row, 5)?,
    })
}

pub(crate) fn insert_login_token(
    tx: &mut SqliteTx<'_>,
    t: &NewLoginToken,
) -> Result<i64, StoreError> {
    // Expired tokens of the instance go when a new one comes: the table stays small.
    execute(
        tx,
        "DELETE FROM login_tokens WHERE instance_serial = ?1 AND expires_at <= ?2",
        params![t.instance_serial, micros(t.created_at)],
    )?;
    execute(
        tx,
        "INSERT INTO login_tokens (instance_serial, token_hash, scope, refreshable, description, \
         created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            t.instance_serial,
            t.token_hash.as_bytes().as_slice(),
            t.scope.as_str(),
            i64::from(t.refreshable),
            t.description,
            micros(t.created_at),
            micros(t.expires_at),
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

pub(crate) fn login_token(
    conn: &Connection,
    instance_serial: i64,
    hash: &HashCode,
) -> Result<Option<LoginTokenRow>, StoreError> {
    query_opt(
        conn,
        "SELECT token_serial, scope, refreshable, description, created_at, expires_at \
         FROM login_tokens WHERE instance_serial = ?1 AND token_hash = ?2",
        params![instance_serial, hash.as_bytes().as_slice()],
        token_row,
    )
}

pub(crate) fn login_tokens(
    conn: &Connection,
    instance_serial: i64,
    now: Timestamp,
) -> Result<Vec<LoginTokenRow>, StoreError> {
    query_all(
        conn,
        "SELECT token_serial, scope, refreshable, description, created_at, expires_at \
         FROM login_tokens WHERE instance_serial = ?1 AND expires_at > ?2 ORDER BY token_serial",
        params![instance_serial, micros(now)],
        token_row,
    )
}

pub(crate) fn delete_login_token(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    which: &TokenRef,
) -> Result<bool, StoreError> {
    let n = match which {
        TokenRef::Serial(serial) => execute(
            tx,
            "DELETE FROM login_tokens WHERE instance_serial = ?1 AND token_serial = ?2",
            params![instance_serial, serial],
        )?,
        TokenRef::Hash(hash) => execute(
            tx,
            "DELETE FROM login_tokens WHERE instance_serial = ?1 AND token_hash = ?2",
            params![instance_serial, hash.as_bytes().as_slice()],
        )?,
    };
    Ok(n == 1)
}

const ACCOUNT_COLUMNS: &str = "account_serial, h_wire, salt, payto_uri, active, \
     credit_facade_url, credit_facade_credentials";

pub(crate) fn add_account(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    a: &AccountRow,
) -> Result<AddAccount, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM instance_accounts \
         WHERE instance_serial = ?1 AND payto_uri = ?2"
    );
    let existing = query_opt(tx, &sql, params![instance_serial, a.payto_uri], account_row)?;
    match existing {
        None => {
            let serial = insert_account(tx, instance_serial, a)?;
            Ok(AddAccount::Added(AccountRow {
                serial,
                ..a.clone()
            }))
        }
        Some(old) if old.active => {
            if old.credit_facade_url == a.credit_facade_url
                && old.credit_facade_credentials == a.credit_facade_credentials
            {
                Ok(AddAccount::Same(old))
            } else {
                Ok(AddAccount::Conflict)
            }
        }
        Some(old) => {
            execute(
                tx,
                "UPDATE instance_accounts SET active = 1, credit_facade_url = ?2, \
                 credit_facade_credentials = ?3 WHERE account_serial = ?1",
                params![old.serial, a.credit_facade_url, a.credit_facade_credentials],
            )?;
            Ok(AddAccount::Added(AccountRow {
                active: true,
                credit_facade_url: a.credit_facade_url.clone(),
                credit_facade_credentials: a.credit_facade_credentials.clone(),
                ..old
            }))
        }
    }
}

pub(crate) fn account(
    conn: &Connection,
    instance_serial: i64,
    h_wire: &HashCode,
) -> Result<Option<AccountRow>, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM instance_accounts \
         WHERE instance_serial = ?1 AND h_wire = ?2"
    );
    query_opt(
        conn,
        &sql,
        params![instance_serial, h_wire.as_bytes().as_slice()],
        account_row,
    )
}

pub(crate) fn update_account(
    tx: &mut SqliteTx<'_>,
    instance_serial: i64,
    h_wire: &HashCode,
    change: &AccountChange,
) -> Result<bool, StoreError> {
    let exists: Option<i64> = tx
        .prepare_cached(
            "SELECT account_serial FROM instance_accounts \
             WHERE instance_serial = ?1 AND h_wire = ?2",
        )?
        .query_row(
            params![instance_serial, h_wire.as_bytes().as_slice()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(serial) = exists else {
        return Ok(false);
    };
    if let Some((url, credentials)) = &change.facade {
        execute(
            tx,
            "UPDATE instance_accounts SET credit_facade_url = ?2, credit_facade_credentials = ?3 \
             WHERE account_serial = ?1",
            params![serial, url, credentials],
        )?;
    }
    if let Some(active) = change.active {
        execute(
            tx,
            "UPDATE instance_accounts SET active = ?2 WHERE account_serial = ?1",
            params![serial, i64::from(active)],
        )?;
    }
    Ok(true)
}
