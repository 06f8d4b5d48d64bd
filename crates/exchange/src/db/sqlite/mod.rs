//! The exchange's storage on SQLite (rusqlite): reads run inline on a read-only connection;
//! each write is ONE closure on the store's writer thread, which runs alone, so it can read,
//! decide and apply without locks. The steps are those of the PostgreSQL functions in
//! `migrations/postgres/0001_init.sql`; keep them in step.

use std::collections::BTreeMap;

use cardcash_store::rusqlite::{Connection, OptionalExtension, Params, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{
    Amount, Currency, EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, ShortHashCode,
    Timestamp, WireSalt,
};

use super::{
    AggregatedDeposit, AuditSums, BounceDecision, BounceRow, CoinHistoryEntry, CoinRow,
    CreditReport, DenominationRow, DepositOutcome, DepositTrackingRow, DueAggregate, GlobalFeeRow,
    IncomingTransfer, KeyMaterial, NewBatchDeposit, NewRefund, NewWireOut, NewWithdrawal, Outgoing,
    RefundOutcome, ReserveHistoryEntry, ReserveRow, SignkeyRow, Stored, StoredWithdrawal,
    TOPIC_BOUNCE, TOPIC_DEPOSIT, TOPIC_KEYS, TOPIC_RESERVE, TOPIC_WIRE_OUT, WireAccountRow,
    WireFeeRow, WireOutRow, WithdrawOutcome, amount, bounce_request_uid, bounce_wtid, cols,
    corrupt, count, denomination_public, duration, fixed, gateway_row, reserve_key, signed, time,
    units, unsigned,
};

pub(super) mod closing;
pub(super) mod recoup;
pub(super) mod refresh;

fn execute(conn: &Connection, sql: &str, params: impl Params) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

/// Whether a `SELECT 1 ..` finds a row.
fn exists(conn: &Connection, sql: &str, params: impl Params) -> Result<bool, StoreError> {
    Ok(query_opt(conn, sql, params, |_| Ok(()))?.is_some())
}

fn am(row: &Row<'_>, currency: Currency, idx: usize) -> Result<Amount, StoreError> {
    amount(currency, row.get(idx)?, row.get(idx + 1)?)
}

fn ts(row: &Row<'_>, idx: usize) -> Result<Timestamp, StoreError> {
    time(row.get(idx)?)
}

fn sig(row: &Row<'_>, idx: usize) -> Result<EddsaSignature, StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("signature", &b, EddsaSignature::from_slice)
}

fn sig_opt(row: &Row<'_>, idx: usize) -> Result<Option<EddsaSignature>, StoreError> {
    let b: Option<Vec<u8>> = row.get(idx)?;
    b.map(|b| fixed("signature", &b, EddsaSignature::from_slice))
        .transpose()
}

fn eddsa(row: &Row<'_>, idx: usize) -> Result<EddsaPublicKey, StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("public key", &b, EddsaPublicKey::from_slice)
}

fn hash(row: &Row<'_>, idx: usize) -> Result<HashCode, StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("hash", &b, HashCode::from_slice)
}

fn short(row: &Row<'_>, idx: usize) -> Result<ShortHashCode, StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("short hash", &b, ShortHashCode::from_slice)
}

fn salt(row: &Row<'_>, idx: usize) -> Result<WireSalt, StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("wire salt", &b, WireSalt::from_slice)
}

fn micros(t: Timestamp) -> i64 {
    t.to_sql_micros()
}

// ---------------------------------------------------------------- outgoing transfers

/// The statements of a queue of outgoing transfers ([`Outgoing`]); each feature has its
/// queue's constant beside its rows.
pub(in crate::db) struct OutgoingSql {
    /// The earliest next attempt of what is not sent yet (`min`: NULL when nothing waits).
    next_attempt: &'static str,
    /// The gateway took the transfer: `?1` its serial, `?2` the gateway's row.
    done: &'static str,
    /// An attempt failed: `?1` its serial, `?2` when to try again.
    failed: &'static str,
}

fn outgoing(queue: Outgoing) -> &'static OutgoingSql {
    match queue {
        Outgoing::Bounces => &BOUNCES,
        Outgoing::WireOuts => &WIRE_OUTS,
        Outgoing::Closings => &closing::OUTGOING,
    }
}

pub(super) fn next_attempt(
    conn: &Connection,
    _currency: Currency,
    queue: Outgoing,
) -> Result<Option<Timestamp>, StoreError> {
    let next: Option<i64> = conn
        .prepare_cached(outgoing(queue).next_attempt)?
        .query_row([], |r| r.get(0))?;
    next.map(time).transpose()
}

pub(super) fn transfer_done(
    tx: &mut SqliteTx<'_>,
    _currency: Currency,
    queue: Outgoing,
    serial: i64,
    gateway_row_id: u64,
) -> Result<(), StoreError> {
    let gateway_row_id = signed("gateway row", gateway_row_id)?;
    execute(tx, outgoing(queue).done, params![serial, gateway_row_id])?;
    Ok(())
}

pub(super) fn transfer_failed(
    tx: &mut SqliteTx<'_>,
    _currency: Currency,
    queue: Outgoing,
    serial: i64,
    next_attempt: Timestamp,
) -> Result<(), StoreError> {
    execute(
        tx,
        outgoing(queue).failed,
        params![serial, micros(next_attempt)],
    )?;
    Ok(())
}

/// A read transaction on a reader connection, for reads of several statements: they then see
/// one snapshot (outside a transaction each statement sees what committed since the previous
/// one, e.g. a withdrawal in the sums but not its debit). Dropping it ends the snapshot.
fn snapshot(conn: &Connection) -> Result<cardcash_store::rusqlite::Transaction<'_>, StoreError> {
    Ok(conn.unchecked_transaction()?)
}

// ---------------------------------------------------------------- key material

const DENOMINATION_COLUMNS: &str = "denom_serial, h_denom_pub, cipher, denom_pub, section, \
     value_val, value_frac, fee_withdraw_val, fee_withdraw_frac, fee_deposit_val, \
     fee_deposit_frac, fee_refresh_val, fee_refresh_frac, fee_refund_val, fee_refund_frac, \
     stamp_start, stamp_expire_withdraw, stamp_expire_deposit, stamp_expire_legal, master_sig, \
     revocation_sig";

fn denomination_row(row: &Row<'_>, currency: Currency) -> Result<DenominationRow, StoreError> {
    let key: Vec<u8> = row.get(3)?;
    let public = denomination_public(row.get(2)?, &key)?;
    Ok(DenominationRow {
        serial: row.get(0)?,
        h_denom_pub: hash(row, 1)?,
        public,
        section: row.get(4)?,
        value: am(row, currency, 5)?,
        fee_withdraw: am(row, currency, 7)?,
        fee_deposit: am(row, currency, 9)?,
        fee_refresh: am(row, currency, 11)?,
        fee_refund: am(row, currency, 13)?,
        stamp_start: ts(row, 15)?,
        stamp_expire_withdraw: ts(row, 16)?,
        stamp_expire_deposit: ts(row, 17)?,
        stamp_expire_legal: ts(row, 18)?,
        master_sig: sig(row, 19)?,
        revocation: sig_opt(row, 20)?,
    })
}

const SIGNKEY_COLUMNS: &str =
    "exchange_pub, stamp_start, stamp_expire, stamp_end, master_sig, revocation_sig";

fn signkey_row(r: &Row<'_>) -> Result<SignkeyRow, StoreError> {
    Ok(SignkeyRow {
        exchange_pub: eddsa(r, 0)?,
        stamp_start: ts(r, 1)?,
        stamp_expire: ts(r, 2)?,
        stamp_end: ts(r, 3)?,
        master_sig: sig(r, 4)?,
        revocation: sig_opt(r, 5)?,
    })
}

const WIRE_FEE_COLUMNS: &str = "wire_method, start_date, end_date, wire_fee_val, wire_fee_frac, \
     closing_fee_val, closing_fee_frac, master_sig";

fn wire_fee_row(r: &Row<'_>, currency: Currency) -> Result<WireFeeRow, StoreError> {
    Ok(WireFeeRow {
        wire_method: r.get(0)?,
        start: ts(r, 1)?,
        end: ts(r, 2)?,
        wire_fee: am(r, currency, 3)?,
        closing_fee: am(r, currency, 5)?,
        master_sig: sig(r, 7)?,
    })
}

const GLOBAL_FEE_COLUMNS: &str = "start_date, end_date, history_fee_val, history_fee_frac, \
     account_fee_val, account_fee_frac, purse_fee_val, purse_fee_frac, purse_timeout, \
     history_expiration, purse_account_limit, master_sig";

fn global_fee_row(r: &Row<'_>, currency: Currency) -> Result<GlobalFeeRow, StoreError> {
    let limit: i64 = r.get(10)?;
    Ok(GlobalFeeRow {
        start: ts(r, 0)?,
        end: ts(r, 1)?,
        history_fee: am(r, currency, 2)?,
        account_fee: am(r, currency, 4)?,
        purse_fee: am(r, currency, 6)?,
        purse_timeout: duration(r.get(8)?)?,
        history_expiration: duration(r.get(9)?)?,
        purse_account_limit: u32::try_from(limit)
            .map_err(|_| corrupt(format!("purse account limit {limit}")))?,
        master_sig: sig(r, 11)?,
    })
}

