//! Recoups on PostgreSQL: each recoup is ONE `CALL exchange_recoup` (`migrations/postgres/
//! 0003_recoup.sql`), which locks the coin, then the reserve, decides and writes; the reserve's
//! notification is sent once it committed. The outcomes are those of `sqlite/recoup.rs`.

use cardcash_store::{PgDb, StoreError, retry};
use cardcash_util::Currency;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::super::recoup::{
    NewRecoup, NewRecoupRefresh, RecoupOutcome, RecoupRefreshOutcome, RecoupRow, RecoupSums,
};
use super::super::{
    CoinHistoryEntry, ReserveHistoryEntry, TOPIC_RESERVE, cols, corrupt, reserve_key,
};
use super::{am, bytes, eddsa, micros, outcome, payload, sig, sum_amount, ts};

pub(in crate::db) async fn recoup(
    db: &PgDb,
    currency: Currency,
    r: NewRecoup,
) -> Result<RecoupOutcome, StoreError> {
    let (value_val, value_frac) = cols(&r.coin_value);
    let row = retry(|| async {
        sqlx::query(
            "CALL exchange_recoup($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             NULL, NULL, NULL, NULL)",
        )
        .bind(r.coin_pub.as_bytes().as_slice())
        .bind(r.denom_serial)
        .bind(r.denom_sig.as_slice())
        .bind(value_val)
        .bind(value_frac)
        .bind(r.h_blind_ev.as_bytes().as_slice())
        .bind(r.coin_sig.as_bytes().as_slice())
        .bind(r.coin_blind.as_slice())
        .bind(micros(r.now))
        .bind(micros(r.reserve_expiration))
        .fetch_one(db.pool())
        .await
        .map_err(StoreError::from)
    })
    .await?;
    match outcome(&row)? {
        "done" => {
            let reserve_pub = eddsa(&row, "out_reserve_pub")?;
            db.send_notifications([payload(TOPIC_RESERVE, &reserve_key(&reserve_pub))]);
            Ok(RecoupOutcome::Done {
                reserve_pub,
                amount: am(&row, currency, "out_amount")?,
            })
        }
        "replay" => Ok(RecoupOutcome::Replay {
            reserve_pub: eddsa(&row, "out_reserve_pub")?,
        }),
        "not_found" => Ok(RecoupOutcome::WithdrawalNotFound),
        "coin_conflict" => Ok(RecoupOutcome::CoinConflict),
        "insufficient" => Ok(RecoupOutcome::InsufficientFunds),
        other => Err(corrupt(format!("recoup outcome {other:?}"))),
    }
}

pub(in crate::db) async fn recoup_refresh(
    db: &PgDb,
    currency: Currency,
    r: NewRecoupRefresh,
) -> Result<RecoupRefreshOutcome, StoreError> {
    let (value_val, value_frac) = cols(&r.coin_value);
    let row = retry(|| async {
        sqlx::query(
            "CALL exchange_recoup_refresh($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             NULL, NULL, NULL, NULL)",
        )
        .bind(r.coin_pub.as_bytes().as_slice())
        .bind(r.denom_serial)
        .bind(r.denom_sig.as_slice())
        .bind(value_val)
        .bind(value_frac)
        .bind(r.h_coin_ev.as_bytes().as_slice())
        .bind(r.coin_sig.as_bytes().as_slice())
        .bind(r.coin_blind.as_slice())
        .bind(micros(r.now))
        .fetch_one(db.pool())
        .await
        .map_err(StoreError::from)
    })
    .await?;
    match outcome(&row)? {
        "done" => Ok(RecoupRefreshOutcome::Done {
            old_coin_pub: eddsa(&row, "out_old_coin_pub")?,
            amount: am(&row, currency, "out_amount")?,
        }),
        "replay" => Ok(RecoupRefreshOutcome::Replay {
            old_coin_pub: eddsa(&row, "out_old_coin_pub")?,
        }),
        "not_found" => Ok(RecoupRefreshOutcome::MeltNotFound),
        "coin_conflict" => Ok(RecoupRefreshOutcome::CoinConflict),
        "insufficient" => Ok(RecoupRefreshOutcome::InsufficientFunds),
        other => Err(corrupt(format!("recoup-refresh outcome {other:?}"))),
    }
}

fn recoup_row(row: &PgRow, currency: Currency) -> Result<RecoupRow, StoreError> {
    Ok(RecoupRow {
        coin_pub: eddsa(row, "coin_pub")?,
        reserve_pub: eddsa(row, "reserve_pub")?,
        amount: am(row, currency, "amount")?,
        timestamp: ts(row, "recoup_timestamp")?,
        coin_sig: sig(row, "coin_sig")?,
        coin_blind: bytes(row, "coin_blind", |b| <[u8; 32]>::try_from(b).ok())?,
    })
}

