//! Refreshes on SQLite: a melt and a reveal are each ONE writer closure (it runs alone, so it
//! reads, decides and writes without locks), the steps of `exchange_melt` and
//! `exchange_refresh_reveal` in `migrations/postgres/0002_refresh.sql`; keep them in step.

use cardcash_store::rusqlite::{Connection, Row, params};
use cardcash_store::{SqliteTx, StoreError, query_all, query_opt};
use cardcash_util::{Currency, EcdhePublicKey, EddsaPublicKey, HashCode};

use super::super::refresh::{
    LinkRow, MeltHistory, MeltOutcome, MeltSession, NewMelt, NewReveal, RefreshSums, RevealOutcome,
    StoredFreshCoin, StoredReveal,
};
use super::super::{CoinHistoryEntry, cols, corrupt, denomination_public, fixed, units};
use super::{am, eddsa, execute, exists, hash, micros, sig, snapshot, sum};

fn ecdhe(row: &Row<'_>, idx: usize) -> Result<EcdhePublicKey, StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    fixed("transfer public key", &b, EcdhePublicKey::from_slice)
}

fn index(what: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| corrupt(format!("{what} {n}")))
}

/// Whether `coin` may melt past its denomination's deposit expiry (see
/// `exchange_coin_is_zombie`): a coin that a recoup-refresh credited (`recoup.rs`).
pub(in crate::db) fn is_zombie(conn: &Connection, coin: &[u8]) -> Result<bool, StoreError> {
    super::recoup::is_zombie(conn, coin)
}

pub(in crate::db) fn melt(
    tx: &mut SqliteTx<'_>,
    currency: Currency,
    m: NewMelt,
) -> Result<MeltOutcome, StoreError> {
    let coin = m.coin_pub.to_vec();
    let known = query_opt(
        tx,
        "SELECT denom_serial, remaining_val, remaining_frac FROM known_coins WHERE coin_pub = ?1",
        [&coin],
        |r| Ok((r.get::<_, i64>(0)?, am(r, currency, 1)?)),
    )?;
    if known
        .as_ref()
        .is_some_and(|(serial, _)| *serial != m.denom_serial)
    {
        return Ok(MeltOutcome::CoinConflict);
    }
    let stored = query_opt(
        tx,
        "SELECT old_coin_pub, noreveal_index FROM refresh_commitments WHERE rc = ?1",
        [m.rc.to_vec()],
        |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)),
    )?;
    if let Some((old_coin, noreveal_index)) = stored {
        return Ok(if old_coin == coin {
            MeltOutcome::Done {
                noreveal_index: index("noreveal index", noreveal_index)?,
            }
        } else {
            MeltOutcome::RcConflict
        });
    }
    let left = match &known {
        Some((_, left)) => left.to_units(),
        None if m.zombie_required => return Ok(MeltOutcome::UnknownCoin),
        None => m.coin_value.to_units(),
    };
    if m.zombie_required && !is_zombie(tx, &coin)? {
        return Ok(MeltOutcome::NoZombie);
    }
    if let Some(rms) = &m.rms {
        let taken = exists(
            tx,
            "SELECT 1 FROM refresh_commitments WHERE rms = ?1",
            [rms.to_vec()],
        )?;
        if taken {
            return Ok(MeltOutcome::RmsReuse);
        }
    }
    let Some(left) = left.checked_sub(m.amount_with_fee.to_units()) else {
        return Ok(MeltOutcome::InsufficientFunds);
    };
    let left = cols(&units(currency, left)?);
    if known.is_some() {
        execute(
            tx,
            "UPDATE known_coins SET remaining_val = ?2, remaining_frac = ?3 WHERE coin_pub = ?1",
            params![coin, left.0, left.1],
        )?;
    } else {
        execute(
            tx,
            "INSERT INTO known_coins (coin_pub, denom_serial, denom_sig, remaining_val, \
             remaining_frac) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![coin, m.denom_serial, m.denom_sig, left.0, left.1],
        )?;
    }
    let deposits_before: i64 = tx
        .prepare_cached("SELECT count(*) FROM coin_deposits WHERE coin_pub = ?1")?
        .query_row([&coin], |r| r.get(0))?;
    let amount = cols(&m.amount_with_fee);
    let fee = cols(&m.melt_fee);
    execute(
        tx,
        "INSERT INTO refresh_commitments (rc, old_coin_pub, old_coin_sig, amount_with_fee_val, \
         amount_with_fee_frac, melt_fee_val, melt_fee_frac, noreveal_index, rms, \
         deposits_before, execution_date) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            m.rc.to_vec(),
            coin,
            m.coin_sig.to_vec(),
            amount.0,
            amount.1,
            fee.0,
            fee.1,
            i64::from(m.noreveal_index),
            m.rms.map(|r| r.to_vec()),
            deposits_before,
            micros(m.now)
        ],
    )?;
    Ok(MeltOutcome::Done {
        noreveal_index: m.noreveal_index,
    })
}