pub(super) fn key_material(
    conn: &Connection,
    currency: Currency,
) -> Result<KeyMaterial, StoreError> {
    let snapshot = snapshot(conn)?;
    let conn: &Connection = &snapshot;
    let denominations = query_all(
        conn,
        &format!("SELECT {DENOMINATION_COLUMNS} FROM denominations ORDER BY denom_serial"),
        [],
        |r| denomination_row(r, currency),
    )?;
    let signkeys = query_all(
        conn,
        &format!("SELECT {SIGNKEY_COLUMNS} FROM signkeys ORDER BY stamp_start, signkey_serial"),
        [],
        signkey_row,
    )?;
    let accounts = query_all(
        conn,
        "SELECT payto_uri, conversion_url, debit_restrictions, credit_restrictions, bank_label, \
         priority, master_sig_wire, master_sig_add, validity_start, master_sig_del, \
         validity_end, is_active, master_sig_wire_v12 FROM wire_accounts \
         ORDER BY priority DESC, payto_uri",
        [],
        |r| {
            let end: Option<i64> = r.get(10)?;
            Ok(WireAccountRow {
                payto_uri: r.get(0)?,
                conversion_url: r.get(1)?,
                debit_restrictions: r.get(2)?,
                credit_restrictions: r.get(3)?,
                bank_label: r.get(4)?,
                priority: r.get(5)?,
                master_sig_wire: sig(r, 6)?,
                master_sig_wire_v12: sig_opt(r, 12)?,
                master_sig_add: sig(r, 7)?,
                validity_start: ts(r, 8)?,
                master_sig_del: sig_opt(r, 9)?,
                validity_end: end.map(time).transpose()?,
                is_active: r.get(11)?,
            })
        },
    )?;
    let wire_fees = query_all(
        conn,
        &format!("SELECT {WIRE_FEE_COLUMNS} FROM wire_fees ORDER BY wire_method, start_date"),
        [],
        |r| wire_fee_row(r, currency),
    )?;
    let global_fees = query_all(
        conn,
        &format!("SELECT {GLOBAL_FEE_COLUMNS} FROM global_fees ORDER BY start_date"),
        [],
        |r| global_fee_row(r, currency),
    )?;
    Ok(KeyMaterial {
        denominations,
        signkeys,
        accounts,
        wire_fees,
        global_fees,
    })
}

pub(super) fn insert_denomination(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    row: DenominationRow,
) -> Result<Stored, StoreError> {
    let existing = query_opt(
        tx,
        &format!("SELECT {DENOMINATION_COLUMNS} FROM denominations WHERE h_denom_pub = ?1"),
        [row.h_denom_pub.to_vec()],
        |r| denomination_row(r, currency),
    )?;
    if let Some(existing) = existing {
        // The offline key signs deterministically (Ed25519): the same upload is the same row.
        let same = DenominationRow {
            serial: existing.serial,
            revocation: existing.revocation,
            ..row
        } == existing;
        return Ok(Stored::existing(same));
    }
    let v = cols(&row.value);
    let fw = cols(&row.fee_withdraw);
    let fd = cols(&row.fee_deposit);
    let fr = cols(&row.fee_refresh);
    let fu = cols(&row.fee_refund);
    execute(
        tx,
        "INSERT INTO denominations (h_denom_pub, cipher, denom_pub, section, value_val, \
         value_frac, fee_withdraw_val, fee_withdraw_frac, fee_deposit_val, fee_deposit_frac, \
         fee_refresh_val, fee_refresh_frac, fee_refund_val, fee_refund_frac, stamp_start, \
         stamp_expire_withdraw, stamp_expire_deposit, stamp_expire_legal, master_sig) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19)",
        params![
            row.h_denom_pub.to_vec(),
            row.public.cipher_number(),
            row.public.to_bytes(),
            row.section,
            v.0,
            v.1,
            fw.0,
            fw.1,
            fd.0,
            fd.1,
            fr.0,
            fr.1,
            fu.0,
            fu.1,
            micros(row.stamp_start),
            micros(row.stamp_expire_withdraw),
            micros(row.stamp_expire_deposit),
            micros(row.stamp_expire_legal),
            row.master_sig.to_vec(),
        ],
    )?;
    tx.notify(TOPIC_KEYS, "");
    Ok(Stored::Inserted)
}

pub(super) fn insert_signkey(
    tx: &mut SqliteTx<'_>,
    _currency: Currency,
    row: SignkeyRow,
) -> Result<Stored, StoreError> {
    let existing = query_opt(
        tx,
        &format!("SELECT {SIGNKEY_COLUMNS} FROM signkeys WHERE exchange_pub = ?1"),
        [row.exchange_pub.to_vec()],
        signkey_row,
    )?;
    if let Some(existing) = existing {
        let same = SignkeyRow {
            revocation: existing.revocation,
            ..row
        } == existing;
        return Ok(Stored::existing(same));
    }
    execute(
        tx,
        "INSERT INTO signkeys (exchange_pub, stamp_start, stamp_expire, stamp_end, master_sig) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            row.exchange_pub.to_vec(),
            micros(row.stamp_start),
            micros(row.stamp_expire),
            micros(row.stamp_end),
            row.master_sig.to_vec(),
        ],
    )?;
    tx.notify(TOPIC_KEYS, "");
    Ok(Stored::Inserted)
}

pub(super) fn revoke_denomination(
    tx: &mut SqliteTx<'_>,
    _currency: Currency,
    h_denom_pub: HashCode,
    revocation: EddsaSignature,
) -> Result<bool, StoreError> {
    revoke(
        tx,
        "UPDATE denominations SET revocation_sig = coalesce(revocation_sig, ?2) \
         WHERE h_denom_pub = ?1",
        h_denom_pub.as_bytes(),
        revocation,
    )
}

pub(super) fn revoke_signkey(
    tx: &mut SqliteTx<'_>,
    _currency: Currency,
    exchange_pub: EddsaPublicKey,
    revocation: EddsaSignature,
) -> Result<bool, StoreError> {
    revoke(
        tx,
        "UPDATE signkeys SET revocation_sig = coalesce(revocation_sig, ?2) \
         WHERE exchange_pub = ?1",
        exchange_pub.as_bytes(),
        revocation,
    )
}

/// Sets a revocation signature (the first one stays); whether the key exists.
fn revoke(
    tx: &mut SqliteTx<'_>,
    sql: &str,
    key: &[u8],
    revocation: EddsaSignature,
) -> Result<bool, StoreError> {
    let n = execute(tx, sql, params![key, revocation.to_vec()])?;
    if n > 0 {
        tx.notify(TOPIC_KEYS, "");
    }
    Ok(n > 0)
}

pub(super) fn enable_wire_account(
    tx: &mut SqliteTx<'_>,
    _currency: Currency,
    row: WireAccountRow,
) -> Result<Stored, StoreError> {
    let last_change = query_opt(
        tx,
        "SELECT max(validity_start, coalesce(validity_end, 0)), is_active, master_sig_add \
         FROM wire_accounts WHERE payto_uri = ?1",
        [&row.payto_uri],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?, sig(r, 2)?)),
    )?;
    if let Some((last, active, sig_add)) = last_change {
        if active && sig_add == row.master_sig_add {
            if let Some(v12) = row.master_sig_wire_v12 {
                let n = execute(
                    tx,
                    "UPDATE wire_accounts SET master_sig_wire_v12 = ?2 WHERE payto_uri = ?1 \
                     AND master_sig_wire_v12 IS NOT ?2",
                    params![row.payto_uri, v12.to_vec()],
                )?;
                if n > 0 {
                    tx.notify(TOPIC_KEYS, "");
                }
            }
            return Ok(Stored::AlreadyKnown);
        }
        if micros(row.validity_start) <= last {
            return Ok(Stored::Conflict);
        }
    }
    execute(
        tx,
        "INSERT INTO wire_accounts (payto_uri, conversion_url, debit_restrictions, \
         credit_restrictions, bank_label, priority, master_sig_wire, master_sig_add, \
         validity_start, master_sig_del, validity_end, is_active, master_sig_wire_v12) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, NULL, 1, ?10) \
         ON CONFLICT (payto_uri) DO UPDATE SET conversion_url = excluded.conversion_url, \
         debit_restrictions = excluded.debit_restrictions, \
         credit_restrictions = excluded.credit_restrictions, bank_label = excluded.bank_label, \
         priority = excluded.priority, master_sig_wire = excluded.master_sig_wire, \
         master_sig_add = excluded.master_sig_add, validity_start = excluded.validity_start, \
         master_sig_del = NULL, validity_end = NULL, is_active = 1, \
         master_sig_wire_v12 = coalesce(excluded.master_sig_wire_v12, master_sig_wire_v12)",
        params![
            row.payto_uri,
            row.conversion_url,
            row.debit_restrictions,
            row.credit_restrictions,
            row.bank_label,
            row.priority,
            row.master_sig_wire.to_vec(),
            row.master_sig_add.to_vec(),
            micros(row.validity_start),
            row.master_sig_wire_v12.map(|s| s.to_vec()),
        ],
    )?;
    tx.notify(TOPIC_KEYS, "");
    Ok(Stored::Inserted)
}

