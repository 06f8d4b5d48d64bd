//! Refreshes on PostgreSQL: a melt is ONE `CALL exchange_melt`, a reveal ONE
//! `CALL exchange_refresh_reveal` (`migrations/postgres/0002_refresh.sql`), each locking what it
//! decides on; reads are single statements. The outcomes are those of `sqlite/refresh.rs`.

use cardcash_store::{PgDb, StoreError};
use cardcash_util::{Currency, EcdhePublicKey, EddsaPublicKey, HashCode};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::super::refresh::{
    LinkRow, MeltHistory, MeltOutcome, MeltSession, NewMelt, NewReveal, RefreshSums, RevealOutcome,
    StoredFreshCoin, StoredReveal,
};
use super::super::sqlite::refresh::split_privs;
use super::super::{CoinHistoryEntry, cols, corrupt, denomination_public, fixed};
use super::{am, bytes, eddsa, hash, index, micros, outcome, read_all, sig, sum_amount, write_row};

fn ecdhe(row: &PgRow, column: &str) -> Result<EcdhePublicKey, StoreError> {
    bytes(row, column, EcdhePublicKey::from_slice)
}

fn small(what: &str, n: i32) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| corrupt(format!("{what} {n}")))
}

pub(in crate::db) async fn melt(
    db: &PgDb,
    _currency: Currency,
    m: NewMelt,
) -> Result<MeltOutcome, StoreError> {
    let value = cols(&m.coin_value);
    let amount = cols(&m.amount_with_fee);
    let fee = cols(&m.melt_fee);
    let noreveal = i32::try_from(m.noreveal_index)
        .map_err(|_| StoreError::Internal("noreveal index".into()))?;
    let row = write_row(db, || {
        sqlx::query(
            "CALL exchange_melt($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, NULL, NULL)",
        )
        .bind(m.rc.as_bytes().as_slice())
        .bind(m.coin_pub.as_bytes().as_slice())
        .bind(m.denom_serial)
        .bind(m.denom_sig.as_slice())
        .bind(value.0)
        .bind(value.1)
        .bind(m.coin_sig.as_bytes().as_slice())
        .bind(amount.0)
        .bind(amount.1)
        .bind(fee.0)
        .bind(fee.1)
        .bind(noreveal)
        .bind(m.rms.map(|r| r.to_vec()))
        .bind(m.zombie_required)
        .bind(micros(m.now))
    })
    .await?;
    match outcome(&row)? {
        "done" => Ok(MeltOutcome::Done {
            noreveal_index: small("noreveal index", row.try_get("out_noreveal_index")?)?,
        }),
        "coin_conflict" => Ok(MeltOutcome::CoinConflict),
        "rc_conflict" => Ok(MeltOutcome::RcConflict),
        "unknown_coin" => Ok(MeltOutcome::UnknownCoin),
        "no_zombie" => Ok(MeltOutcome::NoZombie),
        "rms_reuse" => Ok(MeltOutcome::RmsReuse),
        "insufficient" => Ok(MeltOutcome::InsufficientFunds),
        other => Err(corrupt(format!("melt outcome {other:?}"))),
    }
}

pub(in crate::db) async fn melt_session(
    db: &PgDb,
    currency: Currency,
    rc: HashCode,
) -> Result<Option<MeltSession>, StoreError> {
    // The melt, its reveal and its fresh coins in one statement (one row per fresh coin; one
    // row with NULL coin columns before the reveal).
    let rows = sqlx::query(
        "SELECT m.melt_serial, m.old_coin_pub, d.h_denom_pub AS old_h_denom_pub, \
                m.amount_with_fee_val, m.amount_with_fee_frac, m.melt_fee_val, m.melt_fee_frac, \
                m.noreveal_index, r.transfer_pub, r.transfer_privs, \
                nd.h_denom_pub AS new_h_denom_pub, c.h_coin_ev, c.ev_sig \
           FROM refresh_commitments m \
           JOIN known_coins k ON k.coin_pub = m.old_coin_pub \
           JOIN denominations d ON d.denom_serial = k.denom_serial \
           LEFT JOIN refresh_reveals r ON r.melt_serial = m.melt_serial \
           LEFT JOIN refresh_revealed_coins c ON c.melt_serial = m.melt_serial \
           LEFT JOIN denominations nd ON nd.denom_serial = c.denom_serial \
          WHERE m.rc = $1 ORDER BY c.freshcoin_index",
    )
    .bind(rc.as_bytes().as_slice())
    .fetch_all(db.pool())
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let privs: Option<&[u8]> = first.try_get("transfer_privs")?;
    let reveal = match privs {
        None => None,
        Some(privs) => {
            let mut coins = Vec::with_capacity(rows.len());
            for r in &rows {
                if r.try_get::<Option<&[u8]>, _>("h_coin_ev")?.is_some() {
                    coins.push(StoredFreshCoin {
                        h_denom_pub: hash(r, "new_h_denom_pub")?,
                        h_coin_ev: hash(r, "h_coin_ev")?,
                        ev_sig: r.try_get("ev_sig")?,
                    });
                }
            }
            Some(StoredReveal {
                transfer_pub: ecdhe(first, "transfer_pub")?,
                transfer_privs: split_privs(privs)?,
                coins,
            })
        }
    };
    Ok(Some(MeltSession {
        melt_serial: first.try_get("melt_serial")?,
        old_coin_pub: eddsa(first, "old_coin_pub")?,
        old_h_denom_pub: hash(first, "old_h_denom_pub")?,
        amount_with_fee: am(first, currency, "amount_with_fee")?,
        melt_fee: am(first, currency, "melt_fee")?,
        noreveal_index: small("noreveal index", first.try_get("noreveal_index")?)?,
        reveal,
    }))
}

