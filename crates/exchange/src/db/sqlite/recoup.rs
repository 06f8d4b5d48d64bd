//! Recoups on SQLite: each recoup is ONE writer closure (it runs alone, so it reads, decides
//! and writes without locks), the steps of `exchange_recoup` in
//! `migrations/postgres/0003_recoup.sql`; keep them in step.

use cardcash_store::rusqlite::{Connection, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Amount, Currency};

use super::super::recoup::{
    NewRecoup, NewRecoupRefresh, RecoupOutcome, RecoupRefreshOutcome, RecoupRow, RecoupSums,
};
use super::super::{
    CoinHistoryEntry, ReserveHistoryEntry, TOPIC_RESERVE, cols, fixed, reserve_key, units,
};
use super::{am, eddsa, execute, exists, micros, sig, ts};

fn blind(row: &cardcash_store::rusqlite::Row<'_>, idx: usize) -> Result<[u8; 32], StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("coin blinding secret", &b, |b| <[u8; 32]>::try_from(b).ok())
}

/// The denomination of a coin the exchange knows, and what is left of it.
fn known_coin(
    conn: &Connection,
    currency: Currency,
    coin_pub: &[u8],
) -> Result<Option<(i64, Amount)>, StoreError> {
    query_opt(
        conn,
        "SELECT denom_serial, remaining_val, remaining_frac FROM known_coins WHERE coin_pub = ?1",
        [coin_pub],
        |row| Ok((row.get::<_, i64>(0)?, am(row, currency, 1)?)),
    )
}

/// Leaves nothing of a recouped coin: a known coin is emptied, one seen for the first time is
/// stored empty.
fn empty_coin(
    conn: &Connection,
    known: bool,
    coin_pub: &[u8],
    denom_serial: i64,
    denom_sig: &[u8],
) -> Result<(), StoreError> {
    if known {
        execute(
            conn,
            "UPDATE known_coins SET remaining_val = 0, remaining_frac = 0 WHERE coin_pub = ?1",
            [coin_pub],
        )?;
    } else {
        execute(
            conn,
            "INSERT INTO known_coins (coin_pub, denom_serial, denom_sig, remaining_val, \
             remaining_frac) VALUES (?1, ?2, ?3, 0, 0)",
            params![coin_pub, denom_serial, denom_sig],
        )?;
    }
    Ok(())
}

pub(in crate::db) fn recoup(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    r: NewRecoup,
) -> Result<RecoupOutcome, StoreError> {
    let coin = r.coin_pub.to_vec();
    let known = known_coin(tx, currency, &coin)?;
    if known
        .as_ref()
        .is_some_and(|(serial, _)| *serial != r.denom_serial)
    {
        return Ok(RecoupOutcome::CoinConflict);
    }
    let Some((withdraw_serial, reserve_pub)) = query_opt(
        tx,
        "SELECT withdraw_serial, reserve_pub FROM withdrawals \
         WHERE h_blind_ev = ?1 AND denom_serial = ?2",
        params![r.h_blind_ev.to_vec(), r.denom_serial],
        |row| Ok((row.get::<_, i64>(0)?, eddsa(row, 1)?)),
    )?
    else {
        return Ok(RecoupOutcome::WithdrawalNotFound);
    };
    let left = known.map_or(r.coin_value, |(_, left)| left);
    if left.is_zero() {
        let before = exists(
            tx,
            "SELECT 1 FROM recoups WHERE coin_pub = ?1 LIMIT 1",
            [&coin],
        )?;
        return Ok(if before {
            RecoupOutcome::Replay { reserve_pub }
        } else {
            RecoupOutcome::InsufficientFunds
        });
    }
    let reserve = reserve_pub.to_vec();
    let (balance, expiration) = query_opt(
        tx,
        "SELECT balance_val, balance_frac, expiration_date FROM reserves WHERE reserve_pub = ?1",
        [&reserve],
        |row| Ok((am(row, currency, 0)?, row.get::<_, i64>(2)?)),
    )?
    .ok_or_else(|| StoreError::Internal("a withdrawal's reserve is missing".into()))?;
    let new_balance = cols(&units(currency, balance.to_units() + left.to_units())?);
    execute(
        tx,
        "UPDATE reserves SET balance_val = ?2, balance_frac = ?3, expiration_date = ?4 \
         WHERE reserve_pub = ?1",
        params![
            reserve,
            new_balance.0,
            new_balance.1,
            expiration.max(micros(r.reserve_expiration))
        ],
    )?;
    empty_coin(tx, known.is_some(), &coin, r.denom_serial, &r.denom_sig)?;
    let amount = cols(&left);
    execute(
        tx,
        "INSERT INTO recoups (coin_pub, coin_sig, coin_blind, amount_val, amount_frac, \
         recoup_timestamp, withdraw_serial, reserve_pub) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            coin,
            r.coin_sig.to_vec(),
            r.coin_blind.to_vec(),
            amount.0,
            amount.1,
            micros(r.now),
            withdraw_serial,
            reserve
        ],
    )?;
    tx.notify(TOPIC_RESERVE, &reserve_key(&reserve_pub));
    Ok(RecoupOutcome::Done {
        reserve_pub,
        amount: left,
    })
}