pub(super) fn disable_wire_account(
    tx: &mut SqliteTx<'_>,
    _currency: Currency,
    payto_uri: String,
    master_sig_del: EddsaSignature,
    validity_end: Timestamp,
) -> Result<Option<Stored>, StoreError> {
    let current = query_opt(
        tx,
        "SELECT validity_start, is_active, master_sig_del FROM wire_accounts \
         WHERE payto_uri = ?1",
        [&payto_uri],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?, sig_opt(r, 2)?)),
    )?;
    let Some((start, active, sig_del)) = current else {
        return Ok(None);
    };
    if !active {
        return Ok(Some(Stored::existing(sig_del == Some(master_sig_del))));
    }
    if micros(validity_end) <= start {
        return Ok(Some(Stored::Conflict));
    }
    execute(
        tx,
        "UPDATE wire_accounts SET is_active = 0, master_sig_del = ?2, validity_end = ?3 \
         WHERE payto_uri = ?1",
        params![payto_uri, master_sig_del.to_vec(), micros(validity_end)],
    )?;
    tx.notify(TOPIC_KEYS, "");
    Ok(Some(Stored::Inserted))
}

pub(super) fn insert_wire_fee(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    row: WireFeeRow,
) -> Result<Stored, StoreError> {
    let overlapping = query_all(
        tx,
        &format!(
            "SELECT {WIRE_FEE_COLUMNS} FROM wire_fees \
             WHERE wire_method = ?1 AND start_date < ?3 AND end_date > ?2"
        ),
        params![row.wire_method, micros(row.start), micros(row.end)],
        |r| wire_fee_row(r, currency),
    )?;
    if let Some(known) = Stored::overlapping(&overlapping, |first| {
        (first.start, first.end, first.wire_fee, first.closing_fee)
            == (row.start, row.end, row.wire_fee, row.closing_fee)
    }) {
        return Ok(known);
    }
    let w = cols(&row.wire_fee);
    let c = cols(&row.closing_fee);
    execute(
        tx,
        "INSERT INTO wire_fees (wire_method, start_date, end_date, wire_fee_val, \
         wire_fee_frac, closing_fee_val, closing_fee_frac, master_sig) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            row.wire_method,
            micros(row.start),
            micros(row.end),
            w.0,
            w.1,
            c.0,
            c.1,
            row.master_sig.to_vec()
        ],
    )?;
    tx.notify(TOPIC_KEYS, "");
    Ok(Stored::Inserted)
}

pub(super) fn insert_global_fee(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    row: GlobalFeeRow,
) -> Result<Stored, StoreError> {
    let overlapping = query_all(
        tx,
        &format!(
            "SELECT {GLOBAL_FEE_COLUMNS} FROM global_fees WHERE start_date < ?2 AND end_date > ?1"
        ),
        params![micros(row.start), micros(row.end)],
        |r| global_fee_row(r, currency),
    )?;
    if let Some(known) = Stored::overlapping(&overlapping, |first| {
        GlobalFeeRow {
            master_sig: row.master_sig,
            ..first.clone()
        } == row
    }) {
        return Ok(known);
    }
    let h = cols(&row.history_fee);
    let a = cols(&row.account_fee);
    let p = cols(&row.purse_fee);
    execute(
        tx,
        "INSERT INTO global_fees (start_date, end_date, history_fee_val, history_fee_frac, \
         account_fee_val, account_fee_frac, purse_fee_val, purse_fee_frac, purse_timeout, \
         history_expiration, purse_account_limit, master_sig) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            micros(row.start),
            micros(row.end),
            h.0,
            h.1,
            a.0,
            a.1,
            p.0,
            p.1,
            row.purse_timeout.to_sql_micros(),
            row.history_expiration.to_sql_micros(),
            row.purse_account_limit,
            row.master_sig.to_vec()
        ],
    )?;
    tx.notify(TOPIC_KEYS, "");
    Ok(Stored::Inserted)
}

// ---------------------------------------------------------------- reserves

pub(super) fn wirewatch_progress(
    conn: &Connection,
    _currency: Currency,
    account: String,
) -> Result<Option<u64>, StoreError> {
    query_opt(
        conn,
        "SELECT last_row_id FROM wirewatch_progress WHERE account_section = ?1",
        [account],
        |r| unsigned("wirewatch progress", r.get(0)?),
    )
}

pub(super) fn credit_reserves(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    account: String,
    transfers: Vec<IncomingTransfer>,
    last_row: u64,
    reserve_lifetime: RelativeTime,
) -> Result<CreditReport, StoreError> {
    let mut report = CreditReport::default();
    for t in transfers {
        let reference = signed("wire reference", t.wire_reference)?;
        let (val, frac) = cols(&t.amount);
        let seen: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM reserves_in WHERE account_section = ?1 AND \
                 wire_reference = ?2) OR EXISTS (SELECT 1 FROM wire_in_bounced WHERE \
                 account_section = ?1 AND wire_reference = ?2)",
            )?
            .query_row(params![account, reference], |r| r.get(0))?;
        if seen {
            report.duplicates += 1;
            continue;
        }
        let date = micros(t.execution_date);
        match t.reserve_pub {
            Ok(reserve_pub) => {
                let expiration = super::now().saturating_add(reserve_lifetime);
                let key = reserve_pub.to_vec();
                let current = query_opt(
                    tx,
                    "SELECT balance_val, balance_frac, total_in_val, total_in_frac \
                     FROM reserves WHERE reserve_pub = ?1",
                    [&key],
                    |r| Ok((am(r, currency, 0)?, am(r, currency, 2)?)),
                )?;
                let (balance, total_in) = match current {
                    Some((b, t_in)) => (b, t_in),
                    None => (Amount::zero(&currency), Amount::zero(&currency)),
                };
                let balance = units(currency, balance.to_units() + t.amount.to_units())?;
                let total_in = units(currency, total_in.to_units() + t.amount.to_units())?;
                let (b, t_in) = (cols(&balance), cols(&total_in));
                let now = micros(super::now());
                execute(
                    tx,
                    "INSERT INTO reserves (reserve_pub, balance_val, balance_frac, total_in_val, \
                     total_in_frac, created, last_activity, expiration_date) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) \
                     ON CONFLICT (reserve_pub) DO UPDATE SET balance_val = excluded.balance_val, \
                     balance_frac = excluded.balance_frac, total_in_val = excluded.total_in_val, \
                     total_in_frac = excluded.total_in_frac, last_activity = excluded.last_activity, \
                     expiration_date = max(expiration_date, excluded.expiration_date)",
                    params![key, b.0, b.1, t_in.0, t_in.1, now, micros(expiration)],
                )?;
                execute(
                    tx,
                    "INSERT INTO reserves_in (reserve_pub, account_section, wire_reference, \
                     amount_val, amount_frac, debit_payto, execution_date) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![key, account, reference, val, frac, t.debit_payto, date],
                )?;
                tx.notify(TOPIC_RESERVE, &reserve_key(&reserve_pub));
                report.credited.push(reserve_pub);
            }
            Err(subject) => {
                let request_uid = bounce_request_uid(&account, t.wire_reference);
                execute(
                    tx,
                    "INSERT INTO wire_in_bounced (account_section, wire_reference, amount_val, \
                     amount_frac, debit_payto, subject, execution_date, request_uid, wtid, \
                     next_attempt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        account,
                        reference,
                        val,
                        frac,
                        t.debit_payto,
                        subject,
                        date,
                        request_uid.to_vec(),
                        bounce_wtid(&request_uid).to_vec(),
                        micros(super::now())
                    ],
                )?;
                if report.bounced == 0 {
                    tx.notify(TOPIC_BOUNCE, "");
                }
                report.bounced += 1;
            }
        }
    }
    execute(
        tx,
        "INSERT INTO wirewatch_progress (account_section, last_row_id) VALUES (?1, ?2) \
         ON CONFLICT (account_section) DO UPDATE SET \
         last_row_id = max(last_row_id, excluded.last_row_id)",
        params![account, signed("wirewatch progress", last_row)?],
    )?;
    Ok(report)
}

// ---------------------------------------------------------------- bounces

const BOUNCE_COLUMNS: &str = "bounce_serial, account_section, wire_reference, amount_val, \
     amount_frac, debit_payto, subject, execution_date, request_uid, wtid, closing_fee_val, \
     closing_fee_frac, returned_val, returned_frac, exchange_base_url, gateway_row_id, done, \
     failures";