pub(in crate::db) async fn reveal(
    db: &PgDb,
    _currency: Currency,
    r: NewReveal,
) -> Result<RevealOutcome, StoreError> {
    let n = r.coins.len();
    let mut denom_serials = Vec::with_capacity(n);
    let mut coin_evs = Vec::with_capacity(n);
    let mut h_coin_evs = Vec::with_capacity(n);
    let mut link_sigs = Vec::with_capacity(n);
    let mut ev_sigs = Vec::with_capacity(n);
    let mut ewvs: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
    let mut nonces: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
    let mut vals = Vec::with_capacity(n);
    let mut fracs = Vec::with_capacity(n);
    for c in &r.coins {
        denom_serials.push(c.denom_serial);
        coin_evs.push(c.coin_ev.as_slice());
        h_coin_evs.push(c.h_coin_ev.to_vec());
        link_sigs.push(c.link_sig.to_vec());
        ev_sigs.push(c.ev_sig.as_slice());
        ewvs.push(c.ewv.map(|e| e.to_vec()));
        nonces.push(c.cs_nonce.map(|n| n.to_vec()));
        let (v, f) = cols(&c.amount_with_fee);
        vals.push(v);
        fracs.push(f);
    }
    let privs: Vec<u8> = r.transfer_privs.concat();
    let row = write_row(db, || {
        sqlx::query(
            "CALL exchange_refresh_reveal($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, NULL, NULL, NULL)",
        )
        .bind(r.melt_serial)
        .bind(r.transfer_pub.as_bytes().as_slice())
        .bind(privs.as_slice())
        .bind(micros(r.now))
        .bind(&denom_serials)
        .bind(&coin_evs)
        .bind(&h_coin_evs)
        .bind(&link_sigs)
        .bind(&ev_sigs)
        .bind(&ewvs)
        .bind(&nonces)
        .bind(&vals)
        .bind(&fracs)
    })
    .await?;
    match outcome(&row)? {
        "done" => Ok(RevealOutcome::Done(row.try_get("out_ev_sigs")?)),
        "replay" => Ok(RevealOutcome::Replay(row.try_get("out_ev_sigs")?)),
        "unknown" => Ok(RevealOutcome::UnknownMelt),
        "envelope_conflict" => Ok(RevealOutcome::EnvelopeConflict {
            index: index(&row)?,
        }),
        "nonce_reuse" => Ok(RevealOutcome::NonceReuse {
            index: index(&row)?,
        }),
        other => Err(corrupt(format!("reveal outcome {other:?}"))),
    }
}