const RECOUP_COLUMNS: &str = "coin_pub, reserve_pub, amount_val, amount_frac, recoup_timestamp, \
                              coin_sig, coin_blind";

fn recoup_row(
    row: &cardcash_store::rusqlite::Row<'_>,
    currency: Currency,
) -> Result<RecoupRow, StoreError> {
    Ok(RecoupRow {
        coin_pub: eddsa(row, 0)?,
        reserve_pub: eddsa(row, 1)?,
        amount: am(row, currency, 2)?,
        timestamp: ts(row, 4)?,
        coin_sig: sig(row, 5)?,
        coin_blind: blind(row, 6)?,
    })
}

/// The recoup entries of a coin's history (read inside the caller's snapshot): its recoups
/// into its reserve, its recoups into the coin it was refreshed from, then what coins refreshed
/// from it paid back to it, each in the order they happened.
pub(in crate::db) fn coin_history(
    conn: &Connection,
    currency: Currency,
    coin_pub: &[u8],
) -> Result<Vec<CoinHistoryEntry>, StoreError> {
    let mut entries = query_all(
        conn,
        &format!("SELECT {RECOUP_COLUMNS} FROM recoups WHERE coin_pub = ?1 ORDER BY recoup_serial"),
        [coin_pub],
        |row| {
            let r = recoup_row(row, currency)?;
            Ok(CoinHistoryEntry::Recoup {
                amount: r.amount,
                timestamp: r.timestamp,
                reserve_pub: r.reserve_pub,
                coin_sig: r.coin_sig,
                coin_blind: r.coin_blind,
            })
        },
    )?;
    entries.extend(query_all(
        conn,
        "SELECT amount_val, amount_frac, recoup_timestamp, old_coin_pub, coin_sig, coin_blind \
         FROM recoup_refreshes WHERE coin_pub = ?1 ORDER BY recoup_refresh_serial",
        [coin_pub],
        |row| {
            Ok(CoinHistoryEntry::RecoupRefresh {
                amount: am(row, currency, 0)?,
                timestamp: ts(row, 2)?,
                old_coin_pub: eddsa(row, 3)?,
                coin_sig: sig(row, 4)?,
                coin_blind: blind(row, 5)?,
            })
        },
    )?);
    entries.extend(query_all(
        conn,
        "SELECT amount_val, amount_frac, recoup_timestamp, coin_pub FROM recoup_refreshes \
         WHERE old_coin_pub = ?1 ORDER BY recoup_refresh_serial",
        [coin_pub],
        |row| {
            Ok(CoinHistoryEntry::OldCoinRecoup {
                amount: am(row, currency, 0)?,
                timestamp: ts(row, 2)?,
                coin_pub: eddsa(row, 3)?,
            })
        },
    )?);
    Ok(entries)
}

/// The recoup entries of a reserve's history (read inside the caller's snapshot).
pub(in crate::db) fn reserve_history(
    conn: &Connection,
    currency: Currency,
    reserve_pub: &[u8],
) -> Result<Vec<ReserveHistoryEntry>, StoreError> {
    query_all(
        conn,
        &format!(
            "SELECT {RECOUP_COLUMNS} FROM recoups WHERE reserve_pub = ?1 ORDER BY recoup_serial"
        ),
        [reserve_pub],
        |row| {
            let r = recoup_row(row, currency)?;
            Ok(ReserveHistoryEntry::Recoup {
                amount: r.amount,
                timestamp: r.timestamp,
                coin_pub: r.coin_pub,
            })
        },
    )
}

