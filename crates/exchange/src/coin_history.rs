//! A coin's history for its owner: `GET /coins/$COIN_PUB/history` (protocol v23), the proof a
//! wallet fetches after a double-spending 409 (which in v23 names the coin but carries no
//! history). Modelled on the C exchange's `taler-exchange-httpd_coins_get.c` and
//! `pg_get_coin_transactions.c`:
//!
//! - the coin's signature over `start` (purpose 1209, [`CoinHistoryRequest`]) is checked first:
//!   403 `EXCHANGE_COIN_HISTORY_BAD_SIGNATURE`;
//! - a coin without history (never deposited here) is 404 `EXCHANGE_GENERIC_COIN_UNKNOWN`;
//! - the ETag is the offset of the coin's newest entry. The client's `If-None-Match`, or else
//!   `start` itself, equal to it is 304 (so `start` = the current ETag is 304 even without
//!   `If-None-Match`, as with the C exchange); otherwise the entries after `start`, oldest
//!   first, are 200, or 204 when there are none;
//! - the 200 body is `h_denom_pub`, `balance` (what is left of the coin now, whatever `start`)
//!   and the entries as the C exchange writes them: a `DEPOSIT` with its `h_wire` recomputed
//!   from the merchant's account and salt, `refund_deadline` left out when zero, no
//!   `wallet_data_hash`/`h_policy` (the v23 server writes neither; `h_age_commitment` never
//!   applies, age-restricted coins are refused); a `REFUND` with `amount` = refund − refund fee
//!   and `refund_fee` = the denomination's refund fee (from the key snapshot: what the C clients
//!   check against `/keys`, not the possibly lower fee charged, see `db` "Refunds never create
//!   money").
//!
//! # Offsets (where we differ from the C exchange)
//! The C exchange keys a coin's history by one serial over all of its tables and lists it in
//! that order. Our storage keeps each kind of entry in its own table, with its own order, and
//! no common sequence, so an offset here counts three sequences that each only grow at their
//! end ([`Offset`]): the coin's spends (deposits and melts in the order they happened, then its
//! recoups — a recoup follows every spend, since its denomination was revoked), in the low 32
//! bits; its refunds, in bits 32–47; and what coins refreshed from it paid back to it
//! (`OLD-COIN-RECOUP`, which a later melt or refund may follow), in bits 48–63. The entries
//! after an offset are its later spends, then its later refunds, then its later recoup
//! credits. Clients only ever send 0 or an ETag they received, and both work as with the C
//! exchange: nothing is skipped or repeated however the kinds interleave. The listing differs
//! from the C exchange's only where a spend follows a credit of the same coin (we list the
//! spend first). For a coin with deposits only (the double-spending case) an offset is simply
//! the number of entries.

use cardcash_api::exchange::{BlindingKeySecret, CoinHistoryEntry, CoinHistoryResponse};
use cardcash_crypto::purpose::CoinHistoryRequest;
use cardcash_util::{EddsaPublicKey, EddsaSignature, ErrorCode, HashCode, ShortHashCode, WireSalt};

use crate::db;
use crate::error::ExchangeError;
use crate::service::Exchange;

/// A position in a coin's history: how many spends (`deposits`: deposits, melts, recoups),
/// refunds and recoup credits (`recoups_in`: `OLD-COIN-RECOUP`) lie before it. Travels as one
/// `u64` (`start`, the ETag): spends in the low 32 bits, refunds in bits 32–47, recoup credits
/// in bits 48–63.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offset {
    pub deposits: u32,
    pub refunds: u32,
    pub recoups_in: u32,
}

/// The three sequences of a coin's history (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sequence {
    Spend,
    Refund,
    RecoupIn,
}

fn sequence(e: &db::CoinHistoryEntry) -> Sequence {
    match e {
        db::CoinHistoryEntry::Refund { .. } => Sequence::Refund,
        db::CoinHistoryEntry::OldCoinRecoup { .. } => Sequence::RecoupIn,
        _ => Sequence::Spend,
    }
}

impl Offset {
    /// The offset a client sent.
    pub fn from_u64(v: u64) -> Self {
        Self {
            deposits: (v & u64::from(u32::MAX)) as u32,
            refunds: ((v >> 32) & 0xffff) as u32,
            recoups_in: (v >> 48) as u32,
        }
    }

    /// The offset as it travels (refunds and recoup credits above 65535 saturate).
    pub fn to_u64(self) -> u64 {
        (u64::from(self.recoups_in.min(0xffff)) << 48)
            | (u64::from(self.refunds.min(0xffff)) << 32)
            | u64::from(self.deposits)
    }

