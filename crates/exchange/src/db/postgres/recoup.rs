//! Recoups on PostgreSQL: each recoup is ONE `CALL exchange_recoup` (`migrations/postgres/
//! 0003_recoup.sql`), which locks the coin, then the reserve, decides and writes; the reserve's
//! notification is sent once it committed. The outcomes are those of `sqlite/recoup.rs`.

use cardcash_store::{PgDb, StoreError, retry};
use cardcash_util::Currency;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::super::recoup::{NewRecoup, RecoupOutcome, RecoupRow, RecoupSums};
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

/// The recoup entries of a coin's history, on `conn` (the caller's snapshot).
pub(in crate::db) async fn coin_history(
    conn: &mut PgConnection,
    currency: Currency,
    coin_pub: &[u8],
) -> Result<Vec<CoinHistoryEntry>, StoreError> {
    sqlx::query(
        "SELECT coin_pub, reserve_pub, amount_val, amount_frac, recoup_timestamp, coin_sig, \
         coin_blind FROM recoups WHERE coin_pub = $1 ORDER BY recoup_serial",
    )
    .bind(coin_pub)
    .fetch_all(conn)
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
    .collect()
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
    })
}

/// The audit statement's columns for [`audit_sums`] (appended to `AUDIT_SQL`: one snapshot with
/// the rest).
pub(in crate::db) const AUDIT_COLUMNS: &str = "(SELECT coalesce(sum(exchange_units(amount_val, \
     amount_frac)), 0) FROM recoups)::TEXT AS recouped_to_reserves";
