//! The exchange's storage on PostgreSQL (typed sqlx). Every money movement is ONE round trip: a
//! `CALL` of a procedure of `migrations/postgres/0001_init.sql` (`exchange_credit_reserves`,
//! `exchange_batch_withdraw`, `exchange_batch_deposit`, `exchange_refund`,
//! `exchange_record_wire_out`), which locks, decides, writes, commits and then notifies (see the
//! migration for why). Reads are single statements (one snapshot each). The rarely used writes
//! (key material uploaded by the offline key, the transfer worker's bookkeeping) are one
//! statement, or a short transaction serialised by an advisory lock, notifying after commit.
//!
//! Every write runs under [`retry`]: a procedure that lost a race it could not lock against
//! (a coin or planchet first seen by two requests at once) raises `serialization_failure`, and
//! its second run sees the winner's row. The outcomes are those of `sqlite.rs`, step for step.

use cardcash_store::columns::pg_amount;
use cardcash_store::{PgDb, StoreError, retry};
use cardcash_util::{
    Amount, Currency, EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, ShortHashCode,
    Timestamp, WireSalt,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{
    AggregatedDeposit, AuditSums, BounceDecision, BounceRow, CoinHistoryEntry, CoinRow,
    CreditReport, DenominationRow, DepositOutcome, DepositTrackingRow, DueAggregate, GlobalFeeRow,
    IncomingTransfer, KeyMaterial, NewBatchDeposit, NewRefund, NewWireOut, NewWithdrawal, Outgoing,
    RefundOutcome, ReserveHistoryEntry, ReserveRow, SignkeyRow, Stored, StoredWithdrawal,
    TOPIC_KEYS, TOPIC_RESERVE, WireAccountRow, WireFeeRow, WireOutRow, WithdrawOutcome,
    bounce_request_uid, bounce_wtid, cols, corrupt, count, denomination_public, duration, fixed,
    gateway_row, reserve_key, signed, time, units, unsigned,
};

pub(super) mod closing;
pub(super) mod recoup;
pub(super) mod refresh;

// ---------------------------------------------------------------- column decoding

fn am(row: &PgRow, currency: Currency, prefix: &str) -> Result<Amount, StoreError> {
    pg_amount(row, prefix, currency)
}

fn ts(row: &PgRow, column: &str) -> Result<Timestamp, StoreError> {
    time(row.try_get(column)?)
}

fn ts_opt(row: &PgRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    row.try_get::<Option<i64>, _>(column)?.map(time).transpose()
}

fn bytes<T>(
    row: &PgRow,
    column: &str,
    from: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, StoreError> {
    let b: &[u8] = row.try_get(column)?;
    fixed(column, b, from)
}

fn bytes_opt<T>(
    row: &PgRow,
    column: &str,
    from: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    let b: Option<&[u8]> = row.try_get(column)?;
    b.map(|b| fixed(column, b, from)).transpose()
}

fn sig(row: &PgRow, column: &str) -> Result<EddsaSignature, StoreError> {
    bytes(row, column, EddsaSignature::from_slice)
}

fn sig_opt(row: &PgRow, column: &str) -> Result<Option<EddsaSignature>, StoreError> {
    bytes_opt(row, column, EddsaSignature::from_slice)
}

fn eddsa(row: &PgRow, column: &str) -> Result<EddsaPublicKey, StoreError> {
    bytes(row, column, EddsaPublicKey::from_slice)
}

fn hash(row: &PgRow, column: &str) -> Result<HashCode, StoreError> {
    bytes(row, column, HashCode::from_slice)
}

fn short(row: &PgRow, column: &str) -> Result<ShortHashCode, StoreError> {
    bytes(row, column, ShortHashCode::from_slice)
}

fn salt(row: &PgRow, column: &str) -> Result<WireSalt, StoreError> {
    bytes(row, column, WireSalt::from_slice)
}

/// A sum of amounts in units of 1e-8, computed exactly in `NUMERIC` and sent as text.
fn sum_units(row: &PgRow, column: &str) -> Result<u128, StoreError> {
    let text: &str = row.try_get(column)?;
    text.parse()
        .map_err(|_| corrupt(format!("{column}: sum of amounts {text:?}")))
}

fn sum_amount(row: &PgRow, currency: Currency, column: &str) -> Result<Amount, StoreError> {
    units(currency, sum_units(row, column)?)
}

/// The 0-based index of a procedure's 1-based `out_index`.
fn index(row: &PgRow) -> Result<usize, StoreError> {
    let i: Option<i32> = row.try_get("out_index")?;
    i.and_then(|i| usize::try_from(i).ok())
        .and_then(|i| i.checked_sub(1))
        .ok_or_else(|| corrupt(format!("procedure index {i:?}")))
}

fn outcome(row: &PgRow) -> Result<&str, StoreError> {
    Ok(row.try_get("out_outcome")?)
}

fn micros(t: Timestamp) -> i64 {
    t.to_sql_micros()
}

/// The PostgreSQL payload of a notification (`PgTx::notify`'s format: `"<topic> <key>"`).
fn payload(topic: &str, key: &str) -> String {
    format!("{topic} {key}")
}

// ---------------------------------------------------------------- running statements

/// A statement with its arguments bound (what `sqlx::query(..).bind(..)` builds).
type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Runs a write of one statement under [`retry`] and returns its one row (a procedure's `OUT`
/// parameters). `query` builds the statement afresh for each run: a retry runs the same single
/// statement again, it adds none.
async fn write_row<'q>(db: &PgDb, query: impl Fn() -> PgQuery<'q>) -> Result<PgRow, StoreError> {
    retry(|| async { query().fetch_one(db.pool()).await.map_err(StoreError::from) }).await
}

/// [`write_row`] for a statement that may return no row.
async fn write_opt<'q>(
    db: &PgDb,
    query: impl Fn() -> PgQuery<'q>,
) -> Result<Option<PgRow>, StoreError> {
    retry(|| async {
        query()
            .fetch_optional(db.pool())
            .await
            .map_err(StoreError::from)
    })
    .await
}

/// [`write_row`] for a statement without rows: how many rows it changed.
async fn write<'q>(db: &PgDb, query: impl Fn() -> PgQuery<'q>) -> Result<u64, StoreError> {
    let done =
        retry(|| async { query().execute(db.pool()).await.map_err(StoreError::from) }).await?;
    Ok(done.rows_affected())
}