pub(in crate::db) fn melt_session(
    conn: &Connection,
    currency: Currency,
    rc: HashCode,
) -> Result<Option<MeltSession>, StoreError> {
    let snapshot = snapshot(conn)?;
    let conn: &Connection = &snapshot;
    let Some(mut session) = query_opt(
        conn,
        "SELECT m.melt_serial, m.old_coin_pub, d.h_denom_pub, m.amount_with_fee_val, \
         m.amount_with_fee_frac, m.melt_fee_val, m.melt_fee_frac, m.noreveal_index \
         FROM refresh_commitments m JOIN known_coins k ON k.coin_pub = m.old_coin_pub \
         JOIN denominations d ON d.denom_serial = k.denom_serial WHERE m.rc = ?1",
        [rc.to_vec()],
        |r| {
            Ok(MeltSession {
                melt_serial: r.get(0)?,
                old_coin_pub: eddsa(r, 1)?,
                old_h_denom_pub: hash(r, 2)?,
                amount_with_fee: am(r, currency, 3)?,
                melt_fee: am(r, currency, 5)?,
                noreveal_index: index("noreveal index", r.get(7)?)?,
                reveal: None,
            })
        },
    )?
    else {
        return Ok(None);
    };
    let reveal = query_opt(
        conn,
        "SELECT transfer_pub, transfer_privs FROM refresh_reveals WHERE melt_serial = ?1",
        [session.melt_serial],
        |r| Ok((ecdhe(r, 0)?, r.get::<_, Vec<u8>>(1)?)),
    )?;
    if let Some((transfer_pub, privs)) = reveal {
        let coins = query_all(
            conn,
            "SELECT d.h_denom_pub, c.h_coin_ev, c.ev_sig FROM refresh_revealed_coins c \
             JOIN denominations d ON d.denom_serial = c.denom_serial \
             WHERE c.melt_serial = ?1 ORDER BY c.freshcoin_index",
            [session.melt_serial],
            |r| {
                Ok(StoredFreshCoin {
                    h_denom_pub: hash(r, 0)?,
                    h_coin_ev: hash(r, 1)?,
                    ev_sig: r.get(2)?,
                })
            },
        )?;
        session.reveal = Some(StoredReveal {
            transfer_pub,
            transfer_privs: split_privs(&privs)?,
            coins,
        });
    }
    Ok(Some(session))
}

/// The revealed transfer private keys from their column (32 bytes each).
pub(in crate::db) fn split_privs(bytes: &[u8]) -> Result<Vec<[u8; 32]>, StoreError> {
    if !bytes.len().is_multiple_of(32) {
        return Err(corrupt(format!("transfer keys of {} bytes", bytes.len())));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut k = [0u8; 32];
            k.copy_from_slice(c);
            k
        })
        .collect())
}