fn bounce_row(r: &Row<'_>, currency: Currency) -> Result<BounceRow, StoreError> {
    let fee = cardcash_store::columns::sqlite_amount_opt(r, 10, currency)?;
    let returned = cardcash_store::columns::sqlite_amount_opt(r, 12, currency)?;
    let base_url: Option<String> = r.get(14)?;
    let decision = match (fee, returned, base_url) {
        (Some(closing_fee), Some(returned), Some(exchange_base_url)) => Some(BounceDecision {
            closing_fee,
            returned,
            exchange_base_url,
        }),
        (None, None, None) => None,
        _ => return Err(corrupt("bounce decided in part")),
    };
    let gateway: Option<i64> = r.get(15)?;
    let failures: i64 = r.get(17)?;
    Ok(BounceRow {
        serial: r.get(0)?,
        account_section: r.get(1)?,
        wire_reference: unsigned("wire reference", r.get(2)?)?,
        amount: am(r, currency, 3)?,
        debit_payto: r.get(5)?,
        subject: r.get(6)?,
        execution_date: ts(r, 7)?,
        request_uid: hash(r, 8)?,
        wtid: short(r, 9)?,
        decision,
        gateway_row_id: gateway_row(gateway)?,
        done: r.get(16)?,
        failures: count(failures),
    })
}

pub(super) fn pending_bounces(
    conn: &Connection,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<BounceRow>, StoreError> {
    query_all(
        conn,
        &format!(
            "SELECT {BOUNCE_COLUMNS} FROM wire_in_bounced WHERE done = 0 AND next_attempt <= ?1 \
             ORDER BY bounce_serial LIMIT ?2"
        ),
        params![micros(now), limit],
        |r| bounce_row(r, currency),
    )
}

/// The queue of bounced incoming transfers (see [`Outgoing`]).
const BOUNCES: OutgoingSql = OutgoingSql {
    next_attempt: "SELECT min(next_attempt) FROM wire_in_bounced WHERE done = 0",
    done: "UPDATE wire_in_bounced SET gateway_row_id = ?2, done = 1 \
           WHERE bounce_serial = ?1 AND closing_fee_val IS NOT NULL AND gateway_row_id IS NULL",
    failed: "UPDATE wire_in_bounced SET failures = failures + 1, next_attempt = ?2 \
             WHERE bounce_serial = ?1 AND done = 0",
};

pub(super) fn bounce(
    conn: &Connection,
    currency: Currency,
    account: String,
    wire_reference: u64,
) -> Result<Option<BounceRow>, StoreError> {
    query_opt(
        conn,
        &format!(
            "SELECT {BOUNCE_COLUMNS} FROM wire_in_bounced \
             WHERE account_section = ?1 AND wire_reference = ?2"
        ),
        params![account, signed("wire reference", wire_reference)?],
        |r| bounce_row(r, currency),
    )
}

pub(super) fn decide_bounce(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    serial: i64,
    closing_fee: Amount,
    exchange_base_url: String,
) -> Result<Option<BounceRow>, StoreError> {
    let undecided = query_opt(
        tx,
        "SELECT amount_val, amount_frac FROM wire_in_bounced \
         WHERE bounce_serial = ?1 AND closing_fee_val IS NULL",
        [serial],
        |r| am(r, currency, 0),
    )?;
    let Some(amount) = undecided else {
        return Ok(None);
    };
    let kept = amount.to_units().min(closing_fee.to_units());
    let returned = amount.to_units() - kept;
    let (k, r) = (
        cols(&units(currency, kept)?),
        cols(&units(currency, returned)?),
    );
    execute(
        tx,
        "UPDATE wire_in_bounced SET closing_fee_val = ?2, closing_fee_frac = ?3, \
         returned_val = ?4, returned_frac = ?5, exchange_base_url = ?6, done = ?7 \
         WHERE bounce_serial = ?1",
        params![serial, k.0, k.1, r.0, r.1, exchange_base_url, returned == 0],
    )?;
    query_opt(
        tx,
        &format!("SELECT {BOUNCE_COLUMNS} FROM wire_in_bounced WHERE bounce_serial = ?1"),
        [serial],
        |r| bounce_row(r, currency),
    )
}

// ---------------------------------------------------------------- reserves (reads)

fn reserve_row(row: &Row<'_>, currency: Currency) -> Result<ReserveRow, StoreError> {
    Ok(ReserveRow {
        reserve_pub: eddsa(row, 0)?,
        balance: am(row, currency, 1)?,
        total_in: am(row, currency, 3)?,
        created: ts(row, 5)?,
        last_activity: ts(row, 6)?,
        expiration: ts(row, 7)?,
    })
}

pub(super) fn reserve(
    conn: &Connection,
    currency: Currency,
    reserve_pub: EddsaPublicKey,
) -> Result<Option<ReserveRow>, StoreError> {
    query_opt(
        conn,
        "SELECT reserve_pub, balance_val, balance_frac, total_in_val, total_in_frac, created, \
         last_activity, expiration_date FROM reserves WHERE reserve_pub = ?1",
        [reserve_pub.to_vec()],
        |r| reserve_row(r, currency),
    )
}

pub(super) fn reserve_history(
    conn: &Connection,
    currency: Currency,
    reserve_pub: EddsaPublicKey,
) -> Result<Vec<ReserveHistoryEntry>, StoreError> {
    let snapshot = snapshot(conn)?;
    let conn: &Connection = &snapshot;
    let key = reserve_pub.to_vec();
    let mut entries = query_all(
        conn,
        "SELECT amount_val, amount_frac, debit_payto, wire_reference, execution_date \
         FROM reserves_in WHERE reserve_pub = ?1 ORDER BY reserve_in_serial",
        [&key],
        |r| {
            Ok(ReserveHistoryEntry::Credit {
                amount: am(r, currency, 0)?,
                debit_payto: r.get(2)?,
                wire_reference: unsigned("wire reference", r.get(3)?)?,
                execution_date: ts(r, 4)?,
            })
        },
    )?;
    entries.extend(query_all(
        conn,
        "SELECT w.amount_with_fee_val, w.amount_with_fee_frac, d.fee_withdraw_val, \
         d.fee_withdraw_frac, d.h_denom_pub, w.h_blind_ev, w.reserve_sig \
         FROM withdrawals w JOIN denominations d USING (denom_serial) \
         WHERE w.reserve_pub = ?1 ORDER BY w.withdraw_serial",
        [&key],
        |r| {
            Ok(ReserveHistoryEntry::Withdraw {
                amount_with_fee: am(r, currency, 0)?,
                withdraw_fee: am(r, currency, 2)?,
                h_denom_pub: hash(r, 4)?,
                h_blind_ev: hash(r, 5)?,
                reserve_sig: sig(r, 6)?,
            })
        },
    )?);
    entries.extend(closing::history(conn, currency, &key)?);
    entries.extend(recoup::reserve_history(conn, currency, &key)?);
    Ok(entries)
}

// ---------------------------------------------------------------- withdraw

pub(super) fn stored_withdrawals(
    conn: &Connection,
    _currency: Currency,
    hashes: Vec<HashCode>,
) -> Result<Vec<StoredWithdrawal>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached("SELECT reserve_pub, denom_sig FROM withdrawals WHERE h_blind_ev = ?1")?;
    for h in hashes {
        let found = stmt
            .query_row([h.to_vec()], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()?;
        if let Some((reserve, denom_sig)) = found {
            out.push(StoredWithdrawal {
                h_blind_ev: h,
                reserve_pub: fixed("reserve", &reserve, EddsaPublicKey::from_slice)?,
                denom_sig,
            });
        }
    }
    Ok(out)
}

pub(super) fn batch_withdraw(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    reserve_pub: EddsaPublicKey,
    planchets: Vec<NewWithdrawal>,
    now: Timestamp,
) -> Result<WithdrawOutcome, StoreError> {
    let key = reserve_pub.to_vec();
    let Some(balance) = query_opt(
        tx,
        "SELECT balance_val, balance_frac FROM reserves WHERE reserve_pub = ?1",
        [&key],
        |r| am(r, currency, 0),
    )?
    else {
        return Ok(WithdrawOutcome::UnknownReserve);
    };
    // Replays keep their stored signature and cost nothing; a planchet repeated inside the
    // request is charged once and answered with its first occurrence's signature. A CS nonce
    // locked to another planchet of the denomination, stored or earlier in this request, is
    // refused (two signatures under one nonce reveal the key). Everything is checked before
    // the first write: the closure runs alone on the writer thread, so the checks still hold
    // when the writes follow.
    let mut stored: Vec<Option<Vec<u8>>> = Vec::with_capacity(planchets.len());
    let mut needed: u128 = 0;
    let mut fresh = std::collections::HashSet::new();
    for (index, p) in planchets.iter().enumerate() {
        let old = query_opt(
            tx,
            "SELECT denom_sig FROM withdrawals WHERE h_blind_ev = ?1",
            [p.h_blind_ev.to_vec()],
            |r| Ok(r.get::<_, Vec<u8>>(0)?),
        )?;
        if old.is_none() && fresh.insert(p.h_blind_ev) {
            needed += p.amount_with_fee.to_units();
            if let Some(nonce) = p.cs_nonce {
                let locked = query_opt(
                    tx,
                    "SELECT h_blind_ev FROM cs_nonce_locks WHERE nonce = ?1 AND denom_serial = ?2",
                    params![nonce.to_vec(), p.denom_serial],
                    |r| Ok(r.get::<_, Vec<u8>>(0)?),
                )?;
                let shared = planchets[..index].iter().any(|q| {
                    q.cs_nonce == Some(nonce)
                        && q.denom_serial == p.denom_serial
                        && q.h_blind_ev != p.h_blind_ev
                });
                if shared || locked.is_some_and(|h| h != p.h_blind_ev.to_vec()) {
                    return Ok(WithdrawOutcome::NonceReuse { index });
                }
            }
        }
        stored.push(old);
    }
    if needed > balance.to_units() {
        return Ok(WithdrawOutcome::InsufficientFunds {
            balance,
            requested: units(currency, needed)?,
        });
    }
    let mut sigs = Vec::with_capacity(planchets.len());
    let mut written: std::collections::HashMap<HashCode, usize> = std::collections::HashMap::new();
    for (p, old) in planchets.into_iter().zip(stored) {
        if let Some(old) = old {
            sigs.push(old);
            continue;
        }
        if let Some(first) = written.get(&p.h_blind_ev) {
            let first_sig = sigs[*first].clone();
            sigs.push(first_sig);
            continue;
        }
        written.insert(p.h_blind_ev, sigs.len());
        if let Some(nonce) = p.cs_nonce {
            execute(
                tx,
                "INSERT OR IGNORE INTO cs_nonce_locks (nonce, denom_serial, h_blind_ev) \
                 VALUES (?1, ?2, ?3)",
                params![nonce.to_vec(), p.denom_serial, p.h_blind_ev.to_vec()],
            )?;
        }
        let (v, f) = cols(&p.amount_with_fee);
        execute(
            tx,
            "INSERT INTO withdrawals (h_blind_ev, reserve_pub, denom_serial, reserve_sig, \
             amount_with_fee_val, amount_with_fee_frac, denom_sig, execution_date) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                p.h_blind_ev.to_vec(),
                key,
                p.denom_serial,
                p.reserve_sig.to_vec(),
                v,
                f,
                p.denom_sig,
                micros(now)
            ],
        )?;
        sigs.push(p.denom_sig);
    }
    if needed > 0 {
        let left = cols(&units(currency, balance.to_units() - needed)?);
        execute(
            tx,
            "UPDATE reserves SET balance_val = ?2, balance_frac = ?3, last_activity = ?4 \
             WHERE reserve_pub = ?1",
            params![key, left.0, left.1, micros(now)],
        )?;
        tx.notify(TOPIC_RESERVE, &reserve_key(&reserve_pub));
    }
    Ok(WithdrawOutcome::Done(sigs))
}