/// Every row of one read, decoded.
async fn read_all<T>(
    db: &PgDb,
    query: PgQuery<'_>,
    decode: impl FnMut(&PgRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    query
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// The row of one read, if it found one, decoded.
async fn read_opt<T>(
    db: &PgDb,
    query: PgQuery<'_>,
    decode: impl FnOnce(&PgRow) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    query
        .fetch_optional(db.pool())
        .await?
        .map(|r| decode(&r))
        .transpose()
}

/// The time a `SELECT min(..)` of microseconds finds (none on no rows): when a worker is due.
async fn earliest(db: &PgDb, sql: &'static str) -> Result<Option<Timestamp>, StoreError> {
    let next: Option<i64> = sqlx::query_scalar(sql).fetch_one(db.pool()).await?;
    next.map(time).transpose()
}

// ---------------------------------------------------------------- outgoing transfers

/// The statements of a queue of outgoing transfers ([`Outgoing`]); each feature has its
/// queue's constant beside its rows.
pub(in crate::db) struct OutgoingSql {
    /// The earliest next attempt of what is not sent yet (`min`: NULL when nothing waits).
    next_attempt: &'static str,
    /// The gateway took the transfer: `$1` its serial, `$2` the gateway's row.
    done: &'static str,
    /// An attempt failed: `$1` its serial, `$2` when to try again.
    failed: &'static str,
}

fn outgoing(queue: Outgoing) -> &'static OutgoingSql {
    match queue {
        Outgoing::Bounces => &BOUNCES,
        Outgoing::WireOuts => &WIRE_OUTS,
        Outgoing::Closings => &closing::OUTGOING,
    }
}

pub(super) async fn next_attempt(
    db: &PgDb,
    _currency: Currency,
    queue: Outgoing,
) -> Result<Option<Timestamp>, StoreError> {
    earliest(db, outgoing(queue).next_attempt).await
}

/// One `UPDATE` under [`retry`].
pub(super) async fn transfer_done(
    db: &PgDb,
    _currency: Currency,
    queue: Outgoing,
    serial: i64,
    gateway_row_id: u64,
) -> Result<(), StoreError> {
    let gateway_row_id = signed("gateway row", gateway_row_id)?;
    let sql = outgoing(queue).done;
    write(db, || sqlx::query(sql).bind(serial).bind(gateway_row_id)).await?;
    Ok(())
}

/// One `UPDATE` under [`retry`].
pub(super) async fn transfer_failed(
    db: &PgDb,
    _currency: Currency,
    queue: Outgoing,
    serial: i64,
    next_attempt: Timestamp,
) -> Result<(), StoreError> {
    let sql = outgoing(queue).failed;
    write(db, || {
        sqlx::query(sql).bind(serial).bind(micros(next_attempt))
    })
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- key material

macro_rules! denomination_columns {
    () => {
        "denom_serial, h_denom_pub, cipher, denom_pub, section, value_val, value_frac, \
         fee_withdraw_val, fee_withdraw_frac, fee_deposit_val, fee_deposit_frac, \
         fee_refresh_val, fee_refresh_frac, fee_refund_val, fee_refund_frac, stamp_start, \
         stamp_expire_withdraw, stamp_expire_deposit, stamp_expire_legal, master_sig, \
         revocation_sig"
    };
}

fn denomination_row(row: &PgRow, currency: Currency) -> Result<DenominationRow, StoreError> {
    let cipher: i32 = row.try_get("cipher")?;
    let public = denomination_public(cipher.into(), row.try_get("denom_pub")?)?;
    Ok(DenominationRow {
        serial: row.try_get("denom_serial")?,
        h_denom_pub: hash(row, "h_denom_pub")?,
        public,
        section: row.try_get("section")?,
        value: am(row, currency, "value")?,
        fee_withdraw: am(row, currency, "fee_withdraw")?,
        fee_deposit: am(row, currency, "fee_deposit")?,
        fee_refresh: am(row, currency, "fee_refresh")?,
        fee_refund: am(row, currency, "fee_refund")?,
        stamp_start: ts(row, "stamp_start")?,
        stamp_expire_withdraw: ts(row, "stamp_expire_withdraw")?,
        stamp_expire_deposit: ts(row, "stamp_expire_deposit")?,
        stamp_expire_legal: ts(row, "stamp_expire_legal")?,
        master_sig: sig(row, "master_sig")?,
        revocation: sig_opt(row, "revocation_sig")?,
    })
}

macro_rules! signkey_columns {
    () => {
        "exchange_pub, stamp_start, stamp_expire, stamp_end, master_sig, revocation_sig"
    };
}

fn signkey_row(r: &PgRow) -> Result<SignkeyRow, StoreError> {
    Ok(SignkeyRow {
        exchange_pub: eddsa(r, "exchange_pub")?,
        stamp_start: ts(r, "stamp_start")?,
        stamp_expire: ts(r, "stamp_expire")?,
        stamp_end: ts(r, "stamp_end")?,
        master_sig: sig(r, "master_sig")?,
        revocation: sig_opt(r, "revocation_sig")?,
    })
}

fn wire_account_row(r: &PgRow) -> Result<WireAccountRow, StoreError> {
    let priority: i32 = r.try_get("priority")?;
    Ok(WireAccountRow {
        payto_uri: r.try_get("payto_uri")?,
        conversion_url: r.try_get("conversion_url")?,
        debit_restrictions: r.try_get("debit_restrictions")?,
        credit_restrictions: r.try_get("credit_restrictions")?,
        bank_label: r.try_get("bank_label")?,
        priority: i64::from(priority),
        master_sig_wire: sig(r, "master_sig_wire")?,
        master_sig_wire_v12: sig_opt(r, "master_sig_wire_v12")?,
        master_sig_add: sig(r, "master_sig_add")?,
        validity_start: ts(r, "validity_start")?,
        master_sig_del: sig_opt(r, "master_sig_del")?,
        validity_end: ts_opt(r, "validity_end")?,
        is_active: r.try_get("is_active")?,
    })
}

macro_rules! wire_fee_columns {
    () => {
        "wire_method, start_date, end_date, wire_fee_val, wire_fee_frac, closing_fee_val, \
         closing_fee_frac, master_sig"
    };
}

fn wire_fee_row(r: &PgRow, currency: Currency) -> Result<WireFeeRow, StoreError> {
    Ok(WireFeeRow {
        wire_method: r.try_get("wire_method")?,
        start: ts(r, "start_date")?,
        end: ts(r, "end_date")?,
        wire_fee: am(r, currency, "wire_fee")?,
        closing_fee: am(r, currency, "closing_fee")?,
        master_sig: sig(r, "master_sig")?,
    })
}

macro_rules! global_fee_columns {
    () => {
        "start_date, end_date, history_fee_val, history_fee_frac, account_fee_val, \
         account_fee_frac, purse_fee_val, purse_fee_frac, purse_timeout, history_expiration, \
         purse_account_limit, master_sig"
    };
}

fn global_fee_row(r: &PgRow, currency: Currency) -> Result<GlobalFeeRow, StoreError> {
    let limit: i32 = r.try_get("purse_account_limit")?;
    Ok(GlobalFeeRow {
        start: ts(r, "start_date")?,
        end: ts(r, "end_date")?,
        history_fee: am(r, currency, "history_fee")?,
        account_fee: am(r, currency, "account_fee")?,
        purse_fee: am(r, currency, "purse_fee")?,
        purse_timeout: duration(r.try_get("purse_timeout")?)?,
        history_expiration: duration(r.try_get("history_expiration")?)?,
        purse_account_limit: u32::try_from(limit)
            .map_err(|_| corrupt(format!("purse account limit {limit}")))?,
        master_sig: sig(r, "master_sig")?,
    })
}

pub(super) async fn key_material(db: &PgDb, currency: Currency) -> Result<KeyMaterial, StoreError> {
    // Five independent reads, on five pooled connections at once (one round trip of latency).
    // They are not one snapshot: a management change committed between them may show in one
    // table and not yet in another. Every change notifies `keys` after its commit and `/keys`
    // is rebuilt on that notification, so such a torn view lives until that rebuild only.
    let denominations = async {
        read_all(
            db,
            sqlx::query(concat!(
                "SELECT ",
                denomination_columns!(),
                " FROM denominations ORDER BY denom_serial"
            )),
            |r| denomination_row(r, currency),
        )
        .await
    };
    let signkeys = async {
        read_all(
            db,
            sqlx::query(concat!(
                "SELECT ",
                signkey_columns!(),
                " FROM signkeys ORDER BY stamp_start, signkey_serial"
            )),
            signkey_row,
        )
        .await
    };
    let accounts = async {
        read_all(
            db,
            sqlx::query(
                "SELECT payto_uri, conversion_url, debit_restrictions, credit_restrictions, \
                 bank_label, priority, master_sig_wire, master_sig_add, validity_start, \
                 master_sig_del, validity_end, is_active, master_sig_wire_v12 FROM wire_accounts \
                 ORDER BY priority DESC, payto_uri COLLATE \"C\"",
            ),
            wire_account_row,
        )
        .await
    };
    let wire_fees = async {
        read_all(
            db,
            sqlx::query(concat!(
                "SELECT ",
                wire_fee_columns!(),
                " FROM wire_fees ORDER BY wire_method COLLATE \"C\", start_date"
            )),
            |r| wire_fee_row(r, currency),
        )
        .await
    };
    let global_fees = async {
        read_all(
            db,
            sqlx::query(concat!(
                "SELECT ",
                global_fee_columns!(),
                " FROM global_fees ORDER BY start_date"
            )),
            |r| global_fee_row(r, currency),
        )
        .await
    };
    let (denominations, signkeys, accounts, wire_fees, global_fees) =
        tokio::try_join!(denominations, signkeys, accounts, wire_fees, global_fees)?;
    Ok(KeyMaterial {
        denominations,
        signkeys,
        accounts,
        wire_fees,
        global_fees,
    })
}

async fn insert_denomination_once(
    db: &PgDb,
    currency: Currency,
    row: &DenominationRow,
) -> Result<Stored, StoreError> {
    let v = cols(&row.value);
    let fw = cols(&row.fee_withdraw);
    let fd = cols(&row.fee_deposit);
    let fr = cols(&row.fee_refresh);
    let fu = cols(&row.fee_refund);
    let cipher = i32::try_from(row.public.cipher_number())
        .map_err(|_| StoreError::Internal("cipher number exceeds i32".into()))?;
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO denominations (h_denom_pub, cipher, denom_pub, section, value_val, \
         value_frac, fee_withdraw_val, fee_withdraw_frac, fee_deposit_val, fee_deposit_frac, \
         fee_refresh_val, fee_refresh_frac, fee_refund_val, fee_refund_frac, stamp_start, \
         stamp_expire_withdraw, stamp_expire_deposit, stamp_expire_legal, master_sig) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19) ON CONFLICT (h_denom_pub) DO NOTHING RETURNING denom_serial",
    )
    .bind(row.h_denom_pub.as_bytes().as_slice())
    .bind(cipher)
    .bind(row.public.to_bytes())
    .bind(&row.section)
    .bind(v.0)
    .bind(v.1)
    .bind(fw.0)
    .bind(fw.1)
    .bind(fd.0)
    .bind(fd.1)
    .bind(fr.0)
    .bind(fr.1)
    .bind(fu.0)
    .bind(fu.1)
    .bind(micros(row.stamp_start))
    .bind(micros(row.stamp_expire_withdraw))
    .bind(micros(row.stamp_expire_deposit))
    .bind(micros(row.stamp_expire_legal))
    .bind(row.master_sig.as_bytes().as_slice())
    .fetch_optional(db.pool())
    .await?;
    if inserted.is_some() {
        db.notify_now(TOPIC_KEYS, "").await?;
        return Ok(Stored::Inserted);
    }
    let existing = sqlx::query(concat!(
        "SELECT ",
        denomination_columns!(),
        " FROM denominations WHERE h_denom_pub = $1"
    ))
    .bind(row.h_denom_pub.as_bytes().as_slice())
    .fetch_one(db.pool())
    .await?;
    let existing = denomination_row(&existing, currency)?;
    // The offline key signs deterministically (Ed25519): the same upload is the same row.
    let same = DenominationRow {
        serial: existing.serial,
        revocation: existing.revocation,
        ..row.clone()
    } == existing;
    Ok(Stored::existing(same))
}

pub(super) async fn insert_denomination(
    db: &PgDb,
    currency: Currency,
    row: DenominationRow,
) -> Result<Stored, StoreError> {
    retry(|| insert_denomination_once(db, currency, &row)).await
}