pub(in crate::db) fn reveal(
    tx: &mut SqliteTx<'_>,
    _currency: Currency,
    r: NewReveal,
) -> Result<RevealOutcome, StoreError> {
    let melt = exists(
        tx,
        "SELECT 1 FROM refresh_commitments WHERE melt_serial = ?1",
        [r.melt_serial],
    )?;
    if !melt {
        return Ok(RevealOutcome::UnknownMelt);
    }
    let revealed = exists(
        tx,
        "SELECT 1 FROM refresh_reveals WHERE melt_serial = ?1",
        [r.melt_serial],
    )?;
    if revealed {
        let sigs = query_all(
            tx,
            "SELECT ev_sig FROM refresh_revealed_coins WHERE melt_serial = ?1 \
             ORDER BY freshcoin_index",
            [r.melt_serial],
            |row| Ok(row.get::<_, Vec<u8>>(0)?),
        )?;
        return Ok(RevealOutcome::Replay(sigs));
    }
    for (index, c) in r.coins.iter().enumerate() {
        let twice = r.coins[..index].iter().any(|o| o.h_coin_ev == c.h_coin_ev);
        let signed = exists(
            tx,
            "SELECT 1 FROM refresh_revealed_coins WHERE h_coin_ev = ?1",
            [c.h_coin_ev.to_vec()],
        )?;
        if twice || signed {
            return Ok(RevealOutcome::EnvelopeConflict { index });
        }
        if let Some(nonce) = &c.cs_nonce {
            let locked = query_opt(
                tx,
                "SELECT h_coin_ev FROM refresh_cs_nonce_locks WHERE nonce = ?1 AND denom_serial = ?2",
                params![nonce.to_vec(), c.denom_serial],
                |row| hash(row, 0),
            )?;
            let earlier = r.coins[..index]
                .iter()
                .any(|o| o.cs_nonce.as_ref() == Some(nonce) && o.denom_serial == c.denom_serial);
            if locked.is_some_and(|h| h != c.h_coin_ev) || earlier {
                return Ok(RevealOutcome::NonceReuse { index });
            }
        }
    }
    let privs: Vec<u8> = r.transfer_privs.concat();
    execute(
        tx,
        "INSERT INTO refresh_reveals (melt_serial, transfer_pub, transfer_privs, execution_date) \
         VALUES (?1, ?2, ?3, ?4)",
        params![r.melt_serial, r.transfer_pub.to_vec(), privs, micros(r.now)],
    )?;
    for (i, c) in r.coins.iter().enumerate() {
        if let Some(nonce) = &c.cs_nonce {
            execute(
                tx,
                "INSERT OR IGNORE INTO refresh_cs_nonce_locks (nonce, denom_serial, h_coin_ev) \
                 VALUES (?1, ?2, ?3)",
                params![nonce.to_vec(), c.denom_serial, c.h_coin_ev.to_vec()],
            )?;
        }
        let amount = cols(&c.amount_with_fee);
        execute(
            tx,
            "INSERT INTO refresh_revealed_coins (melt_serial, freshcoin_index, denom_serial, \
             coin_ev, h_coin_ev, link_sig, ev_sig, ewv, amount_with_fee_val, \
             amount_with_fee_frac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                r.melt_serial,
                i64::try_from(i).map_err(|_| StoreError::Internal("coin index".into()))?,
                c.denom_serial,
                c.coin_ev,
                c.h_coin_ev.to_vec(),
                c.link_sig.to_vec(),
                c.ev_sig,
                c.ewv.map(|e| e.to_vec()),
                amount.0,
                amount.1
            ],
        )?;
    }
    Ok(RevealOutcome::Done(
        r.coins.into_iter().map(|c| c.ev_sig).collect(),
    ))
}