// ---------------------------------------------------------------- deposits and refunds

pub(super) fn batch_deposit(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    d: NewBatchDeposit,
) -> Result<DepositOutcome, StoreError> {
    // A replay: the same batch (contract, merchant, coin signatures) with the same wire
    // deadline (the one field the coins do not sign; another one conflicts below).
    let existing = query_opt(
        tx,
        "SELECT exchange_timestamp FROM batch_deposits \
         WHERE h_contract_terms = ?1 AND merchant_pub = ?2 AND h_coin_sigs = ?3 \
         AND wire_deadline = ?4",
        params![
            d.h_contract_terms.to_vec(),
            d.merchant_pub.to_vec(),
            d.h_coin_sigs.to_vec(),
            micros(d.wire_deadline)
        ],
        |r| ts(r, 0),
    )?;
    if let Some(exchange_timestamp) = existing {
        return Ok(DepositOutcome::Done { exchange_timestamp });
    }
    // Check every coin before the first write (the closure runs alone on the writer thread).
    // A coin may appear more than once in a batch: its contributions add up.
    // Per coin: value left, known before, denomination (of its first entry in the batch).
    let mut remaining: std::collections::HashMap<EddsaPublicKey, (u128, bool, i64)> =
        std::collections::HashMap::new();
    for (index, coin) in d.coins.iter().enumerate() {
        match remaining.entry(coin.coin_pub) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                let known = query_opt(
                    tx,
                    "SELECT denom_serial, remaining_val, remaining_frac FROM known_coins \
                     WHERE coin_pub = ?1",
                    [coin.coin_pub.to_vec()],
                    |r| Ok((r.get::<_, i64>(0)?, am(r, currency, 1)?)),
                )?;
                let entry = match known {
                    Some((serial, _)) if serial != coin.denom_serial => {
                        return Ok(DepositOutcome::CoinConflict { index });
                    }
                    Some((serial, left)) => (left.to_units(), true, serial),
                    None => (coin.coin_value.to_units(), false, coin.denom_serial),
                };
                slot.insert(entry);
            }
            // The coin again in this batch, presented with another denomination.
            std::collections::hash_map::Entry::Occupied(slot)
                if slot.get().2 != coin.denom_serial =>
            {
                return Ok(DepositOutcome::CoinConflict { index });
            }
            std::collections::hash_map::Entry::Occupied(_) => {}
        }
        let already = exists(
            tx,
            "SELECT 1 FROM coin_deposits WHERE coin_pub = ?1 AND coin_sig = ?2",
            params![coin.coin_pub.to_vec(), coin.coin_sig.to_vec()],
        )?;
        let repeated = d.coins[..index]
            .iter()
            .any(|c| c.coin_pub == coin.coin_pub && c.coin_sig == coin.coin_sig);
        if already || repeated {
            return Ok(DepositOutcome::Conflict { index });
        }
        let slot = remaining.get_mut(&coin.coin_pub).expect("inserted above");
        match slot.0.checked_sub(coin.amount_with_fee.to_units()) {
            Some(left) => slot.0 = left,
            None => return Ok(DepositOutcome::InsufficientFunds { index }),
        }
    }
    let total = cols(&d.total_without_fee);
    execute(
        tx,
        "INSERT INTO batch_deposits (merchant_pub, h_contract_terms, merchant_payto, h_payto, \
         wire_salt, wallet_timestamp, exchange_timestamp, refund_deadline, wire_deadline, \
         wallet_data_hash, h_coin_sigs, total_without_fee_val, total_without_fee_frac) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            d.merchant_pub.to_vec(),
            d.h_contract_terms.to_vec(),
            d.merchant_payto,
            d.h_payto.to_vec(),
            d.wire_salt.to_vec(),
            micros(d.wallet_timestamp),
            micros(d.exchange_timestamp),
            micros(d.refund_deadline),
            micros(d.wire_deadline),
            d.wallet_data_hash.map(|h| h.to_vec()),
            d.h_coin_sigs.to_vec(),
            total.0,
            total.1
        ],
    )?;
    let batch = tx.last_insert_rowid();
    for coin in d.coins {
        let (left_units, known, serial) = remaining[&coin.coin_pub];
        let left = cols(&units(currency, left_units)?);
        if known {
            execute(
                tx,
                "UPDATE known_coins SET remaining_val = ?2, remaining_frac = ?3 \
                 WHERE coin_pub = ?1",
                params![coin.coin_pub.to_vec(), left.0, left.1],
            )?;
        } else {
            execute(
                tx,
                "INSERT INTO known_coins (coin_pub, denom_serial, denom_sig, remaining_val, \
                 remaining_frac) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    coin.coin_pub.to_vec(),
                    coin.denom_serial,
                    coin.denom_sig,
                    left.0,
                    left.1
                ],
            )?;
            remaining.insert(coin.coin_pub, (left_units, true, serial));
        }
        let a = cols(&coin.amount_with_fee);
        let f = cols(&coin.deposit_fee);
        execute(
            tx,
            "INSERT INTO coin_deposits (batch_deposit_serial, coin_pub, coin_sig, \
             amount_with_fee_val, amount_with_fee_frac, deposit_fee_val, deposit_fee_frac) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                batch,
                coin.coin_pub.to_vec(),
                coin.coin_sig.to_vec(),
                a.0,
                a.1,
                f.0,
                f.1
            ],
        )?;
    }
    tx.notify(TOPIC_DEPOSIT, "");
    Ok(DepositOutcome::Done {
        exchange_timestamp: d.exchange_timestamp,
    })
}