    /// The offset after all of `history` (counts saturate: no coin has that many
    /// transactions).
    pub fn end_of(history: &[db::CoinHistoryEntry]) -> Self {
        let count = |s: Sequence| {
            let n = history.iter().filter(|e| sequence(e) == s).count();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        Self {
            deposits: count(Sequence::Spend),
            refunds: count(Sequence::Refund),
            recoups_in: count(Sequence::RecoupIn),
        }
    }
}

/// The entries of `history` (in the storage's order: each sequence oldest first) after
/// `start`: the later spends, then the later refunds, then the later recoup credits.
pub fn after(history: &[db::CoinHistoryEntry], start: Offset) -> Vec<&db::CoinHistoryEntry> {
    let later = |s: Sequence, skip: u32| {
        history
            .iter()
            .filter(move |e| sequence(e) == s)
            .skip(skip as usize)
    };
    later(Sequence::Spend, start.deposits)
        .chain(later(Sequence::Refund, start.refunds))
        .chain(later(Sequence::RecoupIn, start.recoups_in))
        .collect()
}

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// 304: the client has seen the newest entry.
    NotModified,
    /// 204: nothing after `start`.
    Empty,
    /// 200.
    Entries(CoinHistoryResponse),
}

/// A page of a coin's history with the coin's current ETag (the offset of its newest entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinHistory {
    pub etag: u64,
    pub page: Page,
}

/// `GET /coins/$COIN_PUB/history?start=…` with the coin's `signature` over `start` and the
/// client's `If-None-Match` ETag, if it sent a well-formed one.
pub async fn history(
    exchange: &Exchange,
    coin_pub: EddsaPublicKey,
    start: u64,
    signature: &EddsaSignature,
    if_none_match: Option<u64>,
) -> Result<CoinHistory, ExchangeError> {
    cardcash_crypto::verify(
        &coin_pub,
        signature,
        &CoinHistoryRequest { start_off: start },
    )
    .map_err(|_| {
        ExchangeError::refused(
            ErrorCode::ExchangeCoinHistoryBadSignature,
            "the coin's signature over the history request is invalid",
        )
    })?;
    let etag_in = if_none_match.unwrap_or(start);
    let coin = exchange
        .store()
        .coin(coin_pub)
        .await?
        .filter(|c| !c.history.is_empty())
        .ok_or_else(|| {
            ExchangeError::refused(
                ErrorCode::ExchangeGenericCoinUnknown,
                "the exchange knows no transaction of this coin",
            )
        })?;
    let etag = Offset::end_of(&coin.history).to_u64();
    if etag == etag_in {
        return Ok(CoinHistory {
            etag,
            page: Page::NotModified,
        });
    }
    let entries = after(&coin.history, Offset::from_u64(start));
    if entries.is_empty() {
        return Ok(CoinHistory {
            etag,
            page: Page::Empty,
        });
    }
    let snapshot = exchange.keys();
    let refund_fee = snapshot
        .denominations
        .get(&coin.h_denom_pub)
        .map(|d| d.fee_refund);
    let mut history = Vec::with_capacity(entries.len());
    for entry in entries {
        history.push(match entry {
            db::CoinHistoryEntry::Deposit {
                amount_with_fee,
                deposit_fee,
                merchant_pub,
                h_contract_terms,
                h_payto,
                wire_salt,
                wallet_timestamp,
                refund_deadline,
                wire_deadline: _,
                wallet_data_hash: _,
                coin_sig,
            } => CoinHistoryEntry::Deposit {
                amount: *amount_with_fee,
                deposit_fee: *deposit_fee,
                timestamp: *wallet_timestamp,
                refund_deadline: (*refund_deadline != cardcash_util::Timestamp::ZERO)
                    .then_some(*refund_deadline),
                merchant_pub: *merchant_pub,
                h_contract_terms: *h_contract_terms,
                h_wire: merchant_h_wire(
                    exchange,
                    coin_pub,
                    *merchant_pub,
                    *h_contract_terms,
                    h_payto,
                    wire_salt,
                )
                .await?,
                h_age_commitment: None,
                wallet_data_hash: None,
                h_policy: None,
                coin_sig: *coin_sig,
            },
            db::CoinHistoryEntry::Refund {
                amount,
                refund_fee: stored_fee,
                merchant_pub,
                h_contract_terms,
                rtransaction_id,
                merchant_sig,
            } => {
                let fee = refund_fee.unwrap_or(*stored_fee);
                CoinHistoryEntry::Refund {
                    // Refunds below the fee are refused, so this never fails.
                    amount: amount.checked_sub(&fee).map_err(|e| {
                        ExchangeError::Internal(format!("a refund below its fee: {e}"))
                    })?,
                    refund_fee: fee,
                    h_contract_terms: *h_contract_terms,
                    merchant_pub: *merchant_pub,
                    rtransaction_id: *rtransaction_id,
                    merchant_sig: *merchant_sig,
                }
            }
            db::CoinHistoryEntry::Melt {
                amount_with_fee,
                melt_fee,
                rc,
                coin_sig,
            } => CoinHistoryEntry::Melt {
                amount: *amount_with_fee,
                melt_fee: *melt_fee,
                rc: *rc,
                h_age_commitment: None,
                coin_sig: *coin_sig,
            },
            db::CoinHistoryEntry::Recoup {
                amount,
                timestamp,
                reserve_pub,
                coin_sig,
                coin_blind,
            } => {
                let (exchange_pub, exchange_sig) = crate::recoup::confirm_recoup(
                    exchange,
                    *timestamp,
                    *amount,
                    coin_pub,
                    *reserve_pub,
                )?;
                CoinHistoryEntry::Recoup {
                    amount: *amount,
                    exchange_sig,
                    exchange_pub,
                    reserve_pub: *reserve_pub,
                    coin_sig: *coin_sig,
                    coin_blind: BlindingKeySecret::from_bytes(*coin_blind),
                    timestamp: *timestamp,
                }
            }
            db::CoinHistoryEntry::RecoupRefresh {
                amount,
                timestamp,
                old_coin_pub,
                coin_sig,
                coin_blind,
            } => {
                let (exchange_pub, exchange_sig) = crate::recoup::confirm_recoup_refresh(
                    exchange,
                    *timestamp,
                    *amount,
                    coin_pub,
                    *old_coin_pub,
                )?;
                CoinHistoryEntry::RecoupRefresh {
                    amount: *amount,
                    exchange_sig,
                    exchange_pub,
                    old_coin_pub: *old_coin_pub,
                    coin_sig: *coin_sig,
                    coin_blind: BlindingKeySecret::from_bytes(*coin_blind),
                    timestamp: *timestamp,
                }
            }
            db::CoinHistoryEntry::OldCoinRecoup {
                amount,
                timestamp,
                coin_pub: fresh_coin,
            } => {
                let (exchange_pub, exchange_sig) = crate::recoup::confirm_recoup_refresh(
                    exchange,
                    *timestamp,
                    *amount,
                    *fresh_coin,
                    coin_pub,
                )?;
                CoinHistoryEntry::OldCoinRecoup {
                    amount: *amount,
                    exchange_sig,
                    exchange_pub,
                    coin_pub: *fresh_coin,
                    timestamp: *timestamp,
                }
            }
        });
    }
    Ok(CoinHistory {
        etag,
        page: Page::Entries(CoinHistoryResponse {
            h_denom_pub: coin.h_denom_pub,
            balance: coin.remaining,
            history,
        }),
    })
}