/// The recoup entries of a coin's history, on `conn` (the caller's snapshot): its recoups
/// into its reserve, its recoups into the coin it was refreshed from, then what coins refreshed
/// from it paid back to it, each in the order they happened.
pub(in crate::db) async fn coin_history(
    conn: &mut PgConnection,
    currency: Currency,
    coin_pub: &[u8],
) -> Result<Vec<CoinHistoryEntry>, StoreError> {
    let mut entries = sqlx::query(
        "SELECT coin_pub, reserve_pub, amount_val, amount_frac, recoup_timestamp, coin_sig, \
         coin_blind FROM recoups WHERE coin_pub = $1 ORDER BY recoup_serial",
    )
    .bind(coin_pub)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        let r = recoup_row(row, currency)?;
        Ok(CoinHistoryEntry::Recoup {
            amount: r.amount,
            timestamp: r.timestamp,
            reserve_pub: r.reserve_pub,
            coin_sig: r.coin_sig,
            coin_blind: r.coin_blind,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    // Both directions in one statement: kind 0 (this coin recouped into its old coin), kind 1
    // (a fresh coin of this one recouped into it).
    for row in sqlx::query(
        "SELECT 0 AS kind, recoup_refresh_serial, amount_val, amount_frac, recoup_timestamp, \
         old_coin_pub AS other_coin, coin_sig, coin_blind FROM recoup_refreshes \
         WHERE coin_pub = $1 \
         UNION ALL \
         SELECT 1, recoup_refresh_serial, amount_val, amount_frac, recoup_timestamp, coin_pub, \
         coin_sig, coin_blind FROM recoup_refreshes WHERE old_coin_pub = $1 \
         ORDER BY kind, recoup_refresh_serial",
    )
    .bind(coin_pub)
    .fetch_all(&mut *conn)
    .await?
    {
        let kind: i32 = row.try_get("kind")?;
        let amount = am(&row, currency, "amount")?;
        let timestamp = ts(&row, "recoup_timestamp")?;
        let other = eddsa(&row, "other_coin")?;
        entries.push(if kind == 0 {
            CoinHistoryEntry::RecoupRefresh {
                amount,
                timestamp,
                old_coin_pub: other,
                coin_sig: sig(&row, "coin_sig")?,
                coin_blind: bytes(&row, "coin_blind", |b| <[u8; 32]>::try_from(b).ok())?,
            }
        } else {
            CoinHistoryEntry::OldCoinRecoup {
                amount,
                timestamp,
                coin_pub: other,
            }
        });
    }
    Ok(entries)
}

/// The recoup entries of a reserve's history, on `conn` (the caller's snapshot).
pub(in crate::db) async fn reserve_history(
    conn: &mut PgConnection,
    currency: Currency,
    reserve_pub: &[u8],
) -> Result<Vec<ReserveHistoryEntry>, StoreError> {
    sqlx::query(
        "SELECT coin_pub, reserve_pub, amount_val, amount_frac, recoup_timestamp, coin_sig, \
         coin_blind FROM recoups WHERE reserve_pub = $1 ORDER BY recoup_serial",
    )
    .bind(reserve_pub)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| {
        let r = recoup_row(row, currency)?;
        Ok(ReserveHistoryEntry::Recoup {
            amount: r.amount,
            timestamp: r.timestamp,
            coin_pub: r.coin_pub,
        })
    })
    .collect()
}

/// The audit's recoup sums, from the audit statement's recoup columns (in `AUDIT_SQL`).
pub(in crate::db) fn audit_sums(row: &PgRow, currency: Currency) -> Result<RecoupSums, StoreError> {
    Ok(RecoupSums {
        to_reserves: sum_amount(row, currency, "recouped_to_reserves")?,
        to_coins: sum_amount(row, currency, "recouped_to_coins")?,
    })
}

/// The audit statement's columns for [`audit_sums`] (appended to `AUDIT_SQL`: one snapshot with
/// the rest).
pub(in crate::db) const AUDIT_COLUMNS: &str = "(SELECT coalesce(sum(exchange_units(amount_val, \
     amount_frac)), 0) FROM recoups)::TEXT AS recouped_to_reserves, \
     (SELECT coalesce(sum(exchange_units(amount_val, amount_frac)), 0) \
     FROM recoup_refreshes)::TEXT AS recouped_to_coins";