pub(super) fn coin(
    conn: &Connection,
    currency: Currency,
    coin_pub: EddsaPublicKey,
) -> Result<Option<CoinRow>, StoreError> {
    let snapshot = snapshot(conn)?;
    let conn: &Connection = &snapshot;
    let key = coin_pub.to_vec();
    let Some((h_denom_pub, remaining)) = query_opt(
        conn,
        "SELECT d.h_denom_pub, k.remaining_val, k.remaining_frac FROM known_coins k \
         JOIN denominations d USING (denom_serial) WHERE k.coin_pub = ?1",
        [&key],
        |r| Ok((hash(r, 0)?, am(r, currency, 1)?)),
    )?
    else {
        return Ok(None);
    };
    let mut history = query_all(
        conn,
        "SELECT c.amount_with_fee_val, c.amount_with_fee_frac, c.deposit_fee_val, \
         c.deposit_fee_frac, b.merchant_pub, b.h_contract_terms, b.h_payto, b.wire_salt, \
         b.wallet_timestamp, b.refund_deadline, b.wire_deadline, b.wallet_data_hash, c.coin_sig \
         FROM coin_deposits c JOIN batch_deposits b USING (batch_deposit_serial) \
         WHERE c.coin_pub = ?1 ORDER BY c.coin_deposit_serial",
        [&key],
        |r| {
            let wallet_data: Option<Vec<u8>> = r.get(11)?;
            Ok(CoinHistoryEntry::Deposit {
                amount_with_fee: am(r, currency, 0)?,
                deposit_fee: am(r, currency, 2)?,
                merchant_pub: eddsa(r, 4)?,
                h_contract_terms: hash(r, 5)?,
                h_payto: short(r, 6)?,
                wire_salt: salt(r, 7)?,
                wallet_timestamp: ts(r, 8)?,
                refund_deadline: ts(r, 9)?,
                wire_deadline: ts(r, 10)?,
                wallet_data_hash: wallet_data
                    .map(|b| fixed("wallet data hash", &b, HashCode::from_slice))
                    .transpose()?,
                coin_sig: sig(r, 12)?,
            })
        },
    )?;
    history.extend(query_all(
        conn,
        "SELECT r.amount_val, r.amount_frac, d.fee_refund_val, d.fee_refund_frac, \
         b.merchant_pub, b.h_contract_terms, r.rtransaction_id, r.merchant_sig \
         FROM refunds r JOIN coin_deposits c USING (coin_deposit_serial) \
         JOIN batch_deposits b USING (batch_deposit_serial) \
         JOIN known_coins k ON k.coin_pub = r.coin_pub \
         JOIN denominations d ON d.denom_serial = k.denom_serial \
         WHERE r.coin_pub = ?1 ORDER BY r.refund_serial",
        [&key],
        |r| {
            Ok(CoinHistoryEntry::Refund {
                amount: am(r, currency, 0)?,
                refund_fee: am(r, currency, 2)?,
                merchant_pub: eddsa(r, 4)?,
                h_contract_terms: hash(r, 5)?,
                rtransaction_id: unsigned("rtransaction id", r.get(6)?)?,
                merchant_sig: sig(r, 7)?,
            })
        },
    )?);
    history.extend(recoup::coin_history(conn, currency, &key)?);
    let history = super::refresh::merge_melts(history, refresh::coin_melts(conn, currency, &key)?);
    Ok(Some(CoinRow {
        coin_pub,
        h_denom_pub,
        remaining,
        history,
    }))
}

pub(super) fn refund(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    r: NewRefund,
    refund_fee: Amount,
) -> Result<RefundOutcome, StoreError> {
    let deposit = query_opt(
        tx,
        "SELECT c.coin_deposit_serial, c.amount_with_fee_val, c.amount_with_fee_frac, \
         c.deposit_fee_val, c.deposit_fee_frac, b.done, b.batch_deposit_serial, b.waiting \
         FROM coin_deposits c JOIN batch_deposits b USING (batch_deposit_serial) \
         WHERE c.coin_pub = ?1 AND b.merchant_pub = ?2 AND b.h_contract_terms = ?3 \
         ORDER BY c.coin_deposit_serial LIMIT 1",
        params![
            r.coin_pub.to_vec(),
            r.merchant_pub.to_vec(),
            r.h_contract_terms.to_vec()
        ],
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                am(row, currency, 1)?,
                am(row, currency, 3)?,
                row.get::<_, bool>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, bool>(7)?,
            ))
        },
    )?;
    let Some((serial, deposited, deposit_fee, wired, batch, waiting)) = deposit else {
        return Ok(RefundOutcome::DepositNotFound);
    };
    let rtid = signed("rtransaction id", r.rtransaction_id)?;
    let previous = query_opt(
        tx,
        "SELECT amount_val, amount_frac FROM refunds \
         WHERE coin_deposit_serial = ?1 AND rtransaction_id = ?2",
        params![serial, rtid],
        |row| am(row, currency, 0),
    )?;
    if let Some(previous) = previous {
        return Ok(if previous == r.amount {
            RefundOutcome::Done
        } else {
            RefundOutcome::Conflict
        });
    }
    if wired {
        return Ok(RefundOutcome::AlreadyWired);
    }
    let refunded: u128 = query_all(
        tx,
        "SELECT amount_val, amount_frac FROM refunds WHERE coin_deposit_serial = ?1",
        [serial],
        |row| am(row, currency, 0),
    )?
    .iter()
    .map(Amount::to_units)
    .sum();
    let total = refunded + r.amount.to_units();
    if total > deposited.to_units() {
        return Ok(RefundOutcome::Exceeds { deposited });
    }
    if r.amount.to_units() < refund_fee.to_units() {
        return Ok(RefundOutcome::FeeExceedsAmount);
    }
    let fee = effective_refund_fee(
        refund_fee.to_units(),
        deposit_fee.to_units(),
        total == deposited.to_units(),
    );
    let credit = r.amount.to_units() - fee;
    let a = cols(&r.amount);
    let f = cols(&units(currency, fee)?);
    execute(
        tx,
        "INSERT INTO refunds (coin_deposit_serial, coin_pub, merchant_sig, rtransaction_id, \
         amount_val, amount_frac, refund_fee_val, refund_fee_frac) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            serial,
            r.coin_pub.to_vec(),
            r.merchant_sig.to_vec(),
            rtid,
            a.0,
            a.1,
            f.0,
            f.1
        ],
    )?;
    let remaining = query_opt(
        tx,
        "SELECT remaining_val, remaining_frac FROM known_coins WHERE coin_pub = ?1",
        [r.coin_pub.to_vec()],
        |row| am(row, currency, 0),
    )?
    .ok_or_else(|| corrupt("deposited coin without a known_coins row"))?;
    let left = cols(&units(currency, remaining.to_units() + credit)?);
    execute(
        tx,
        "UPDATE known_coins SET remaining_val = ?2, remaining_frac = ?3 WHERE coin_pub = ?1",
        params![r.coin_pub.to_vec(), left.0, left.1],
    )?;
    if waiting {
        // Due again: the aggregator looks at what the batch owes now (maybe nothing).
        execute(
            tx,
            "UPDATE batch_deposits SET waiting = 0 WHERE batch_deposit_serial = ?1",
            [batch],
        )?;
    }
    tx.notify(TOPIC_DEPOSIT, "");
    Ok(RefundOutcome::Done)
}

/// The refund fee a refund is charged (see "Refunds never create money" in `db/mod.rs`): the
/// denomination's, less up to the deposit fee for the refund that completes the deposit's
/// refunds.
fn effective_refund_fee(refund_fee: u128, deposit_fee: u128, completes: bool) -> u128 {
    if completes {
        refund_fee - refund_fee.min(deposit_fee)
    } else {
        refund_fee
    }
}

// ---------------------------------------------------------------- settlement

/// The merchant's share of one coin deposit: contribution − refunds − deposit fee, at least 0.
fn share(amount_with_fee: u128, refunded: u128, deposit_fee: u128) -> u128 {
    amount_with_fee
        .saturating_sub(refunded)
        .saturating_sub(deposit_fee)
}

const COIN_SHARES: &str = "SELECT c.batch_deposit_serial, c.amount_with_fee_val, \
     c.amount_with_fee_frac, c.deposit_fee_val, c.deposit_fee_frac, \
     coalesce((SELECT sum(r.amount_val) FROM refunds r \
               WHERE r.coin_deposit_serial = c.coin_deposit_serial), 0), \
     coalesce((SELECT sum(r.amount_frac) FROM refunds r \
               WHERE r.coin_deposit_serial = c.coin_deposit_serial), 0) \
     FROM coin_deposits c";

fn coin_shares(
    conn: &Connection,
    currency: Currency,
    where_clause: &str,
    params: impl Params,
) -> Result<Vec<(i64, u128)>, StoreError> {
    query_all(
        conn,
        &format!("{COIN_SHARES} {where_clause}"),
        params,
        |r| {
            let refunded_val: i64 = r.get(5)?;
            let refunded_frac: i64 = r.get(6)?;
            let refunded = u128::try_from(refunded_val).map_err(|_| corrupt("refund sum"))?
                * 100_000_000
                + u128::try_from(refunded_frac).map_err(|_| corrupt("refund sum"))?;
            Ok((
                r.get(0)?,
                share(
                    am(r, currency, 1)?.to_units(),
                    refunded,
                    am(r, currency, 3)?.to_units(),
                ),
            ))
        },
    )
}