async fn insert_signkey_once(db: &PgDb, row: &SignkeyRow) -> Result<Stored, StoreError> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO signkeys (exchange_pub, stamp_start, stamp_expire, stamp_end, master_sig) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (exchange_pub) DO NOTHING \
         RETURNING signkey_serial",
    )
    .bind(row.exchange_pub.as_bytes().as_slice())
    .bind(micros(row.stamp_start))
    .bind(micros(row.stamp_expire))
    .bind(micros(row.stamp_end))
    .bind(row.master_sig.as_bytes().as_slice())
    .fetch_optional(db.pool())
    .await?;
    if inserted.is_some() {
        db.notify_now(TOPIC_KEYS, "").await?;
        return Ok(Stored::Inserted);
    }
    let existing = sqlx::query(concat!(
        "SELECT ",
        signkey_columns!(),
        " FROM signkeys WHERE exchange_pub = $1"
    ))
    .bind(row.exchange_pub.as_bytes().as_slice())
    .fetch_one(db.pool())
    .await?;
    let existing = signkey_row(&existing)?;
    let same = (
        existing.stamp_start,
        existing.stamp_expire,
        existing.stamp_end,
        existing.master_sig,
    ) == (
        row.stamp_start,
        row.stamp_expire,
        row.stamp_end,
        row.master_sig,
    );
    Ok(Stored::existing(same))
}

pub(super) async fn insert_signkey(
    db: &PgDb,
    _currency: Currency,
    row: SignkeyRow,
) -> Result<Stored, StoreError> {
    retry(|| insert_signkey_once(db, &row)).await
}

/// Sets a revocation signature (the first one stays); whether the key exists.
async fn revoke(db: &PgDb, sql: &'static str, key: &[u8], sig: &[u8]) -> Result<bool, StoreError> {
    let n = write(db, || sqlx::query(sql).bind(key).bind(sig)).await?;
    if n > 0 {
        db.notify_now(TOPIC_KEYS, "").await?;
    }
    Ok(n > 0)
}

pub(super) async fn revoke_denomination(
    db: &PgDb,
    _currency: Currency,
    h_denom_pub: HashCode,
    revocation: EddsaSignature,
) -> Result<bool, StoreError> {
    revoke(
        db,
        "UPDATE denominations SET revocation_sig = coalesce(revocation_sig, $2) \
         WHERE h_denom_pub = $1",
        h_denom_pub.as_bytes(),
        revocation.as_bytes(),
    )
    .await
}

pub(super) async fn revoke_signkey(
    db: &PgDb,
    _currency: Currency,
    exchange_pub: EddsaPublicKey,
    revocation: EddsaSignature,
) -> Result<bool, StoreError> {
    revoke(
        db,
        "UPDATE signkeys SET revocation_sig = coalesce(revocation_sig, $2) \
         WHERE exchange_pub = $1",
        exchange_pub.as_bytes(),
        revocation.as_bytes(),
    )
    .await
}

/// Serialises the management changes of one kind of key material (`what`) until commit: they
/// read what is stored, decide, then write, and a row that does not exist yet cannot be locked.
async fn lock_management(tx: &mut cardcash_store::PgTx, what: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("cardcash-exchange-{what}"))
        .execute(tx.conn())
        .await?;
    Ok(())
}

pub(super) async fn enable_wire_account(
    db: &PgDb,
    _currency: Currency,
    row: WireAccountRow,
) -> Result<Stored, StoreError> {
    let row = &row;
    db.retry_write(|tx| {
        Box::pin(async move {
            lock_management(tx, "wire-accounts").await?;
            let last_change = sqlx::query(
                "SELECT GREATEST(validity_start, coalesce(validity_end, 0)) AS last, is_active, \
                 master_sig_add FROM wire_accounts WHERE payto_uri = $1",
            )
            .bind(&row.payto_uri)
            .fetch_optional(tx.conn())
            .await?;
            if let Some(last_change) = last_change {
                let last: i64 = last_change.try_get("last")?;
                let active: bool = last_change.try_get("is_active")?;
                if active && sig(&last_change, "master_sig_add")? == row.master_sig_add {
                    if let Some(v12) = row.master_sig_wire_v12 {
                        let updated = sqlx::query(
                            "UPDATE wire_accounts SET master_sig_wire_v12 = $2 \
                             WHERE payto_uri = $1 \
                             AND master_sig_wire_v12 IS DISTINCT FROM $2",
                        )
                        .bind(&row.payto_uri)
                        .bind(v12.as_bytes().as_slice())
                        .execute(tx.conn())
                        .await?;
                        if updated.rows_affected() > 0 {
                            tx.notify(TOPIC_KEYS, "");
                        }
                    }
                    return Ok(Stored::AlreadyKnown);
                }
                if micros(row.validity_start) <= last {
                    return Ok(Stored::Conflict);
                }
            }
            let priority = i32::try_from(row.priority)
                .map_err(|_| StoreError::Internal(format!("priority {}", row.priority)))?;
            sqlx::query(
                "INSERT INTO wire_accounts (payto_uri, conversion_url, debit_restrictions, \
                 credit_restrictions, bank_label, priority, master_sig_wire, master_sig_add, \
                 validity_start, master_sig_del, validity_end, is_active, \
                 master_sig_wire_v12) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, TRUE, $10) \
                 ON CONFLICT (payto_uri) DO UPDATE SET conversion_url = excluded.conversion_url, \
                 debit_restrictions = excluded.debit_restrictions, \
                 credit_restrictions = excluded.credit_restrictions, \
                 bank_label = excluded.bank_label, priority = excluded.priority, \
                 master_sig_wire = excluded.master_sig_wire, \
                 master_sig_add = excluded.master_sig_add, \
                 validity_start = excluded.validity_start, master_sig_del = NULL, \
                 validity_end = NULL, is_active = TRUE, master_sig_wire_v12 = \
                 coalesce(excluded.master_sig_wire_v12, wire_accounts.master_sig_wire_v12)",
            )
            .bind(&row.payto_uri)
            .bind(&row.conversion_url)
            .bind(&row.debit_restrictions)
            .bind(&row.credit_restrictions)
            .bind(&row.bank_label)
            .bind(priority)
            .bind(row.master_sig_wire.as_bytes().as_slice())
            .bind(row.master_sig_add.as_bytes().as_slice())
            .bind(micros(row.validity_start))
            .bind(row.master_sig_wire_v12.map(|s| s.as_bytes().to_vec()))
            .execute(tx.conn())
            .await?;
            tx.notify(TOPIC_KEYS, "");
            Ok(Stored::Inserted)
        })
    })
    .await
}

pub(super) async fn disable_wire_account(
    db: &PgDb,
    _currency: Currency,
    payto_uri: String,
    master_sig_del: EddsaSignature,
    validity_end: Timestamp,
) -> Result<Option<Stored>, StoreError> {
    let payto_uri = &payto_uri;
    db.retry_write(|tx| {
        Box::pin(async move {
            lock_management(tx, "wire-accounts").await?;
            let current = sqlx::query(
                "SELECT validity_start, is_active, master_sig_del FROM wire_accounts \
                 WHERE payto_uri = $1",
            )
            .bind(payto_uri)
            .fetch_optional(tx.conn())
            .await?;
            let Some(current) = current else {
                return Ok(None);
            };
            let start: i64 = current.try_get("validity_start")?;
            let active: bool = current.try_get("is_active")?;
            if !active {
                let sig_del = sig_opt(&current, "master_sig_del")?;
                return Ok(Some(Stored::existing(sig_del == Some(master_sig_del))));
            }
            if micros(validity_end) <= start {
                return Ok(Some(Stored::Conflict));
            }
            sqlx::query(
                "UPDATE wire_accounts SET is_active = FALSE, master_sig_del = $2, \
                 validity_end = $3 WHERE payto_uri = $1",
            )
            .bind(payto_uri)
            .bind(master_sig_del.as_bytes().as_slice())
            .bind(micros(validity_end))
            .execute(tx.conn())
            .await?;
            tx.notify(TOPIC_KEYS, "");
            Ok(Some(Stored::Inserted))
        })
    })
    .await
}