pub(in crate::db) async fn link(
    db: &PgDb,
    _currency: Currency,
    coin_pub: EddsaPublicKey,
) -> Result<Vec<LinkRow>, StoreError> {
    read_all(
        db,
        sqlx::query(
            "SELECT m.melt_serial, r.transfer_pub, c.freshcoin_index, d.cipher, d.denom_pub, \
                    c.ev_sig, c.ewv, c.link_sig, c.coin_ev \
               FROM refresh_commitments m JOIN refresh_reveals r ON r.melt_serial = m.melt_serial \
               JOIN refresh_revealed_coins c ON c.melt_serial = m.melt_serial \
               JOIN denominations d ON d.denom_serial = c.denom_serial \
              WHERE m.old_coin_pub = $1 ORDER BY m.melt_serial, c.freshcoin_index",
        )
        .bind(coin_pub.as_bytes().as_slice()),
        |r| {
            let cipher: i32 = r.try_get("cipher")?;
            let key: &[u8] = r.try_get("denom_pub")?;
            let ewv: Option<&[u8]> = r.try_get("ewv")?;
            Ok(LinkRow {
                melt_serial: r.try_get("melt_serial")?,
                transfer_pub: ecdhe(r, "transfer_pub")?,
                coin_idx: small("fresh coin index", r.try_get("freshcoin_index")?)?,
                public: denomination_public(cipher.into(), key)?,
                ev_sig: r.try_get("ev_sig")?,
                ewv: ewv
                    .map(|b| fixed("R values", b, |b| <[u8; 64]>::try_from(b).ok()))
                    .transpose()?,
                link_sig: sig(r, "link_sig")?,
                coin_ev: r.try_get("coin_ev")?,
            })
        },
    )
    .await
}

/// A melt row of the coin-history statement (`super::coin`, kind 2: `rc` travels in
/// `h_contract_terms`, `deposits_before` in `rtransaction_id`).
pub(in crate::db) fn melt_history(
    r: &PgRow,
    currency: Currency,
) -> Result<MeltHistory, StoreError> {
    let position: i64 = r.try_get("rtransaction_id")?;
    Ok(MeltHistory {
        deposits_before: u32::try_from(position)
            .map_err(|_| corrupt(format!("deposits before {position}")))?,
        entry: CoinHistoryEntry::Melt {
            amount_with_fee: am(r, currency, "amount")?,
            melt_fee: am(r, currency, "fee")?,
            rc: hash(r, "h_contract_terms")?,
            coin_sig: sig(r, "sig")?,
        },
    })
}

/// The refresh columns of the audit's one statement (appended to its select list).
pub(in crate::db) const AUDIT_COLUMNS: &str = "\
  (SELECT coalesce(sum(exchange_units(amount_with_fee_val, amount_with_fee_frac)), 0) \
     FROM refresh_commitments)::TEXT AS refresh_melted, \
  (SELECT coalesce(sum(exchange_units(m.amount_with_fee_val, m.amount_with_fee_frac)), 0) \
     FROM refresh_commitments m JOIN refresh_reveals r USING (melt_serial))::TEXT \
    AS refresh_revealed_melted, \
  (SELECT coalesce(sum(exchange_units(m.melt_fee_val, m.melt_fee_frac)), 0) \
     FROM refresh_commitments m JOIN refresh_reveals r USING (melt_serial))::TEXT \
    AS refresh_revealed_melt_fees, \
  (SELECT coalesce(sum(exchange_units(amount_with_fee_val, amount_with_fee_frac)), 0) \
     FROM refresh_revealed_coins)::TEXT AS refresh_refreshed, \
  (SELECT coalesce(sum(exchange_units(d.fee_withdraw_val, d.fee_withdraw_frac)), 0) \
     FROM refresh_revealed_coins c JOIN denominations d USING (denom_serial))::TEXT \
    AS refresh_fresh_withdraw_fees, \
  ARRAY(SELECT m.rc FROM refresh_commitments m JOIN refresh_reveals r USING (melt_serial) \
         WHERE exchange_units(m.amount_with_fee_val, m.amount_with_fee_frac) < \
               exchange_units(m.melt_fee_val, m.melt_fee_frac) \
               + (SELECT coalesce(sum(exchange_units(c.amount_with_fee_val, \
                                                     c.amount_with_fee_frac)), 0) \
                    FROM refresh_revealed_coins c WHERE c.melt_serial = m.melt_serial) \
         ORDER BY m.melt_serial) AS refresh_overspent";

/// The refresh sums from the audit's row ([`AUDIT_COLUMNS`]).
pub(in crate::db) fn audit_sums(r: &PgRow, currency: Currency) -> Result<RefreshSums, StoreError> {
    let overspent: Vec<Vec<u8>> = r.try_get("refresh_overspent")?;
    Ok(RefreshSums {
        melted: sum_amount(r, currency, "refresh_melted")?,
        revealed_melted: sum_amount(r, currency, "refresh_revealed_melted")?,
        revealed_melt_fees: sum_amount(r, currency, "refresh_revealed_melt_fees")?,
        refreshed: sum_amount(r, currency, "refresh_refreshed")?,
        fresh_withdraw_fees: sum_amount(r, currency, "refresh_fresh_withdraw_fees")?,
        overspent: overspent
            .iter()
            .map(|b| fixed("rc", b, HashCode::from_slice))
            .collect::<Result<_, _>>()?,
    })
}