pub(super) fn due_aggregates(
    conn: &Connection,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<DueAggregate>, StoreError> {
    let snapshot = snapshot(conn)?;
    let conn: &Connection = &snapshot;
    // Of the first 10000 due batches that do not wait (by serial), the merchant accounts of the
    // first `limit` (by first batch). Accounts whose due batches all wait are not chosen: they
    // cannot fill the page. `+batch_deposit_serial` keeps SQLite on the `batch_deposits_due`
    // index: ordered by the bare rowid it scans the whole table to skip a sort (10 % of the
    // exchange's CPU in the merchant benchmark, once per deposit).
    let accounts = query_all(
        conn,
        "SELECT merchant_pub, merchant_payto FROM ( \
           SELECT batch_deposit_serial, merchant_pub, merchant_payto FROM batch_deposits \
            WHERE done = 0 AND waiting = 0 AND wire_deadline <= ?1 \
            ORDER BY +batch_deposit_serial LIMIT 10000) \
         GROUP BY merchant_pub, merchant_payto ORDER BY min(batch_deposit_serial) LIMIT ?2",
        params![micros(now), limit],
        |r| Ok((eddsa(r, 0)?, r.get::<_, String>(1)?)),
    )?;
    let mut groups: BTreeMap<(Vec<u8>, String), DueAggregate> = BTreeMap::new();
    for (merchant_pub, payto) in accounts {
        // Each with all of its open due batches, the waiting ones included.
        let batches = query_all(
            conn,
            "SELECT batch_deposit_serial, h_payto FROM batch_deposits \
             WHERE merchant_pub = ?1 AND merchant_payto = ?2 AND done = 0 \
             AND wire_deadline <= ?3 ORDER BY batch_deposit_serial",
            params![merchant_pub.to_vec(), payto, micros(now)],
            |r| Ok((r.get::<_, i64>(0)?, short(r, 1)?)),
        )?;
        let Some((_, h_payto)) = batches.first().cloned() else {
            continue;
        };
        let mut total: u128 = 0;
        for (serial, _) in &batches {
            total += batch_share(conn, currency, *serial)?;
        }
        groups.insert(
            (merchant_pub.to_vec(), payto.clone()),
            DueAggregate {
                merchant_pub,
                merchant_payto: payto,
                h_payto,
                batch_serials: batches.iter().map(|(serial, _)| *serial).collect(),
                total: units(currency, total)?,
            },
        );
    }
    Ok(groups.into_values().collect())
}

/// What a batch owes its merchant now: Σ of its coins' shares.
fn batch_share(conn: &Connection, currency: Currency, serial: i64) -> Result<u128, StoreError> {
    Ok(coin_shares(
        conn,
        currency,
        "WHERE c.batch_deposit_serial = ?1",
        [serial],
    )?
    .iter()
    .map(|(_, s)| s)
    .sum())
}

pub(super) fn next_wire_deadline(
    conn: &Connection,
    _currency: Currency,
) -> Result<Option<Timestamp>, StoreError> {
    let next: Option<i64> = conn
        .prepare_cached(
            "SELECT min(wire_deadline) FROM batch_deposits WHERE done = 0 AND waiting = 0",
        )?
        .query_row([], |r| r.get(0))?;
    next.map(time).transpose()
}

pub(super) fn record_wire_out(
    tx: &mut SqliteTx<'_>,
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
    // Recompute from the rows as they are now, and take only those still unsettled.
    let mut total: u128 = 0;
    let mut owed = Vec::new();
    let mut owed_nothing = Vec::new();
    for serial in &aggregate.batch_serials {
        let open = exists(
            tx,
            "SELECT 1 FROM batch_deposits WHERE batch_deposit_serial = ?1 AND done = 0",
            [serial],
        )?;
        if !open {
            continue;
        }
        match batch_share(tx, currency, *serial)? {
            0 => owed_nothing.push(*serial),
            share => {
                total += share;
                owed.push(*serial);
            }
        }
    }
    // Owed nothing (fully refunded, or no more than the deposit fees): settled, no transfer.
    for serial in &owed_nothing {
        execute(
            tx,
            "UPDATE batch_deposits SET done = 1, waiting = 0 WHERE batch_deposit_serial = ?1",
            [serial],
        )?;
    }
    let Some(amount_units) = total.checked_sub(wire_fee.to_units()).filter(|a| *a > 0) else {
        // Not enough to cover the wire fee: the deposits owed something wait for more (C
        // exchange: the aggregator leaves them for a later run).
        for serial in &owed {
            execute(
                tx,
                "UPDATE batch_deposits SET waiting = 1 WHERE batch_deposit_serial = ?1",
                [serial],
            )?;
        }
        if !owed_nothing.is_empty() {
            tx.notify(TOPIC_WIRE_OUT, "");
        }
        return Ok(None);
    };
    for serial in &owed {
        execute(
            tx,
            "UPDATE batch_deposits SET wtid = ?2, done = 1, waiting = 0 \
             WHERE batch_deposit_serial = ?1",
            params![serial, wtid.to_vec()],
        )?;
    }
    let amount_due = units(currency, amount_units)?;
    let a = cols(&amount_due);
    let f = cols(&wire_fee);
    execute(
        tx,
        "INSERT INTO wire_out (wtid, request_uid, execution_date, merchant_pub, merchant_payto, \
         h_payto, account_section, amount_val, amount_frac, wire_fee_val, wire_fee_frac, \
         next_attempt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?3)",
        params![
            wtid.to_vec(),
            request_uid.to_vec(),
            micros(now),
            aggregate.merchant_pub.to_vec(),
            aggregate.merchant_payto,
            aggregate.h_payto.to_vec(),
            account_section,
            a.0,
            a.1,
            f.0,
            f.1
        ],
    )?;
    let serial = tx.last_insert_rowid();
    tx.notify(TOPIC_WIRE_OUT, "");
    Ok(Some(WireOutRow {
        serial,
        wtid,
        request_uid,
        execution_date: now,
        merchant_pub: aggregate.merchant_pub,
        merchant_payto: aggregate.merchant_payto,
        h_payto: aggregate.h_payto,
        account_section,
        amount: amount_due,
        wire_fee,
        gateway_row_id: None,
        failures: 0,
    }))
}

const WIRE_OUT_COLUMNS: &str = "wire_out_serial, wtid, request_uid, execution_date, \
     merchant_pub, merchant_payto, h_payto, account_section, amount_val, amount_frac, \
     wire_fee_val, wire_fee_frac, gateway_row_id, failures";

fn wire_out_row(r: &Row<'_>, currency: Currency) -> Result<WireOutRow, StoreError> {
    let gateway: Option<i64> = r.get(12)?;
    let failures: i64 = r.get(13)?;
    Ok(WireOutRow {
        serial: r.get(0)?,
        wtid: short(r, 1)?,
        request_uid: hash(r, 2)?,
        execution_date: ts(r, 3)?,
        merchant_pub: eddsa(r, 4)?,
        merchant_payto: r.get(5)?,
        h_payto: short(r, 6)?,
        account_section: r.get(7)?,
        amount: am(r, currency, 8)?,
        wire_fee: am(r, currency, 10)?,
        gateway_row_id: gateway_row(gateway)?,
        failures: count(failures),
    })
}

pub(super) fn pending_wire_outs(
    conn: &Connection,
    currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<WireOutRow>, StoreError> {
    query_all(
        conn,
        &format!(
            "SELECT {WIRE_OUT_COLUMNS} FROM wire_out WHERE gateway_row_id IS NULL \
             AND next_attempt <= ?1 ORDER BY wire_out_serial LIMIT ?2"
        ),
        params![micros(now), limit],
        |r| wire_out_row(r, currency),
    )
}

/// The queue of transfers to merchants (see [`Outgoing`]).
const WIRE_OUTS: OutgoingSql = OutgoingSql {
    next_attempt: "SELECT min(next_attempt) FROM wire_out WHERE gateway_row_id IS NULL",
    done: "UPDATE wire_out SET gateway_row_id = ?2 WHERE wire_out_serial = ?1",
    failed: "UPDATE wire_out SET failures = failures + 1, next_attempt = ?2 \
             WHERE wire_out_serial = ?1",
};

/// The sum of a coin deposit's refunds in units (`c` is the `coin_deposits` row), read by
/// [`refunded`].
const REFUNDED: &str = "coalesce((SELECT sum(r.amount_val) * 100000000 + sum(r.amount_frac) \
     FROM refunds r WHERE r.coin_deposit_serial = c.coin_deposit_serial), 0)";

fn refunded(r: &Row<'_>, currency: Currency, idx: usize) -> Result<Amount, StoreError> {
    let sum: i64 = r.get(idx)?;
    units(
        currency,
        u128::try_from(sum).map_err(|_| corrupt("refund sum"))?,
    )
}

pub(super) fn wire_out(
    conn: &Connection,
    currency: Currency,
    wtid: ShortHashCode,
) -> Result<Option<(WireOutRow, Vec<AggregatedDeposit>)>, StoreError> {
    let snapshot = snapshot(conn)?;
    let conn: &Connection = &snapshot;
    let Some(row) = query_opt(
        conn,
        &format!("SELECT {WIRE_OUT_COLUMNS} FROM wire_out WHERE wtid = ?1"),
        [wtid.to_vec()],
        |r| wire_out_row(r, currency),
    )?
    else {
        return Ok(None);
    };
    let deposits = query_all(
        conn,
        &format!(
            "SELECT b.h_contract_terms, c.coin_pub, c.amount_with_fee_val, \
             c.amount_with_fee_frac, c.deposit_fee_val, c.deposit_fee_frac, {REFUNDED} \
             FROM coin_deposits c JOIN batch_deposits b USING (batch_deposit_serial) \
             WHERE b.wtid = ?1 ORDER BY c.coin_deposit_serial"
        ),
        [wtid.to_vec()],
        |r| {
            Ok(AggregatedDeposit {
                h_contract_terms: hash(r, 0)?,
                coin_pub: eddsa(r, 1)?,
                amount_with_fee: am(r, currency, 2)?,
                deposit_fee: am(r, currency, 4)?,
                refunded: refunded(r, currency, 6)?,
            })
        },
    )?;
    Ok(Some((row, deposits)))
}

pub(super) fn deposit_tracking(
    conn: &Connection,
    currency: Currency,
    merchant_pub: EddsaPublicKey,
    h_contract_terms: HashCode,
    coin_pub: EddsaPublicKey,
) -> Result<Option<DepositTrackingRow>, StoreError> {
    query_opt(
        conn,
        &format!(
            "SELECT b.exchange_timestamp, b.wire_deadline, b.merchant_payto, b.wire_salt, \
             c.amount_with_fee_val, c.amount_with_fee_frac, c.deposit_fee_val, \
             c.deposit_fee_frac, {REFUNDED}, b.wtid, w.execution_date, \
             b.done = 1 AND b.wtid IS NULL \
             FROM coin_deposits c JOIN batch_deposits b USING (batch_deposit_serial) \
             LEFT JOIN wire_out w ON w.wtid = b.wtid \
             WHERE c.coin_pub = ?1 AND b.merchant_pub = ?2 AND b.h_contract_terms = ?3 \
             ORDER BY c.coin_deposit_serial LIMIT 1"
        ),
        params![
            coin_pub.to_vec(),
            merchant_pub.to_vec(),
            h_contract_terms.to_vec()
        ],
        |r| {
            let wtid: Option<Vec<u8>> = r.get(9)?;
            let executed: Option<i64> = r.get(10)?;
            let wire = match (wtid, executed) {
                (Some(w), Some(e)) => {
                    Some((fixed("wtid", &w, ShortHashCode::from_slice)?, time(e)?))
                }
                _ => None,
            };
            Ok(DepositTrackingRow {
                exchange_timestamp: ts(r, 0)?,
                wire_deadline: ts(r, 1)?,
                merchant_payto: r.get(2)?,
                wire_salt: salt(r, 3)?,
                amount_with_fee: am(r, currency, 4)?,
                deposit_fee: am(r, currency, 6)?,
                refunded: refunded(r, currency, 8)?,
                wire,
                settled_without_transfer: r.get(11)?,
            })
        },
    )
}

// ---------------------------------------------------------------- audit

fn sum(conn: &Connection, currency: Currency, sql: &str) -> Result<Amount, StoreError> {
    let (val, frac): (Option<i64>, Option<i64>) = conn
        .prepare_cached(sql)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let val = u128::try_from(val.unwrap_or(0)).map_err(|_| corrupt("negative sum"))?;
    let frac = u128::try_from(frac.unwrap_or(0)).map_err(|_| corrupt("negative sum"))?;
    units(currency, val * 100_000_000 + frac)
}

pub(super) fn audit_sums(conn: &Connection, currency: Currency) -> Result<AuditSums, StoreError> {
    let snapshot = snapshot(conn)?;
    let conn: &Connection = &snapshot;
    let s = |sql: &str| sum(conn, currency, sql);
    let shares = |settled: &str| -> Result<u128, StoreError> {
        Ok(coin_shares(
            conn,
            currency,
            &format!("JOIN batch_deposits b USING (batch_deposit_serial) WHERE {settled}"),
            [],
        )?
        .iter()
        .map(|(_, s)| s)
        .sum())
    };
    let reserves_off_balance = query_all(
        conn,
        "SELECT r.reserve_pub FROM reserves r WHERE \
         r.balance_val * 100000000 + r.balance_frac != \
         coalesce((SELECT sum(i.amount_val) * 100000000 + sum(i.amount_frac) FROM reserves_in i \
                   WHERE i.reserve_pub = r.reserve_pub), 0) - \
         coalesce((SELECT sum(w.amount_with_fee_val) * 100000000 + sum(w.amount_with_fee_frac) \
                   FROM withdrawals w WHERE w.reserve_pub = r.reserve_pub), 0) + \
         coalesce((SELECT sum(q.amount_val) * 100000000 + sum(q.amount_frac) FROM recoups q \
                   WHERE q.reserve_pub = r.reserve_pub), 0) - \
         coalesce((SELECT sum(c.amount_val) * 100000000 + sum(c.amount_frac) \
                   FROM reserves_close c WHERE c.reserve_pub = r.reserve_pub), 0)",
        [],
        |r| eddsa(r, 0),
    )?;
    // remaining = value − Σ deposits + Σ (refund − refund fee charged) − Σ recoups
    // − Σ recoup-refreshes of it + Σ recoup-refreshes into it.
    let coins_off_balance = query_all(
        conn,
        "SELECT k.coin_pub FROM known_coins k JOIN denominations d USING (denom_serial) WHERE \
         k.remaining_val * 100000000 + k.remaining_frac != \
         d.value_val * 100000000 + d.value_frac \
         - coalesce((SELECT sum(c.amount_with_fee_val) * 100000000 + sum(c.amount_with_fee_frac) \
                     FROM coin_deposits c WHERE c.coin_pub = k.coin_pub), 0) \
         - coalesce((SELECT sum(m.amount_with_fee_val) * 100000000 + sum(m.amount_with_fee_frac) \
                     FROM refresh_commitments m WHERE m.old_coin_pub = k.coin_pub), 0) \
         + coalesce((SELECT sum(r.amount_val - r.refund_fee_val) * 100000000 \
                          + sum(r.amount_frac - r.refund_fee_frac) \
                     FROM refunds r WHERE r.coin_pub = k.coin_pub), 0) \
         - coalesce((SELECT sum(q.amount_val) * 100000000 + sum(q.amount_frac) FROM recoups q \
                     WHERE q.coin_pub = k.coin_pub), 0) \
         - coalesce((SELECT sum(q.amount_val) * 100000000 + sum(q.amount_frac) \
                     FROM recoup_refreshes q WHERE q.coin_pub = k.coin_pub), 0) \
         + coalesce((SELECT sum(q.amount_val) * 100000000 + sum(q.amount_frac) \
                     FROM recoup_refreshes q WHERE q.old_coin_pub = k.coin_pub), 0)",
        [],
        |r| eddsa(r, 0),
    )?;
    let bounces_off_balance = query_all(
        conn,
        "SELECT account_section, wire_reference FROM wire_in_bounced \
         WHERE closing_fee_val IS NOT NULL AND \
         (closing_fee_val + returned_val) * 100000000 + closing_fee_frac + returned_frac != \
         amount_val * 100000000 + amount_frac ORDER BY bounce_serial",
        [],
        |r| Ok((r.get(0)?, unsigned("wire reference", r.get(1)?)?)),
    )?;
    let bounces_pending = units(
        currency,
        s(
            "SELECT sum(amount_val), sum(amount_frac) FROM wire_in_bounced \
           WHERE closing_fee_val IS NULL",
        )?
        .to_units()
            + s(
                "SELECT sum(returned_val), sum(returned_frac) FROM wire_in_bounced \
                 WHERE closing_fee_val IS NOT NULL AND done = 0",
            )?
            .to_units(),
    )?;
    Ok(AuditSums {
        bounced_in: s("SELECT sum(amount_val), sum(amount_frac) FROM wire_in_bounced")?,
        bounced_returned: s(
            "SELECT sum(returned_val), sum(returned_frac) FROM wire_in_bounced \
             WHERE gateway_row_id IS NOT NULL",
        )?,
        bounce_fees: s("SELECT sum(closing_fee_val), sum(closing_fee_frac) FROM wire_in_bounced")?,
        bounces_pending,
        bounces_off_balance,
        reserves_in: s("SELECT sum(amount_val), sum(amount_frac) FROM reserves_in")?,
        reserve_balances: s("SELECT sum(balance_val), sum(balance_frac) FROM reserves")?,
        reserve_totals_in: s("SELECT sum(total_in_val), sum(total_in_frac) FROM reserves")?,
        withdrawn_with_fee: s(
            "SELECT sum(amount_with_fee_val), sum(amount_with_fee_frac) FROM withdrawals",
        )?,
        withdraw_fees: s(
            "SELECT sum(d.fee_withdraw_val), sum(d.fee_withdraw_frac) FROM withdrawals w \
             JOIN denominations d USING (denom_serial)",
        )?,
        deposits_with_fee: s(
            "SELECT sum(amount_with_fee_val), sum(amount_with_fee_frac) FROM coin_deposits",
        )?,
        deposit_fees: s("SELECT sum(deposit_fee_val), sum(deposit_fee_frac) FROM coin_deposits")?,
        refunds: s("SELECT sum(amount_val), sum(amount_frac) FROM refunds")?,
        refund_fees: s("SELECT sum(refund_fee_val), sum(refund_fee_frac) FROM refunds")?,
        wired: s("SELECT sum(amount_val), sum(amount_frac) FROM wire_out")?,
        wire_fees: s("SELECT sum(wire_fee_val), sum(wire_fee_frac) FROM wire_out")?,
        aggregated_shares: units(currency, shares("b.wtid IS NOT NULL")?)?,
        settled_unwired_shares: units(currency, shares("b.done = 1 AND b.wtid IS NULL")?)?,
        coin_remaining: s("SELECT sum(remaining_val), sum(remaining_frac) FROM known_coins")?,
        coin_values: s(
            "SELECT sum(d.value_val), sum(d.value_frac) FROM known_coins k \
             JOIN denominations d USING (denom_serial)",
        )?,
        reserves_off_balance,
        coins_off_balance,
        refresh: refresh::audit_sums(conn, currency)?,
        recoup: recoup::audit_sums(conn, currency)?,
        closing: closing::audit(conn, currency)?,
    })
}