pub(in crate::db) fn recoup_refresh(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    r: NewRecoupRefresh,
) -> Result<RecoupRefreshOutcome, StoreError> {
    let coin = r.coin_pub.to_vec();
    // The reveal that signed the envelope, and its melted coin.
    let reveal = query_opt(
        tx,
        "SELECT c.rrc_serial, m.old_coin_pub FROM refresh_revealed_coins c \
         JOIN refresh_commitments m USING (melt_serial) \
         WHERE c.h_coin_ev = ?1 AND c.denom_serial = ?2",
        params![r.h_coin_ev.to_vec(), r.denom_serial],
        |row| Ok((row.get::<_, i64>(0)?, eddsa(row, 1)?)),
    )?;
    let known = known_coin(tx, currency, &coin)?;
    if known
        .as_ref()
        .is_some_and(|(serial, _)| *serial != r.denom_serial)
    {
        return Ok(RecoupRefreshOutcome::CoinConflict);
    }
    let Some((rrc_serial, old_coin_pub)) = reveal else {
        return Ok(RecoupRefreshOutcome::MeltNotFound);
    };
    let old = old_coin_pub.to_vec();
    let old_left = query_opt(
        tx,
        "SELECT remaining_val, remaining_frac FROM known_coins WHERE coin_pub = ?1",
        [&old],
        |row| am(row, currency, 0),
    )?
    .filter(|_| old != coin)
    .ok_or_else(|| StoreError::Internal("a melted coin is missing from known_coins".into()))?;
    let left = known.map_or(r.coin_value, |(_, left)| left);
    if left.is_zero() {
        let before = exists(
            tx,
            "SELECT 1 FROM recoup_refreshes WHERE coin_pub = ?1 LIMIT 1",
            [&coin],
        )?;
        return Ok(if before {
            RecoupRefreshOutcome::Replay { old_coin_pub }
        } else {
            RecoupRefreshOutcome::InsufficientFunds
        });
    }
    let credited = cols(&units(currency, old_left.to_units() + left.to_units())?);
    execute(
        tx,
        "UPDATE known_coins SET remaining_val = ?2, remaining_frac = ?3 WHERE coin_pub = ?1",
        params![old, credited.0, credited.1],
    )?;
    empty_coin(tx, known.is_some(), &coin, r.denom_serial, &r.denom_sig)?;
    let amount = cols(&left);
    execute(
        tx,
        "INSERT INTO recoup_refreshes (coin_pub, old_coin_pub, coin_sig, coin_blind, amount_val, \
         amount_frac, recoup_timestamp, rrc_serial) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            coin,
            old,
            r.coin_sig.to_vec(),
            r.coin_blind.to_vec(),
            amount.0,
            amount.1,
            micros(r.now),
            rrc_serial
        ],
    )?;
    Ok(RecoupRefreshOutcome::Done {
        old_coin_pub,
        amount: left,
    })
}

/// Whether the coin received value back from a recoup of a coin it was refreshed into (a
/// "zombie", which may be melted after its denomination's deposit expiry; the C exchange's
/// check in `exchange_do_melt`).
pub(in crate::db) fn is_zombie(conn: &Connection, coin_pub: &[u8]) -> Result<bool, StoreError> {
    exists(
        conn,
        "SELECT 1 FROM recoup_refreshes WHERE old_coin_pub = ?1 LIMIT 1",
        [coin_pub],
    )
}

/// Σ of the recoups (inside the audit's snapshot).
pub(in crate::db) fn audit_sums(
    conn: &Connection,
    currency: Currency,
) -> Result<RecoupSums, StoreError> {
    Ok(RecoupSums {
        to_reserves: super::sum(
            conn,
            currency,
            "SELECT sum(amount_val), sum(amount_frac) FROM recoups",
        )?,
        to_coins: super::sum(
            conn,
            currency,
            "SELECT sum(amount_val), sum(amount_frac) FROM recoup_refreshes",
        )?,
    })
}