pub(in crate::db) fn link(
    conn: &Connection,
    _currency: Currency,
    coin_pub: EddsaPublicKey,
) -> Result<Vec<LinkRow>, StoreError> {
    query_all(
        conn,
        "SELECT m.melt_serial, r.transfer_pub, c.freshcoin_index, d.cipher, d.denom_pub, \
         c.ev_sig, c.ewv, c.link_sig, c.coin_ev \
         FROM refresh_commitments m JOIN refresh_reveals r ON r.melt_serial = m.melt_serial \
         JOIN refresh_revealed_coins c ON c.melt_serial = m.melt_serial \
         JOIN denominations d ON d.denom_serial = c.denom_serial \
         WHERE m.old_coin_pub = ?1 ORDER BY m.melt_serial, c.freshcoin_index",
        [coin_pub.to_vec()],
        |r| {
            let cipher: i64 = r.get(3)?;
            let key: Vec<u8> = r.get(4)?;
            let ewv: Option<Vec<u8>> = r.get(6)?;
            Ok(LinkRow {
                melt_serial: r.get(0)?,
                transfer_pub: ecdhe(r, 1)?,
                coin_idx: index("fresh coin index", r.get(2)?)?,
                public: denomination_public(cipher, &key)?,
                ev_sig: r.get(5)?,
                ewv: ewv
                    .map(|b| fixed("R values", &b, |b| <[u8; 64]>::try_from(b).ok()))
                    .transpose()?,
                link_sig: sig(r, 7)?,
                coin_ev: r.get(8)?,
            })
        },
    )
}

/// The melts of a coin for its history (`super::coin`), in melt order.
pub(in crate::db) fn coin_melts(
    conn: &Connection,
    currency: Currency,
    coin: &[u8],
) -> Result<Vec<MeltHistory>, StoreError> {
    query_all(
        conn,
        "SELECT amount_with_fee_val, amount_with_fee_frac, melt_fee_val, melt_fee_frac, rc, \
         old_coin_sig, deposits_before FROM refresh_commitments WHERE old_coin_pub = ?1 \
         ORDER BY melt_serial",
        [coin],
        |r| {
            Ok(MeltHistory {
                deposits_before: index("deposits before", r.get(6)?)?,
                entry: CoinHistoryEntry::Melt {
                    amount_with_fee: am(r, currency, 0)?,
                    melt_fee: am(r, currency, 2)?,
                    rc: hash(r, 4)?,
                    coin_sig: sig(r, 5)?,
                },
            })
        },
    )
}

/// The audit's refresh sums, read on `conn` (the audit's snapshot).
pub(in crate::db) fn audit_sums(
    conn: &Connection,
    currency: Currency,
) -> Result<RefreshSums, StoreError> {
    let s = |sql: &str| sum(conn, currency, sql);
    let overspent = query_all(
        conn,
        "SELECT m.rc FROM refresh_commitments m JOIN refresh_reveals r USING (melt_serial) \
         WHERE m.amount_with_fee_val * 100000000 + m.amount_with_fee_frac < \
         m.melt_fee_val * 100000000 + m.melt_fee_frac + \
         (SELECT sum(c.amount_with_fee_val) * 100000000 + sum(c.amount_with_fee_frac) \
          FROM refresh_revealed_coins c WHERE c.melt_serial = m.melt_serial) \
         ORDER BY m.melt_serial",
        [],
        |r| hash(r, 0),
    )?;
    Ok(RefreshSums {
        melted: s(
            "SELECT sum(amount_with_fee_val), sum(amount_with_fee_frac) \
                   FROM refresh_commitments",
        )?,
        revealed_melted: s(
            "SELECT sum(m.amount_with_fee_val), sum(m.amount_with_fee_frac) \
                            FROM refresh_commitments m JOIN refresh_reveals r USING (melt_serial)",
        )?,
        revealed_melt_fees: s("SELECT sum(m.melt_fee_val), sum(m.melt_fee_frac) \
                               FROM refresh_commitments m \
                               JOIN refresh_reveals r USING (melt_serial)")?,
        refreshed: s(
            "SELECT sum(amount_with_fee_val), sum(amount_with_fee_frac) \
                      FROM refresh_revealed_coins",
        )?,
        fresh_withdraw_fees: s("SELECT sum(d.fee_withdraw_val), sum(d.fee_withdraw_frac) \
             FROM refresh_revealed_coins c JOIN denominations d USING (denom_serial)")?,
        overspent,
    })
}