pub(super) async fn insert_wire_fee(
    db: &PgDb,
    currency: Currency,
    row: WireFeeRow,
) -> Result<Stored, StoreError> {
    let row = &row;
    db.retry_write(|tx| {
        Box::pin(async move {
            lock_management(tx, "wire-fees").await?;
            let overlapping = sqlx::query(concat!(
                "SELECT ",
                wire_fee_columns!(),
                " FROM wire_fees WHERE wire_method = $1 AND start_date < $3 AND end_date > $2"
            ))
            .bind(&row.wire_method)
            .bind(micros(row.start))
            .bind(micros(row.end))
            .fetch_all(tx.conn())
            .await?
            .iter()
            .map(|r| wire_fee_row(r, currency))
            .collect::<Result<Vec<_>, StoreError>>()?;
            if let Some(known) = Stored::overlapping(&overlapping, |first| {
                (first.start, first.end, first.wire_fee, first.closing_fee)
                    == (row.start, row.end, row.wire_fee, row.closing_fee)
            }) {
                return Ok(known);
            }
            let w = cols(&row.wire_fee);
            let c = cols(&row.closing_fee);
            sqlx::query(
                "INSERT INTO wire_fees (wire_method, start_date, end_date, wire_fee_val, \
                 wire_fee_frac, closing_fee_val, closing_fee_frac, master_sig) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&row.wire_method)
            .bind(micros(row.start))
            .bind(micros(row.end))
            .bind(w.0)
            .bind(w.1)
            .bind(c.0)
            .bind(c.1)
            .bind(row.master_sig.as_bytes().as_slice())
            .execute(tx.conn())
            .await?;
            tx.notify(TOPIC_KEYS, "");
            Ok(Stored::Inserted)
        })
    })
    .await
}

pub(super) async fn insert_global_fee(
    db: &PgDb,
    currency: Currency,
    row: GlobalFeeRow,
) -> Result<Stored, StoreError> {
    let row = &row;
    db.retry_write(|tx| {
        Box::pin(async move {
            lock_management(tx, "global-fees").await?;
            let overlapping = sqlx::query(concat!(
                "SELECT ",
                global_fee_columns!(),
                " FROM global_fees WHERE start_date < $2 AND end_date > $1"
            ))
            .bind(micros(row.start))
            .bind(micros(row.end))
            .fetch_all(tx.conn())
            .await?
            .iter()
            .map(|r| global_fee_row(r, currency))
            .collect::<Result<Vec<_>, StoreError>>()?;
            if let Some(known) = Stored::overlapping(&overlapping, |first| {
                GlobalFeeRow {
                    master_sig: row.master_sig,
                    ..first.clone()
                } == *row
            }) {
                return Ok(known);
            }
            let h = cols(&row.history_fee);
            let a = cols(&row.account_fee);
            let p = cols(&row.purse_fee);
            let limit = i32::try_from(row.purse_account_limit).map_err(|_| {
                StoreError::Internal(format!("purse account limit {}", row.purse_account_limit))
            })?;
            sqlx::query(
                "INSERT INTO global_fees (start_date, end_date, history_fee_val, \
                 history_fee_frac, account_fee_val, account_fee_frac, purse_fee_val, \
                 purse_fee_frac, purse_timeout, history_expiration, purse_account_limit, \
                 master_sig) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(micros(row.start))
            .bind(micros(row.end))
            .bind(h.0)
            .bind(h.1)
            .bind(a.0)
            .bind(a.1)
            .bind(p.0)
            .bind(p.1)
            .bind(row.purse_timeout.to_sql_micros())
            .bind(row.history_expiration.to_sql_micros())
            .bind(limit)
            .bind(row.master_sig.as_bytes().as_slice())
            .execute(tx.conn())
            .await?;
            tx.notify(TOPIC_KEYS, "");
            Ok(Stored::Inserted)
        })
    })
    .await
}

// ---------------------------------------------------------------- reserves

pub(super) async fn wirewatch_progress(
    db: &PgDb,
    _currency: Currency,
    account: String,
) -> Result<Option<u64>, StoreError> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT last_row_id FROM wirewatch_progress WHERE account_section = $1")
            .bind(account)
            .fetch_optional(db.pool())
            .await?;
    last.map(|l| unsigned("wirewatch progress", l)).transpose()
}

pub(super) async fn credit_reserves(
    db: &PgDb,
    _currency: Currency,
    account: String,
    transfers: Vec<IncomingTransfer>,
    last_row: u64,
    reserve_lifetime: RelativeTime,
) -> Result<CreditReport, StoreError> {
    let now = super::now();
    let expiration = now.saturating_add(reserve_lifetime);
    let n = transfers.len();
    let mut references = Vec::with_capacity(n);
    let mut vals = Vec::with_capacity(n);
    let mut fracs = Vec::with_capacity(n);
    let mut paytos = Vec::with_capacity(n);
    let mut dates = Vec::with_capacity(n);
    let mut reserve_pubs: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
    let mut subjects: Vec<Option<String>> = Vec::with_capacity(n);
    let mut request_uids: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
    let mut wtids: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
    let mut payloads: Vec<Option<String>> = Vec::with_capacity(n);
    for t in &transfers {
        references.push(signed("wire reference", t.wire_reference)?);
        let (v, f) = cols(&t.amount);
        vals.push(v);
        fracs.push(f);
        paytos.push(t.debit_payto.as_str());
        dates.push(micros(t.execution_date));
        match &t.reserve_pub {
            Ok(reserve_pub) => {
                reserve_pubs.push(Some(reserve_pub.to_vec()));
                subjects.push(None);
                request_uids.push(None);
                wtids.push(None);
                payloads.push(Some(payload(TOPIC_RESERVE, &reserve_key(reserve_pub))));
            }
            Err(subject) => {
                let request_uid = bounce_request_uid(&account, t.wire_reference);
                reserve_pubs.push(None);
                subjects.push(Some(subject.clone()));
                wtids.push(Some(bounce_wtid(&request_uid).to_vec()));
                request_uids.push(Some(request_uid.to_vec()));
                payloads.push(None);
            }
        }
    }
    let last_row = signed("wirewatch progress", last_row)?;
    let outcomes: Vec<String> = retry(|| async {
        sqlx::query_scalar(
            "CALL exchange_credit_reserves($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14, $15, NULL)",
        )
        .bind(&account)
        .bind(last_row)
        .bind(micros(now))
        .bind(micros(expiration))
        .bind(&references)
        .bind(&vals)
        .bind(&fracs)
        .bind(&paytos)
        .bind(&dates)
        .bind(&reserve_pubs)
        .bind(&subjects)
        .bind(&request_uids)
        .bind(&wtids)
        .bind(&payloads)
        .bind(db.channel())
        .fetch_one(db.pool())
        .await
        .map_err(StoreError::from)
    })
    .await?;
    if outcomes.len() != n {
        return Err(corrupt(format!(
            "credit_reserves answered {} outcomes for {n} transfers",
            outcomes.len()
        )));
    }
    let mut report = CreditReport::default();
    for (t, outcome) in transfers.into_iter().zip(outcomes) {
        match (outcome.as_str(), t.reserve_pub) {
            ("credited", Ok(reserve_pub)) => report.credited.push(reserve_pub),
            ("bounced", Err(_)) => report.bounced += 1,
            ("duplicate", _) => report.duplicates += 1,
            (other, _) => return Err(corrupt(format!("credit outcome {other:?}"))),
        }
    }
    Ok(report)
}

// ---------------------------------------------------------------- bounces

macro_rules! bounce_columns {
    () => {
        "bounce_serial, account_section, wire_reference, amount_val, amount_frac, debit_payto, \
         subject, execution_date, request_uid, wtid, closing_fee_val, closing_fee_frac, \
         returned_val, returned_frac, exchange_base_url, gateway_row_id, done, failures"
    };
}

fn bounce_row(r: &PgRow, currency: Currency) -> Result<BounceRow, StoreError> {
    let fee = cardcash_store::columns::pg_amount_opt(r, "closing_fee", currency)?;
    let returned = cardcash_store::columns::pg_amount_opt(r, "returned", currency)?;
    let base_url: Option<String> = r.try_get("exchange_base_url")?;
    let decision = match (fee, returned, base_url) {
        (Some(closing_fee), Some(returned), Some(exchange_base_url)) => Some(BounceDecision {
            closing_fee,
            returned,
            exchange_base_url,
        }),
        (None, None, None) => None,
        _ => return Err(corrupt("bounce decided in part")),
    };
    let gateway: Option<i64> = r.try_get("gateway_row_id")?;
    let failures: i32 = r.try_get("failures")?;
    Ok(BounceRow {
        serial: r.try_get("bounce_serial")?,
        account_section: r.try_get("account_section")?,
        wire_reference: unsigned("wire reference", r.try_get("wire_reference")?)?,
        amount: am(r, currency, "amount")?,
        debit_payto: r.try_get("debit_payto")?,
        subject: r.try_get("subject")?,
        execution_date: ts(r, "execution_date")?,
        request_uid: hash(r, "request_uid")?,
        wtid: short(r, "wtid")?,
        decision,
        gateway_row_id: gateway_row(gateway)?,
        done: r.try_get("done")?,
        failures: count(failures.into()),
    })
}

pub(super) async fn pending_bounces(
    db: &PgDb,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<BounceRow>, StoreError> {
    read_all(
        db,
        sqlx::query(concat!(
            "SELECT ",
            bounce_columns!(),
            " FROM wire_in_bounced WHERE NOT done AND next_attempt <= $1 \
             ORDER BY bounce_serial LIMIT $2"
        ))
        .bind(micros(now))
        .bind(i64::from(limit)),
        |r| bounce_row(r, currency),
    )
    .await
}

/// The queue of bounced incoming transfers (see [`Outgoing`]).
const BOUNCES: OutgoingSql = OutgoingSql {
    next_attempt: "SELECT min(next_attempt) FROM wire_in_bounced WHERE NOT done",
    done: "UPDATE wire_in_bounced SET gateway_row_id = $2, done = TRUE \
           WHERE bounce_serial = $1 AND closing_fee_val IS NOT NULL \
           AND gateway_row_id IS NULL",
    failed: "UPDATE wire_in_bounced SET failures = failures + 1, next_attempt = $2 \
             WHERE bounce_serial = $1 AND NOT done",
};

pub(super) async fn bounce(
    db: &PgDb,
    currency: Currency,
    account: String,
    wire_reference: u64,
) -> Result<Option<BounceRow>, StoreError> {
    read_opt(
        db,
        sqlx::query(concat!(
            "SELECT ",
            bounce_columns!(),
            " FROM wire_in_bounced WHERE account_section = $1 AND wire_reference = $2"
        ))
        .bind(account)
        .bind(signed("wire reference", wire_reference)?),
        |r| bounce_row(r, currency),
    )
    .await
}

/// One statement: keeps min(closing fee, amount), sends back the rest; only an undecided row
/// (a concurrent decision waits for the row lock, then finds it decided and changes nothing).
pub(super) async fn decide_bounce(
    db: &PgDb,
    currency: Currency,
    serial: i64,
    closing_fee: Amount,
    exchange_base_url: String,
) -> Result<Option<BounceRow>, StoreError> {
    let fee = cols(&closing_fee);
    write_opt(db, || {
        sqlx::query(
            "UPDATE wire_in_bounced b SET \
               closing_fee_val = div(d.kept, 100000000), \
               closing_fee_frac = mod(d.kept, 100000000), \
               returned_val = div(d.amount - d.kept, 100000000), \
               returned_frac = mod(d.amount - d.kept, 100000000), \
               exchange_base_url = $4, done = (d.amount = d.kept) \
             FROM (SELECT bounce_serial, exchange_units(amount_val, amount_frac) AS amount, \
                          LEAST(exchange_units(amount_val, amount_frac), \
                                exchange_units($2, $3)) AS kept \
                     FROM wire_in_bounced WHERE bounce_serial = $1) d \
             WHERE b.bounce_serial = d.bounce_serial AND b.closing_fee_val IS NULL \
             RETURNING b.*",
        )
        .bind(serial)
        .bind(fee.0)
        .bind(fee.1)
        .bind(&exchange_base_url)
    })
    .await?
    .map(|r| bounce_row(&r, currency))
    .transpose()
}

// ---------------------------------------------------------------- reserves (reads)

pub(super) async fn reserve(
    db: &PgDb,
    currency: Currency,
    reserve_pub: EddsaPublicKey,
) -> Result<Option<ReserveRow>, StoreError> {
    read_opt(
        db,
        sqlx::query(
            "SELECT reserve_pub, balance_val, balance_frac, total_in_val, total_in_frac, created, \
             last_activity, expiration_date FROM reserves WHERE reserve_pub = $1",
        )
        .bind(reserve_pub.as_bytes().as_slice()),
        |r| {
            Ok(ReserveRow {
                reserve_pub: eddsa(r, "reserve_pub")?,
                balance: am(r, currency, "balance")?,
                total_in: am(r, currency, "total_in")?,
                created: ts(r, "created")?,
                last_activity: ts(r, "last_activity")?,
                expiration: ts(r, "expiration_date")?,
            })
        },
    )
    .await
}

pub(super) async fn reserve_history(
    db: &PgDb,
    currency: Currency,
    reserve_pub: EddsaPublicKey,
) -> Result<Vec<ReserveHistoryEntry>, StoreError> {
    // Credits, then withdrawals, then closings (a closing's WTID comes in the `h_blind_ev`
    // column), then recoups (the coin in the `h_denom_pub` column), each in the order they
    // happened (as on SQLite), in one statement (one snapshot).
    read_all(
        db,
        sqlx::query(
            "SELECT 0 AS kind, reserve_in_serial AS serial, amount_val, amount_frac, debit_payto, \
             wire_reference, execution_date, NULL::BIGINT AS fee_val, NULL::INTEGER AS fee_frac, \
             NULL::BYTEA AS h_denom_pub, NULL::BYTEA AS h_blind_ev, NULL::BYTEA AS reserve_sig \
             FROM reserves_in WHERE reserve_pub = $1 \
             UNION ALL \
             SELECT 1, w.withdraw_serial, w.amount_with_fee_val, w.amount_with_fee_frac, NULL, \
             NULL, NULL, d.fee_withdraw_val, d.fee_withdraw_frac, d.h_denom_pub, w.h_blind_ev, \
             w.reserve_sig FROM withdrawals w JOIN denominations d USING (denom_serial) \
             WHERE w.reserve_pub = $1 \
             UNION ALL \
             SELECT 2, close_serial, amount_val, amount_frac, receiver_payto, NULL, \
             execution_date, closing_fee_val, closing_fee_frac, NULL, wtid, NULL \
             FROM reserves_close WHERE reserve_pub = $1 \
             UNION ALL \
             SELECT 3, recoup_serial, amount_val, amount_frac, NULL, NULL, recoup_timestamp, NULL, \
             NULL, coin_pub, NULL, NULL FROM recoups WHERE reserve_pub = $1 \
             ORDER BY kind, serial",
        )
        .bind(reserve_pub.as_bytes().as_slice()),
        |r| {
            let kind: i32 = r.try_get("kind")?;
            Ok(match kind {
                0 => ReserveHistoryEntry::Credit {
                    amount: am(r, currency, "amount")?,
                    debit_payto: r.try_get("debit_payto")?,
                    wire_reference: unsigned("wire reference", r.try_get("wire_reference")?)?,
                    execution_date: ts(r, "execution_date")?,
                },
                1 => ReserveHistoryEntry::Withdraw {
                    amount_with_fee: am(r, currency, "amount")?,
                    withdraw_fee: am(r, currency, "fee")?,
                    h_denom_pub: hash(r, "h_denom_pub")?,
                    h_blind_ev: hash(r, "h_blind_ev")?,
                    reserve_sig: sig(r, "reserve_sig")?,
                },
                3 => recoup::reserve_history_entry(r, currency)?,
                _ => ReserveHistoryEntry::Closing {
                    amount: am(r, currency, "amount")?,
                    closing_fee: am(r, currency, "fee")?,
                    execution_date: ts(r, "execution_date")?,
                    receiver_payto: r.try_get("debit_payto")?,
                    wtid: short(r, "h_blind_ev")?,
                },
            })
        },
    )
    .await
}

// ---------------------------------------------------------------- withdraw

pub(super) async fn stored_withdrawals(
    db: &PgDb,
    _currency: Currency,
    hashes: Vec<HashCode>,
) -> Result<Vec<StoredWithdrawal>, StoreError> {
    let keys: Vec<Vec<u8>> = hashes.iter().map(HashCode::to_vec).collect();
    // Not prepared: a plan cached while the table was small (a sequential scan) would stay
    // with the connection as the table grows.
    let mut found: Vec<StoredWithdrawal> = read_all(
        db,
        sqlx::query(
            "SELECT h_blind_ev, reserve_pub, denom_sig FROM withdrawals WHERE h_blind_ev = ANY($1)",
        )
        .persistent(false)
        .bind(keys),
        |r| {
            Ok(StoredWithdrawal {
                h_blind_ev: hash(r, "h_blind_ev")?,
                reserve_pub: eddsa(r, "reserve_pub")?,
                denom_sig: r.try_get("denom_sig")?,
            })
        },
    )
    .await?;
    // In request order, as the SQLite side returns them.
    found.sort_by_key(|w| hashes.iter().position(|h| *h == w.h_blind_ev));
    Ok(found)
}

pub(super) async fn batch_withdraw(
    db: &PgDb,
    currency: Currency,
    reserve_pub: EddsaPublicKey,
    planchets: Vec<NewWithdrawal>,
    now: Timestamp,
) -> Result<WithdrawOutcome, StoreError> {
    let n = planchets.len();
    let mut h_blind_evs = Vec::with_capacity(n);
    let mut denom_serials = Vec::with_capacity(n);
    let mut reserve_sigs = Vec::with_capacity(n);
    let mut vals = Vec::with_capacity(n);
    let mut fracs = Vec::with_capacity(n);
    let mut denom_sigs = Vec::with_capacity(n);
    let mut nonces: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
    for p in &planchets {
        h_blind_evs.push(p.h_blind_ev.to_vec());
        denom_serials.push(p.denom_serial);
        reserve_sigs.push(p.reserve_sig.to_vec());
        let (v, f) = cols(&p.amount_with_fee);
        vals.push(v);
        fracs.push(f);
        denom_sigs.push(p.denom_sig.as_slice());
        nonces.push(p.cs_nonce.map(|n| n.to_vec()));
    }
    let notification = payload(TOPIC_RESERVE, &reserve_key(&reserve_pub));
    let row = write_row(db, || {
        sqlx::query(
            "CALL exchange_batch_withdraw($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        )
        .bind(reserve_pub.as_bytes().as_slice())
        .bind(micros(now))
        .bind(&h_blind_evs)
        .bind(&denom_serials)
        .bind(&reserve_sigs)
        .bind(&vals)
        .bind(&fracs)
        .bind(&denom_sigs)
        .bind(&nonces)
        .bind(&notification)
        .bind(db.channel())
    })
    .await?;
    match outcome(&row)? {
        "done" => {
            let sigs: Option<Vec<Vec<u8>>> = row.try_get("out_sigs")?;
            let sigs = sigs.unwrap_or_default();
            if sigs.len() != n {
                return Err(corrupt(format!(
                    "batch withdraw answered {} signatures for {n} planchets",
                    sigs.len()
                )));
            }
            Ok(WithdrawOutcome::Done(sigs))
        }
        "unknown_reserve" => Ok(WithdrawOutcome::UnknownReserve),
        "insufficient" => Ok(WithdrawOutcome::InsufficientFunds {
            balance: am(&row, currency, "out_balance")?,
            requested: am(&row, currency, "out_requested")?,
        }),
        "nonce_reuse" => Ok(WithdrawOutcome::NonceReuse {
            index: index(&row)?,
        }),
        other => Err(corrupt(format!("batch withdraw outcome {other:?}"))),
    }
}

// ---------------------------------------------------------------- deposits and refunds

pub(super) async fn batch_deposit(
    db: &PgDb,
    _currency: Currency,
    d: NewBatchDeposit,
) -> Result<DepositOutcome, StoreError> {
    let n = d.coins.len();
    let mut coin_pubs = Vec::with_capacity(n);
    let mut denom_serials = Vec::with_capacity(n);
    let mut denom_sigs = Vec::with_capacity(n);
    let mut value_vals = Vec::with_capacity(n);
    let mut value_fracs = Vec::with_capacity(n);
    let mut coin_sigs = Vec::with_capacity(n);
    let mut amount_vals = Vec::with_capacity(n);
    let mut amount_fracs = Vec::with_capacity(n);
    let mut fee_vals = Vec::with_capacity(n);
    let mut fee_fracs = Vec::with_capacity(n);
    for c in &d.coins {
        coin_pubs.push(c.coin_pub.to_vec());
        denom_serials.push(c.denom_serial);
        denom_sigs.push(c.denom_sig.as_slice());
        let (v, f) = cols(&c.coin_value);
        value_vals.push(v);
        value_fracs.push(f);
        coin_sigs.push(c.coin_sig.to_vec());
        let (v, f) = cols(&c.amount_with_fee);
        amount_vals.push(v);
        amount_fracs.push(f);
        let (v, f) = cols(&c.deposit_fee);
        fee_vals.push(v);
        fee_fracs.push(f);
    }
    let total = cols(&d.total_without_fee);
    let row = write_row(db, || {
        sqlx::query(
            "CALL exchange_batch_deposit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, NULL, NULL, NULL)",
        )
        .bind(d.merchant_pub.as_bytes().as_slice())
        .bind(d.h_contract_terms.as_bytes().as_slice())
        .bind(&d.merchant_payto)
        .bind(d.h_payto.as_bytes().as_slice())
        .bind(d.wire_salt.as_bytes().as_slice())
        .bind(micros(d.wallet_timestamp))
        .bind(micros(d.exchange_timestamp))
        .bind(micros(d.refund_deadline))
        .bind(micros(d.wire_deadline))
        .bind(d.wallet_data_hash.map(|h| h.to_vec()))
        .bind(d.h_coin_sigs.as_bytes().as_slice())
        .bind(total.0)
        .bind(total.1)
        .bind(&coin_pubs)
        .bind(&denom_serials)
        .bind(&denom_sigs)
        .bind(&value_vals)
        .bind(&value_fracs)
        .bind(&coin_sigs)
        .bind(&amount_vals)
        .bind(&amount_fracs)
        .bind(&fee_vals)
        .bind(&fee_fracs)
        .bind(db.channel())
    })
    .await?;
    match outcome(&row)? {
        "done" => Ok(DepositOutcome::Done {
            exchange_timestamp: ts(&row, "out_exchange_timestamp")?,
        }),
        "insufficient" => Ok(DepositOutcome::InsufficientFunds {
            index: index(&row)?,
        }),
        "coin_conflict" => Ok(DepositOutcome::CoinConflict {
            index: index(&row)?,
        }),
        "conflict" => Ok(DepositOutcome::Conflict {
            index: index(&row)?,
        }),
        other => Err(corrupt(format!("batch deposit outcome {other:?}"))),
    }
}

pub(super) async fn coin(
    db: &PgDb,
    currency: Currency,
    coin_pub: EddsaPublicKey,
) -> Result<Option<CoinRow>, StoreError> {
    // The coin and its history in one statement (one snapshot): deposits, then refunds, melts,
    // recoups, recoup-refreshes of the coin, recoup-refreshes into it, each in the order they
    // happened (as on SQLite; the recoups' columns: `recoup::coin_history_entry`). `kind` is
    // NULL for a coin without history.
    let rows = sqlx::query(
        "SELECT d.h_denom_pub, k.remaining_val, k.remaining_frac, h.* \
         FROM known_coins k JOIN denominations d USING (denom_serial) \
         LEFT JOIN LATERAL ( \
           SELECT 0 AS kind, c.coin_deposit_serial AS serial, \
                  c.amount_with_fee_val AS amount_val, c.amount_with_fee_frac AS amount_frac, \
                  c.deposit_fee_val AS fee_val, c.deposit_fee_frac AS fee_frac, \
                  b.merchant_pub, b.h_contract_terms, b.h_payto, b.wire_salt, \
                  b.wallet_timestamp, b.refund_deadline, b.wire_deadline, b.wallet_data_hash, \
                  c.coin_sig AS sig, NULL::BIGINT AS rtransaction_id \
             FROM coin_deposits c JOIN batch_deposits b USING (batch_deposit_serial) \
            WHERE c.coin_pub = k.coin_pub \
           UNION ALL \
           SELECT 1, r.refund_serial, r.amount_val, r.amount_frac, d.fee_refund_val, \
                  d.fee_refund_frac, b.merchant_pub, b.h_contract_terms, NULL, NULL, NULL, \
                  NULL, NULL, NULL, r.merchant_sig, r.rtransaction_id \
             FROM refunds r JOIN coin_deposits c USING (coin_deposit_serial) \
             JOIN batch_deposits b USING (batch_deposit_serial) \
            WHERE r.coin_pub = k.coin_pub \
           UNION ALL \
           SELECT 2, m.melt_serial, m.amount_with_fee_val, m.amount_with_fee_frac, \
                  m.melt_fee_val, m.melt_fee_frac, NULL, m.rc, NULL, NULL, NULL, NULL, NULL, \
                  NULL, m.old_coin_sig, m.deposits_before \
             FROM refresh_commitments m WHERE m.old_coin_pub = k.coin_pub \
           UNION ALL \
           SELECT 3, q.recoup_serial, q.amount_val, q.amount_frac, NULL, NULL, q.reserve_pub, \
                  NULL, q.coin_blind, NULL, q.recoup_timestamp, NULL, NULL, NULL, q.coin_sig, \
                  NULL FROM recoups q WHERE q.coin_pub = k.coin_pub \
           UNION ALL \
           SELECT 4, q.recoup_refresh_serial, q.amount_val, q.amount_frac, NULL, NULL, \
                  q.old_coin_pub, NULL, q.coin_blind, NULL, q.recoup_timestamp, NULL, NULL, \
                  NULL, q.coin_sig, NULL FROM recoup_refreshes q WHERE q.coin_pub = k.coin_pub \
           UNION ALL \
           SELECT 5, q.recoup_refresh_serial, q.amount_val, q.amount_frac, NULL, NULL, \
                  q.coin_pub, NULL, NULL, NULL, q.recoup_timestamp, NULL, NULL, NULL, NULL, \
                  NULL FROM recoup_refreshes q WHERE q.old_coin_pub = k.coin_pub \
         ) h ON TRUE \
         WHERE k.coin_pub = $1 ORDER BY h.kind, h.serial",
    )
    .bind(coin_pub.as_bytes().as_slice())
    .fetch_all(db.pool())
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let h_denom_pub = hash(first, "h_denom_pub")?;
    let remaining = am(first, currency, "remaining")?;
    let mut history = Vec::with_capacity(rows.len());
    // Melts (kind 2: rc in h_contract_terms, deposits_before in rtransaction_id) go among the
    // deposits, see `refresh::merge_melts`.
    let mut melts = Vec::new();
    for r in &rows {
        let kind: Option<i32> = r.try_get("kind")?;
        match kind {
            None => {}
            Some(0) => history.push(CoinHistoryEntry::Deposit {
                amount_with_fee: am(r, currency, "amount")?,
                deposit_fee: am(r, currency, "fee")?,
                merchant_pub: eddsa(r, "merchant_pub")?,
                h_contract_terms: hash(r, "h_contract_terms")?,
                h_payto: short(r, "h_payto")?,
                wire_salt: salt(r, "wire_salt")?,
                wallet_timestamp: ts(r, "wallet_timestamp")?,
                refund_deadline: ts(r, "refund_deadline")?,
                wire_deadline: ts(r, "wire_deadline")?,
                wallet_data_hash: bytes_opt(r, "wallet_data_hash", HashCode::from_slice)?,
                coin_sig: sig(r, "sig")?,
            }),
            Some(2) => melts.push(refresh::melt_history(r, currency)?),
            Some(kind @ 3..=5) => history.push(recoup::coin_history_entry(r, kind, currency)?),
            Some(_) => history.push(CoinHistoryEntry::Refund {
                amount: am(r, currency, "amount")?,
                refund_fee: am(r, currency, "fee")?,
                merchant_pub: eddsa(r, "merchant_pub")?,
                h_contract_terms: hash(r, "h_contract_terms")?,
                rtransaction_id: unsigned("rtransaction id", r.try_get("rtransaction_id")?)?,
                merchant_sig: sig(r, "sig")?,
            }),
        }
    }
    let history = super::refresh::merge_melts(history, melts);
    Ok(Some(CoinRow {
        coin_pub,
        h_denom_pub,
        remaining,
        history,
    }))
}

pub(super) async fn refund(
    db: &PgDb,
    currency: Currency,
    r: NewRefund,
    refund_fee: Amount,
) -> Result<RefundOutcome, StoreError> {
    let rtid = signed("rtransaction id", r.rtransaction_id)?;
    let a = cols(&r.amount);
    let f = cols(&refund_fee);
    let row = write_row(db, || {
        sqlx::query(
            "CALL exchange_refund($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL)",
        )
        .bind(r.coin_pub.as_bytes().as_slice())
        .bind(r.merchant_pub.as_bytes().as_slice())
        .bind(r.h_contract_terms.as_bytes().as_slice())
        .bind(rtid)
        .bind(a.0)
        .bind(a.1)
        .bind(r.merchant_sig.as_bytes().as_slice())
        .bind(f.0)
        .bind(f.1)
        .bind(db.channel())
    })
    .await?;
    match outcome(&row)? {
        "done" => Ok(RefundOutcome::Done),
        "not_found" => Ok(RefundOutcome::DepositNotFound),
        "wired" => Ok(RefundOutcome::AlreadyWired),
        "conflict" => Ok(RefundOutcome::Conflict),
        "exceeds" => Ok(RefundOutcome::Exceeds {
            deposited: am(&row, currency, "out_deposited")?,
        }),
        "fee" => Ok(RefundOutcome::FeeExceedsAmount),
        other => Err(corrupt(format!("refund outcome {other:?}"))),
    }
}

// ---------------------------------------------------------------- settlement

pub(super) async fn due_aggregates(
    db: &PgDb,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<DueAggregate>, StoreError> {
    // As on SQLite: of the first 10000 due batches that do not wait (by serial), the merchant
    // accounts of the first `limit` (by first batch); each with all of its open due batches,
    // the waiting ones included; ordered by merchant key and payto URI (byte order). Accounts
    // whose due batches all wait are not chosen: they cannot fill the page.
    read_all(
        db,
        sqlx::query(
            "WITH chosen AS ( \
               SELECT merchant_pub, merchant_payto FROM ( \
                 SELECT batch_deposit_serial, merchant_pub, merchant_payto FROM batch_deposits \
                  WHERE NOT done AND NOT waiting AND wire_deadline <= $1 \
                  ORDER BY batch_deposit_serial LIMIT 10000 \
               ) f GROUP BY merchant_pub, merchant_payto \
                ORDER BY min(batch_deposit_serial) LIMIT $2 \
             ), due AS ( \
               SELECT b.batch_deposit_serial, b.merchant_pub, b.merchant_payto, b.h_payto \
                 FROM batch_deposits b JOIN chosen USING (merchant_pub, merchant_payto) \
                WHERE NOT b.done AND b.wire_deadline <= $1 \
             ) \
             SELECT d.merchant_pub, d.merchant_payto, \
                    (array_agg(d.h_payto ORDER BY d.batch_deposit_serial))[1] AS h_payto, \
                    array_agg(d.batch_deposit_serial ORDER BY d.batch_deposit_serial) AS serials, \
                    coalesce(sum((SELECT sum(s.share) FROM coin_deposit_shares s \
                                  WHERE s.batch_deposit_serial = d.batch_deposit_serial)), \
                             0)::TEXT AS total \
               FROM due d \
              GROUP BY d.merchant_pub, d.merchant_payto \
              ORDER BY d.merchant_pub, d.merchant_payto COLLATE \"C\"",
        )
        .bind(micros(now))
        .bind(i64::from(limit)),
        |r| {
            Ok(DueAggregate {
                merchant_pub: eddsa(r, "merchant_pub")?,
                merchant_payto: r.try_get("merchant_payto")?,
                h_payto: short(r, "h_payto")?,
                batch_serials: r.try_get("serials")?,
                total: sum_amount(r, currency, "total")?,
            })
        },
    )
    .await
}

pub(super) async fn next_wire_deadline(
    db: &PgDb,
    _currency: Currency,
) -> Result<Option<Timestamp>, StoreError> {
    earliest(
        db,
        "SELECT min(wire_deadline) FROM batch_deposits WHERE NOT done AND NOT waiting",
    )
    .await
}

pub(super) async fn record_wire_out(
    db: &PgDb,
    currency: Currency,
    wire_out: NewWireOut,
) -> Result<Option<WireOutRow>, StoreError> {
    let NewWireOut {
        aggregate,
        wtid,
        request_uid,
        account_section,
        wire_fee,
        now,
    } = wire_out;
    let fee = cols(&wire_fee);
    let row = write_row(db, || {
        sqlx::query(
            "CALL exchange_record_wire_out($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             NULL, NULL, NULL)",
        )
        .bind(&aggregate.batch_serials)
        .bind(wtid.as_bytes().as_slice())
        .bind(request_uid.as_bytes().as_slice())
        .bind(micros(now))
        .bind(aggregate.merchant_pub.as_bytes().as_slice())
        .bind(&aggregate.merchant_payto)
        .bind(aggregate.h_payto.as_bytes().as_slice())
        .bind(&account_section)
        .bind(fee.0)
        .bind(fee.1)
        .bind(db.channel())
    })
    .await?;
    let Some(serial) = row.try_get::<Option<i64>, _>("out_serial")? else {
        return Ok(None);
    };
    Ok(Some(WireOutRow {
        serial,
        wtid,
        request_uid,
        execution_date: now,
        merchant_pub: aggregate.merchant_pub,
        merchant_payto: aggregate.merchant_payto,
        h_payto: aggregate.h_payto,
        account_section,
        amount: am(&row, currency, "out_amount")?,
        wire_fee,
        gateway_row_id: None,
        failures: 0,
    }))
}

macro_rules! wire_out_columns {
    () => {
        "w.wire_out_serial, w.wtid, w.request_uid, w.execution_date, w.merchant_pub, \
         w.merchant_payto, w.h_payto, w.account_section, w.amount_val, w.amount_frac, \
         w.wire_fee_val, w.wire_fee_frac, w.gateway_row_id, w.failures"
    };
}

fn wire_out_row(r: &PgRow, currency: Currency) -> Result<WireOutRow, StoreError> {
    let gateway: Option<i64> = r.try_get("gateway_row_id")?;
    let failures: i32 = r.try_get("failures")?;
    Ok(WireOutRow {
        serial: r.try_get("wire_out_serial")?,
        wtid: short(r, "wtid")?,
        request_uid: hash(r, "request_uid")?,
        execution_date: ts(r, "execution_date")?,
        merchant_pub: eddsa(r, "merchant_pub")?,
        merchant_payto: r.try_get("merchant_payto")?,
        h_payto: short(r, "h_payto")?,
        account_section: r.try_get("account_section")?,
        amount: am(r, currency, "amount")?,
        wire_fee: am(r, currency, "wire_fee")?,
        gateway_row_id: gateway_row(gateway)?,
        failures: count(failures.into()),
    })
}

/// The queue of transfers to merchants (see [`Outgoing`]).
const WIRE_OUTS: OutgoingSql = OutgoingSql {
    next_attempt: "SELECT min(next_attempt) FROM wire_out WHERE gateway_row_id IS NULL",
    done: "UPDATE wire_out SET gateway_row_id = $2 WHERE wire_out_serial = $1",
    failed: "UPDATE wire_out SET failures = failures + 1, next_attempt = $2 \
             WHERE wire_out_serial = $1",
};

pub(super) async fn pending_wire_outs(
    db: &PgDb,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<WireOutRow>, StoreError> {
    read_all(
        db,
        sqlx::query(concat!(
            "SELECT ",
            wire_out_columns!(),
            " FROM wire_out w WHERE w.gateway_row_id IS NULL AND w.next_attempt <= $1 \
             ORDER BY w.wire_out_serial LIMIT $2"
        ))
        .bind(micros(now))
        .bind(i64::from(limit)),
        |r| wire_out_row(r, currency),
    )
    .await
}

/// The sum of a coin deposit's refunds in units, as text (`c` is the `coin_deposits` row).
macro_rules! refunded {
    () => {
        "(SELECT coalesce(sum(exchange_units(r.amount_val, r.amount_frac)), 0) FROM refunds r \
          WHERE r.coin_deposit_serial = c.coin_deposit_serial)::TEXT"
    };
}

pub(super) async fn wire_out(
    db: &PgDb,
    currency: Currency,
    wtid: ShortHashCode,
) -> Result<Option<(WireOutRow, Vec<AggregatedDeposit>)>, StoreError> {
    // The transfer and the deposits it paid in one statement (one snapshot); `coin_pub` is
    // NULL for a transfer without deposits (none is recorded so).
    let rows = sqlx::query(concat!(
        "SELECT ",
        wire_out_columns!(),
        ", d.* FROM wire_out w LEFT JOIN LATERAL ( \
           SELECT c.coin_deposit_serial, b.h_contract_terms, c.coin_pub, \
                  c.amount_with_fee_val, c.amount_with_fee_frac, c.deposit_fee_val, \
                  c.deposit_fee_frac, ",
        refunded!(),
        " AS refunded \
             FROM batch_deposits b JOIN coin_deposits c USING (batch_deposit_serial) \
            WHERE b.wtid = w.wtid \
         ) d ON TRUE \
         WHERE w.wtid = $1 ORDER BY d.coin_deposit_serial"
    ))
    .bind(wtid.as_bytes().as_slice())
    .fetch_all(db.pool())
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let row = wire_out_row(first, currency)?;
    let mut deposits = Vec::with_capacity(rows.len());
    for r in &rows {
        if r.try_get::<Option<&[u8]>, _>("coin_pub")?.is_none() {
            continue;
        }
        deposits.push(AggregatedDeposit {
            h_contract_terms: hash(r, "h_contract_terms")?,
            coin_pub: eddsa(r, "coin_pub")?,
            amount_with_fee: am(r, currency, "amount_with_fee")?,
            deposit_fee: am(r, currency, "deposit_fee")?,
            refunded: sum_amount(r, currency, "refunded")?,
        });
    }
    Ok(Some((row, deposits)))
}

pub(super) async fn deposit_tracking(
    db: &PgDb,
    currency: Currency,
    merchant_pub: EddsaPublicKey,
    h_contract_terms: HashCode,
    coin_pub: EddsaPublicKey,
) -> Result<Option<DepositTrackingRow>, StoreError> {
    read_opt(
        db,
        sqlx::query(concat!(
            "SELECT b.exchange_timestamp, b.wire_deadline, b.merchant_payto, b.wire_salt, \
             c.amount_with_fee_val, c.amount_with_fee_frac, c.deposit_fee_val, \
             c.deposit_fee_frac, ",
            refunded!(),
            " AS refunded, b.wtid, w.execution_date, b.done AND b.wtid IS NULL AS unwired \
             FROM coin_deposits c JOIN batch_deposits b USING (batch_deposit_serial) \
             LEFT JOIN wire_out w ON w.wtid = b.wtid \
             WHERE c.coin_pub = $1 AND b.merchant_pub = $2 AND b.h_contract_terms = $3 \
             ORDER BY c.coin_deposit_serial LIMIT 1"
        ))
        .bind(coin_pub.as_bytes().as_slice())
        .bind(merchant_pub.as_bytes().as_slice())
        .bind(h_contract_terms.as_bytes().as_slice()),
        |r| {
            let wtid = bytes_opt(r, "wtid", ShortHashCode::from_slice)?;
            let executed = ts_opt(r, "execution_date")?;
            Ok(DepositTrackingRow {
                exchange_timestamp: ts(r, "exchange_timestamp")?,
                wire_deadline: ts(r, "wire_deadline")?,
                merchant_payto: r.try_get("merchant_payto")?,
                wire_salt: salt(r, "wire_salt")?,
                amount_with_fee: am(r, currency, "amount_with_fee")?,
                deposit_fee: am(r, currency, "deposit_fee")?,
                refunded: sum_amount(r, currency, "refunded")?,
                wire: wtid.zip(executed),
                settled_without_transfer: r.try_get("unwired")?,
            })
        },
    )
    .await
}

// ---------------------------------------------------------------- audit

/// Every sum of the audit in one statement: one snapshot of the whole database.
const AUDIT_SQL: &str = "SELECT \
  (SELECT coalesce(sum(exchange_units(amount_val, amount_frac)), 0) FROM reserves_in)::TEXT \
    AS reserves_in, \
  (SELECT coalesce(sum(exchange_units(balance_val, balance_frac)), 0) FROM reserves)::TEXT \
    AS reserve_balances, \
  (SELECT coalesce(sum(exchange_units(total_in_val, total_in_frac)), 0) FROM reserves)::TEXT \
    AS reserve_totals_in, \
  (SELECT coalesce(sum(exchange_units(amount_with_fee_val, amount_with_fee_frac)), 0) \
     FROM withdrawals)::TEXT AS withdrawn_with_fee, \
  (SELECT coalesce(sum(exchange_units(d.fee_withdraw_val, d.fee_withdraw_frac)), 0) \
     FROM withdrawals w JOIN denominations d USING (denom_serial))::TEXT AS withdraw_fees, \
  (SELECT coalesce(sum(exchange_units(amount_with_fee_val, amount_with_fee_frac)), 0) \
     FROM coin_deposits)::TEXT AS deposits_with_fee, \
  (SELECT coalesce(sum(exchange_units(deposit_fee_val, deposit_fee_frac)), 0) \
     FROM coin_deposits)::TEXT AS deposit_fees, \
  (SELECT coalesce(sum(exchange_units(amount_val, amount_frac)), 0) FROM refunds)::TEXT \
    AS refunds, \
  (SELECT coalesce(sum(exchange_units(refund_fee_val, refund_fee_frac)), 0) FROM refunds)::TEXT \
    AS refund_fees, \
  (SELECT coalesce(sum(exchange_units(amount_val, amount_frac)), 0) FROM wire_out)::TEXT \
    AS wired, \
  (SELECT coalesce(sum(exchange_units(wire_fee_val, wire_fee_frac)), 0) FROM wire_out)::TEXT \
    AS wire_fees, \
  (SELECT coalesce(sum(s.share), 0) FROM coin_deposit_shares s \
     JOIN batch_deposits b USING (batch_deposit_serial) WHERE b.wtid IS NOT NULL)::TEXT \
    AS aggregated_shares, \
  (SELECT coalesce(sum(s.share), 0) FROM coin_deposit_shares s \
     JOIN batch_deposits b USING (batch_deposit_serial) WHERE b.done AND b.wtid IS NULL)::TEXT \
    AS settled_unwired_shares, \
  (SELECT coalesce(sum(exchange_units(remaining_val, remaining_frac)), 0) \
     FROM known_coins)::TEXT AS coin_remaining, \
  (SELECT coalesce(sum(exchange_units(d.value_val, d.value_frac)), 0) \
     FROM known_coins k JOIN denominations d USING (denom_serial))::TEXT AS coin_values, \
  (SELECT coalesce(sum(exchange_units(amount_val, amount_frac)), 0) \
     FROM wire_in_bounced)::TEXT AS bounced_in, \
  (SELECT coalesce(sum(exchange_units(returned_val, returned_frac)), 0) \
     FROM wire_in_bounced WHERE gateway_row_id IS NOT NULL)::TEXT AS bounced_returned, \
  (SELECT coalesce(sum(exchange_units(closing_fee_val, closing_fee_frac)), 0) \
     FROM wire_in_bounced WHERE closing_fee_val IS NOT NULL)::TEXT AS bounce_fees, \
  (SELECT coalesce(sum(CASE WHEN closing_fee_val IS NULL \
                            THEN exchange_units(amount_val, amount_frac) \
                            ELSE exchange_units(returned_val, returned_frac) END), 0) \
     FROM wire_in_bounced WHERE NOT done)::TEXT AS bounces_pending, \
  ARRAY(SELECT account_section FROM wire_in_bounced \
         WHERE closing_fee_val IS NOT NULL AND exchange_units(closing_fee_val, closing_fee_frac) \
               + exchange_units(returned_val, returned_frac) \
               <> exchange_units(amount_val, amount_frac) \
         ORDER BY bounce_serial) AS bounces_off_sections, \
  ARRAY(SELECT wire_reference FROM wire_in_bounced \
         WHERE closing_fee_val IS NOT NULL AND exchange_units(closing_fee_val, closing_fee_frac) \
               + exchange_units(returned_val, returned_frac) \
               <> exchange_units(amount_val, amount_frac) \
         ORDER BY bounce_serial) AS bounces_off_references, \
  ARRAY(SELECT r.reserve_pub FROM reserves r \
         WHERE exchange_units(r.balance_val, r.balance_frac) <> \
               coalesce((SELECT sum(exchange_units(i.amount_val, i.amount_frac)) \
                           FROM reserves_in i WHERE i.reserve_pub = r.reserve_pub), 0) \
               - coalesce((SELECT sum(exchange_units(w.amount_with_fee_val, \
                                                     w.amount_with_fee_frac)) \
                             FROM withdrawals w WHERE w.reserve_pub = r.reserve_pub), 0) \
               + coalesce((SELECT sum(exchange_units(q.amount_val, q.amount_frac)) \
                             FROM recoups q WHERE q.reserve_pub = r.reserve_pub), 0) \
               - coalesce((SELECT sum(exchange_units(c.amount_val, c.amount_frac)) \
                             FROM reserves_close c WHERE c.reserve_pub = r.reserve_pub), 0) \
         ORDER BY r.reserve_pub) AS reserves_off_balance, \
  ARRAY(SELECT k.coin_pub FROM known_coins k JOIN denominations d USING (denom_serial) \
         WHERE exchange_units(k.remaining_val, k.remaining_frac) <> \
               exchange_units(d.value_val, d.value_frac) \
               - coalesce((SELECT sum(exchange_units(c.amount_with_fee_val, \
                                                     c.amount_with_fee_frac)) \
                             FROM coin_deposits c WHERE c.coin_pub = k.coin_pub), 0) \
               - coalesce((SELECT sum(exchange_units(m.amount_with_fee_val, \
                                                     m.amount_with_fee_frac)) \
                             FROM refresh_commitments m WHERE m.old_coin_pub = k.coin_pub), 0) \
               + coalesce((SELECT sum(exchange_units(r.amount_val, r.amount_frac) \
                                      - exchange_units(r.refund_fee_val, r.refund_fee_frac)) \
                             FROM refunds r WHERE r.coin_pub = k.coin_pub), 0) \
               - coalesce((SELECT sum(exchange_units(q.amount_val, q.amount_frac)) \
                             FROM recoups q WHERE q.coin_pub = k.coin_pub), 0) \
               - coalesce((SELECT sum(exchange_units(q.amount_val, q.amount_frac)) \
                             FROM recoup_refreshes q WHERE q.coin_pub = k.coin_pub), 0) \
               + coalesce((SELECT sum(exchange_units(q.amount_val, q.amount_frac)) \
                             FROM recoup_refreshes q WHERE q.old_coin_pub = k.coin_pub), 0) \
         ORDER BY k.coin_pub) AS coins_off_balance";

pub(super) async fn audit_sums(db: &PgDb, currency: Currency) -> Result<AuditSums, StoreError> {
    let sql = format!(
        "{AUDIT_SQL}, {}, {}, {}",
        recoup::AUDIT_COLUMNS,
        closing::AUDIT_COLUMNS,
        refresh::AUDIT_COLUMNS
    );
    // Built from constants only.
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(db.pool())
        .await?;
    let keys = |column: &str| -> Result<Vec<EddsaPublicKey>, StoreError> {
        let raw: Vec<Vec<u8>> = r.try_get(column)?;
        raw.iter()
            .map(|b| fixed(column, b, EddsaPublicKey::from_slice))
            .collect()
    };
    let sections: Vec<String> = r.try_get("bounces_off_sections")?;
    let references: Vec<i64> = r.try_get("bounces_off_references")?;
    let bounces_off_balance = sections
        .into_iter()
        .zip(references)
        .map(|(a, n)| Ok((a, unsigned("wire reference", n)?)))
        .collect::<Result<_, StoreError>>()?;
    Ok(AuditSums {
        bounced_in: sum_amount(&r, currency, "bounced_in")?,
        bounced_returned: sum_amount(&r, currency, "bounced_returned")?,
        bounce_fees: sum_amount(&r, currency, "bounce_fees")?,
        bounces_pending: sum_amount(&r, currency, "bounces_pending")?,
        bounces_off_balance,
        reserves_in: sum_amount(&r, currency, "reserves_in")?,
        reserve_balances: sum_amount(&r, currency, "reserve_balances")?,
        withdrawn_with_fee: sum_amount(&r, currency, "withdrawn_with_fee")?,
        withdraw_fees: sum_amount(&r, currency, "withdraw_fees")?,
        reserve_totals_in: sum_amount(&r, currency, "reserve_totals_in")?,
        deposits_with_fee: sum_amount(&r, currency, "deposits_with_fee")?,
        deposit_fees: sum_amount(&r, currency, "deposit_fees")?,
        refunds: sum_amount(&r, currency, "refunds")?,
        refund_fees: sum_amount(&r, currency, "refund_fees")?,
        wired: sum_amount(&r, currency, "wired")?,
        wire_fees: sum_amount(&r, currency, "wire_fees")?,
        aggregated_shares: sum_amount(&r, currency, "aggregated_shares")?,
        settled_unwired_shares: sum_amount(&r, currency, "settled_unwired_shares")?,
        coin_remaining: sum_amount(&r, currency, "coin_remaining")?,
        coin_values: sum_amount(&r, currency, "coin_values")?,
        reserves_off_balance: keys("reserves_off_balance")?,
        coins_off_balance: keys("coins_off_balance")?,
        refresh: refresh::audit_sums(&r, currency)?,
        recoup: recoup::audit_sums(&r, currency)?,
        closing: closing::audit(&r, currency)?,
    })
}
