//! Recoups on PostgreSQL: each recoup is ONE `CALL exchange_recoup` (`migrations/postgres/
//! 0003_recoup.sql`), which locks the coin, then the reserve, decides and writes; the reserve's
//! notification is sent once it committed; each recoup-refresh ONE `CALL
//! exchange_recoup_refresh`. The outcomes are those of `sqlite/recoup.rs`. The histories read
//! recoups in the coin's and the reserve's one statement (`mod.rs`); their rows are decoded
//! here.

use cardcash_store::{PgDb, StoreError};
use cardcash_util::Currency;
use sqlx::postgres::PgRow;

use super::super::recoup::{
    NewRecoup, NewRecoupRefresh, RecoupOutcome, RecoupRefreshOutcome, RecoupSums,
};
use super::super::{
    CoinHistoryEntry, ReserveHistoryEntry, TOPIC_RESERVE, cols, corrupt, reserve_key,
};
use super::{am, bytes, eddsa, micros, outcome, payload, sig, sum_amount, ts, write_row};

pub(in crate::db) async fn recoup(
    db: &PgDb,
    currency: Currency,
    r: NewRecoup,
) -> Result<RecoupOutcome, StoreError> {
    let (value_val, value_frac) = cols(&r.coin_value);
    let row = write_row(db, || {
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
    let row = write_row(db, || {
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

/// A recoup entry of `coin()`'s statement (`kind` 3: the coin's recoup; 4: its recoup-refresh;
/// 5: a recoup-refresh into it), whose columns it reuses: the other key (reserve, old coin,
/// fresh coin) in `merchant_pub`, the blinding secret in `h_payto`, the time in
/// `wallet_timestamp`, the coin's signature in `sig`.
pub(in crate::db) fn coin_history_entry(
    row: &PgRow,
    kind: i32,
    currency: Currency,
) -> Result<CoinHistoryEntry, StoreError> {
    let amount = am(row, currency, "amount")?;
    let timestamp = ts(row, "wallet_timestamp")?;
    let other = eddsa(row, "merchant_pub")?;
    let blind = || bytes(row, "h_payto", |b| <[u8; 32]>::try_from(b).ok());
    Ok(match kind {
        3 => CoinHistoryEntry::Recoup {
            amount,
            timestamp,
            reserve_pub: other,
            coin_sig: sig(row, "sig")?,
            coin_blind: blind()?,
        },
        4 => CoinHistoryEntry::RecoupRefresh {
            amount,
            timestamp,
            old_coin_pub: other,
            coin_sig: sig(row, "sig")?,
            coin_blind: blind()?,
        },
        _ => CoinHistoryEntry::OldCoinRecoup {
            amount,
            timestamp,
            coin_pub: other,
        },
    })
}

/// A recoup entry of `reserve_history()`'s statement (`kind` 3), whose columns it reuses: the
/// time in `execution_date`, the coin in `h_denom_pub`.
pub(in crate::db) fn reserve_history_entry(
    row: &PgRow,
    currency: Currency,
) -> Result<ReserveHistoryEntry, StoreError> {
    Ok(ReserveHistoryEntry::Recoup {
        amount: am(row, currency, "amount")?,
        timestamp: ts(row, "execution_date")?,
        coin_pub: eddsa(row, "h_denom_pub")?,
    })
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