/// The `h_wire` the coin signed for a deposit: the hash of the merchant's payto URI and salt.
/// The history entry has the payto URI's hash only, so the URI comes from the deposit's
/// tracking row (the first deposit of the coin for this merchant and contract), checked
/// against the entry.
async fn merchant_h_wire(
    exchange: &Exchange,
    coin_pub: EddsaPublicKey,
    merchant_pub: EddsaPublicKey,
    h_contract_terms: HashCode,
    h_payto: &ShortHashCode,
    wire_salt: &WireSalt,
) -> Result<HashCode, ExchangeError> {
    let row = exchange
        .store()
        .deposit_tracking(merchant_pub, h_contract_terms, coin_pub)
        .await?
        .ok_or_else(|| ExchangeError::Internal("a coin's deposit has no tracking row".into()))?;
    if cardcash_crypto::h_payto(&row.merchant_payto) != *h_payto || row.wire_salt != *wire_salt {
        return Err(ExchangeError::Internal(
            "a coin was deposited twice for one merchant and contract with other wire details"
                .into(),
        ));
    }
    Ok(cardcash_crypto::h_wire(&row.merchant_payto, &row.wire_salt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_util::{Amount, Timestamp};

    fn deposit(n: u8) -> db::CoinHistoryEntry {
        let a: Amount = "KUDOS:1".parse().unwrap();
        db::CoinHistoryEntry::Deposit {
            amount_with_fee: a,
            deposit_fee: a,
            merchant_pub: EddsaPublicKey::from_bytes([n; 32]),
            h_contract_terms: HashCode::from_bytes([n; 64]),
            h_payto: ShortHashCode::from_bytes([n; 32]),
            wire_salt: WireSalt::from_bytes([n; 16]),
            wallet_timestamp: Timestamp::ZERO,
            refund_deadline: Timestamp::ZERO,
            wire_deadline: Timestamp::ZERO,
            wallet_data_hash: None,
            coin_sig: EddsaSignature::from_bytes([n; 64]),
        }
    }

    fn refund(n: u8) -> db::CoinHistoryEntry {
        let a: Amount = "KUDOS:1".parse().unwrap();
        db::CoinHistoryEntry::Refund {
            amount: a,
            refund_fee: a,
            merchant_pub: EddsaPublicKey::from_bytes([n; 32]),
            h_contract_terms: HashCode::from_bytes([n; 64]),
            rtransaction_id: u64::from(n),
            merchant_sig: EddsaSignature::from_bytes([n; 64]),
        }
    }

    #[test]
    fn offsets_count_deposits_low_and_refunds_high() {
        let o = Offset {
            deposits: 3,
            refunds: 2,
            recoups_in: 0,
        };
        assert_eq!(o.to_u64(), (2 << 32) | 3);
        assert_eq!(Offset::from_u64(o.to_u64()), o);
        assert_eq!(Offset::from_u64(0), Offset::default());
        assert_eq!(Offset::from_u64(u64::MAX).to_u64(), u64::MAX);
        // Deposits only: the offset is the number of entries.
        assert_eq!(Offset::end_of(&[deposit(1), deposit(2)]).to_u64(), 2);
        assert_eq!(
            Offset::end_of(&[deposit(1), deposit(2), refund(1)]),
            Offset {
                deposits: 2,
                refunds: 1,
                recoups_in: 0,
            }
        );
        assert_eq!(Offset::end_of(&[]).to_u64(), 0);
    }

    #[test]
    fn pages_never_skip_or_repeat_whatever_the_interleaving() {
        // Seen: deposit 1 and its refund. Then deposit 2 arrives (after the refund) and a
        // second refund: the next page is exactly those two, wherever storage lists them.
        let seen = Offset::end_of(&[deposit(1), refund(1)]);
        let now = [deposit(1), deposit(2), refund(1), refund(2)];
        assert_eq!(after(&now, seen), vec![&now[1], &now[3]]);
        assert_eq!(after(&now, Offset::default()).len(), 4);
        assert!(after(&now, Offset::end_of(&now)).is_empty());
        // An offset beyond the history (not one we gave out) lists nothing.
        assert!(after(&now, Offset::from_u64(u64::MAX)).is_empty());
        // Deposits only: start=k skips the first k entries.
        let deposits = [deposit(1), deposit(2), deposit(3)];
        assert_eq!(
            after(&deposits, Offset::from_u64(1)),
            vec![&deposits[1], &deposits[2]]
        );
    }

    fn old_coin_recoup(n: u8) -> db::CoinHistoryEntry {
        db::CoinHistoryEntry::OldCoinRecoup {
            amount: "KUDOS:1".parse().unwrap(),
            timestamp: Timestamp::from_secs(u64::from(n)),
            coin_pub: EddsaPublicKey::from_bytes([n; 32]),
        }
    }

    fn recoup(n: u8) -> db::CoinHistoryEntry {
        db::CoinHistoryEntry::Recoup {
            amount: "KUDOS:1".parse().unwrap(),
            timestamp: Timestamp::from_secs(u64::from(n)),
            reserve_pub: EddsaPublicKey::from_bytes([n; 32]),
            coin_sig: EddsaSignature::from_bytes([n; 64]),
            coin_blind: [n; 32],
        }
    }

    #[test]
    fn recoups_page_with_their_sequence() {
        // A coin deposited, credited by a recoup of a coin refreshed from it, then deposited
        // and refunded again: each page holds exactly what is new.
        let seen = Offset::end_of(&[deposit(1), old_coin_recoup(1)]);
        assert_eq!(
            seen,
            Offset {
                deposits: 1,
                refunds: 0,
                recoups_in: 1,
            }
        );
        assert_eq!(seen.to_u64(), (1 << 48) | 1);
        assert_eq!(Offset::from_u64(seen.to_u64()), seen);
        let now = [
            deposit(1),
            deposit(2),
            refund(2),
            old_coin_recoup(1),
            old_coin_recoup(2),
        ];
        assert_eq!(after(&now, seen), vec![&now[1], &now[2], &now[4]]);
        // A coin's own recoup is a spend: after its deposits.
        let spent = [deposit(1), recoup(1)];
        assert_eq!(Offset::end_of(&spent).to_u64(), 2);
        assert_eq!(after(&spent, Offset::from_u64(1)), vec![&spent[1]]);
    }
}
