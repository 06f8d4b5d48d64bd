//! Storage of refreshes (`migrations/*/0002_refresh.sql`; `sqlite/refresh.rs`,
//! `postgres/refresh.rs`): melts, their reveals, the fresh coins and what link shows.
//!
//! # Money rules held here
//! - A melt debits the old coin by its `amount_with_fee` in ONE transaction that locks the coin
//!   (PostgreSQL: `exchange_melt`, `SELECT … FOR UPDATE` on `known_coins`, the row deposits lock
//!   too; SQLite: one writer closure), so a melt racing a deposit of the same coin sees it
//!   before or after, and the two never spend more than the coin has. A coin first seen by its
//!   melt becomes known with its denomination's value, then is debited at once.
//! - A melt is keyed by its commitment `rc`: a replay changes nothing and gets the stored
//!   `noreveal_index` (chosen once, at random, by the first request). A refresh master secret
//!   belongs to one melt.
//! - A melt's reveal is stored once, with its fresh coins' blind signatures; a replay gets
//!   those. A Clause-Schnorr nonce signs one envelope per denomination (refresh domain), and an
//!   envelope is signed in one refresh only.
//! - The coin's history lists a melt after the deposits recorded before it
//!   (`deposits_before`), so the list of a coin's spends only ever grows at its end.

use cardcash_store::{Database, StoreError};
use cardcash_util::{Amount, EcdhePublicKey, EddsaPublicKey, EddsaSignature, HashCode, Timestamp};

use super::postgres::refresh as postgres;
use super::sqlite::refresh as sqlite;
use super::{CoinHistoryEntry, ExchangeStore};
use crate::keys::store::DenominationPublic;

/// A melt to record (the coin's signatures and denomination checked already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMelt {
    pub rc: HashCode,
    pub coin_pub: EddsaPublicKey,
    /// The old coin's denomination.
    pub denom_serial: i64,
    /// The unblinded denomination signature, stored with the coin if it is new here.
    pub denom_sig: Vec<u8>,
    /// The denomination's value (the coin's remaining value if it is new here).
    pub coin_value: Amount,
    /// The coin's signature over the melt (purpose 1202).
    pub coin_sig: EddsaSignature,
    pub amount_with_fee: Amount,
    /// The old denomination's refresh fee.
    pub melt_fee: Amount,
    /// The index chosen for a new melt (a replay keeps the stored one).
    pub noreveal_index: u32,
    /// The refresh master secret, if the wallet sent one.
    pub rms: Option<[u8; 32]>,
    /// The denomination is past its deposit expiry: only a known zombie coin may melt.
    pub zombie_required: bool,
    pub now: Timestamp,
}

/// The outcome of [`ExchangeStore::melt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeltOutcome {
    /// Recorded now, or before (a replay): the index the wallet does not reveal.
    Done { noreveal_index: u32 },
    /// The coin is known with another denomination.
    CoinConflict,
    /// The commitment was melted by another coin.
    RcConflict,
    /// Past the deposit expiry, and the exchange never saw the coin.
    UnknownCoin,
    /// Past the deposit expiry, and the coin is no zombie.
    NoZombie,
    /// The refresh master secret belongs to another melt.
    RmsReuse,
    /// The coin has less value left than the melt; nothing was changed.
    InsufficientFunds,
}

/// A melt as the reveal needs it, with its reveal if there was one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeltSession {
    pub melt_serial: i64,
    pub old_coin_pub: EddsaPublicKey,
    /// The old coin's denomination.
    pub old_h_denom_pub: HashCode,
    pub amount_with_fee: Amount,
    pub melt_fee: Amount,
    pub noreveal_index: u32,
    pub reveal: Option<StoredReveal>,
}

/// A stored reveal: what a replay must repeat, and the signatures it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReveal {
    pub transfer_pub: EcdhePublicKey,
    /// The κ−1 revealed transfer private keys, in request order.
    pub transfer_privs: Vec<[u8; 32]>,
    /// The fresh coins by index.
    pub coins: Vec<StoredFreshCoin>,
}

/// A fresh coin of a stored reveal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFreshCoin {
    pub h_denom_pub: HashCode,
    pub h_coin_ev: HashCode,
    /// The blind signature in storage form (`crate::withdraw::encode_blind_signature`).
    pub ev_sig: Vec<u8>,
}

/// A reveal to record: the commitment checked, the fresh coins signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReveal {
    pub melt_serial: i64,
    pub transfer_pub: EcdhePublicKey,
    pub transfer_privs: Vec<[u8; 32]>,
    pub now: Timestamp,
    /// The fresh coins in order.
    pub coins: Vec<NewFreshCoin>,
}

/// A fresh coin to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFreshCoin {
    pub denom_serial: i64,
    /// The envelope in storage form ([`envelope_bytes`]).
    pub coin_ev: Vec<u8>,
    pub h_coin_ev: HashCode,
    pub link_sig: EddsaSignature,
    /// The blind signature in storage form.
    pub ev_sig: Vec<u8>,
    /// CS: the exchange's `R0 ‖ R1` of the envelope's nonce.
    pub ewv: Option<[u8; 64]>,
    /// CS: the envelope's session nonce (locked to it).
    pub cs_nonce: Option<[u8; 32]>,
    /// The denomination's value plus withdraw fee.
    pub amount_with_fee: Amount,
}

/// The outcome of [`ExchangeStore::reveal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevealOutcome {
    /// Recorded now: the signatures as given, in coin order.
    Done(Vec<Vec<u8>>),
    /// Revealed before: the stored signatures, in coin order; nothing changed.
    Replay(Vec<Vec<u8>>),
    /// No such melt.
    UnknownMelt,
    /// The envelope at `index` was signed before in another refresh (or twice in this one).
    EnvelopeConflict { index: usize },
    /// The CS nonce at `index` is locked to another envelope of its denomination.
    NonceReuse { index: usize },
}

/// A fresh coin as link shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub melt_serial: i64,
    /// The kept set's transfer public key.
    pub transfer_pub: EcdhePublicKey,
    pub coin_idx: u32,
    pub public: DenominationPublic,
    /// The blind signature in storage form.
    pub ev_sig: Vec<u8>,
    /// CS: `R0 ‖ R1`.
    pub ewv: Option<[u8; 64]>,
    pub link_sig: EddsaSignature,
    /// The envelope in storage form ([`envelope_bytes`]).
    pub coin_ev: Vec<u8>,
}

/// What the audit needs of refreshes (read in the audit's snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSums {
    /// Σ `amount_with_fee` of every melt (taken from the coins).
    pub melted: Amount,
    /// Σ `amount_with_fee` of the revealed melts.
    pub revealed_melted: Amount,
    /// Σ melt fees of the revealed melts.
    pub revealed_melt_fees: Amount,
    /// Σ value + withdraw fee of the fresh coins issued.
    pub refreshed: Amount,
    /// Σ withdraw fees of the fresh coins issued (part of `refreshed`): what the exchange keeps
    /// of a refresh is `melted − (refreshed − fresh_withdraw_fees)`.
    pub fresh_withdraw_fees: Amount,
    /// Revealed melts (their `rc`) whose fresh coins and melt fee exceed what they melted
    /// (should be none).
    pub overspent: Vec<HashCode>,
}

impl RefreshSums {
    /// Nothing refreshed.
    pub fn zero(currency: &cardcash_util::Currency) -> Self {
        let zero = Amount::zero(currency);
        Self {
            melted: zero,
            revealed_melted: zero,
            revealed_melt_fees: zero,
            refreshed: zero,
            fresh_withdraw_fees: zero,
            overspent: Vec::new(),
        }
    }
}

/// The storage form of an envelope: RSA's blinded message as received, or CS `nonce ‖ c0 ‖ c1`.
pub fn envelope_bytes(envelope: &cardcash_crypto::refresh::RefreshEnvelope) -> Vec<u8> {
    use cardcash_crypto::refresh::RefreshEnvelope;
    match envelope {
        RefreshEnvelope::Rsa(bm) => bm.clone(),
        RefreshEnvelope::Cs { nonce, c } => [&nonce[..], &c[0], &c[1]].concat(),
    }
}

/// A melt of a coin as its history shows it, with its place among the coin's deposits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeltHistory {
    /// How many deposits of the coin were recorded before the melt.
    pub deposits_before: u32,
    /// A [`CoinHistoryEntry::Melt`].
    pub entry: CoinHistoryEntry,
}

/// Places `melts` (in melt order) among the deposits of `history`: each after the deposits
/// recorded before it, after earlier melts; the other entries (refunds, recoups) follow the
/// coin's spends in their order. A new deposit or melt thus always lands at the end of the
/// spends, which is what keeps the coin-history offsets stable (`crate::coin_history`).
pub(super) fn merge_melts(
    history: Vec<CoinHistoryEntry>,
    melts: Vec<MeltHistory>,
) -> Vec<CoinHistoryEntry> {
    if melts.is_empty() {
        return history;
    }
    let (deposits, rest): (Vec<_>, Vec<_>) = history
        .into_iter()
        .partition(|e| matches!(e, CoinHistoryEntry::Deposit { .. }));
    let mut merged = Vec::with_capacity(deposits.len() + melts.len() + rest.len());
    let mut melts = melts.into_iter().peekable();
    for (i, deposit) in deposits.into_iter().enumerate() {
        while let Some(m) = melts.next_if(|m| m.deposits_before as usize <= i) {
            merged.push(m.entry);
        }
        merged.push(deposit);
    }
    merged.extend(melts.map(|m| m.entry));
    merged.extend(rest);
    merged
}

impl ExchangeStore {
    /// Records a melt: the coin debited and the commitment stored, in one transaction (see the
    /// module docs); a replay (same `rc`) gets the stored index.
    pub async fn melt(&self, melt: NewMelt) -> Result<MeltOutcome, StoreError> {
        dispatch_write!(self, melt(melt))
    }

    /// The melt of commitment `rc`, with its reveal if any (one snapshot).
    pub async fn melt_session(&self, rc: HashCode) -> Result<Option<MeltSession>, StoreError> {
        dispatch_read!(self, melt_session(rc))
    }

    /// Records a melt's reveal once, in one transaction; a replay gets the stored signatures.
    pub async fn reveal(&self, reveal: NewReveal) -> Result<RevealOutcome, StoreError> {
        dispatch_write!(self, reveal(reveal))
    }

    /// The fresh coins of every revealed melt of `coin_pub`, by melt then coin index.
    pub async fn link(&self, coin_pub: EddsaPublicKey) -> Result<Vec<LinkRow>, StoreError> {
        dispatch_read!(self, link(coin_pub))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_util::{ShortHashCode, WireSalt};

    fn deposit(n: u8) -> CoinHistoryEntry {
        let a: Amount = "KUDOS:1".parse().unwrap();
        CoinHistoryEntry::Deposit {
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

    fn melt(n: u8, deposits_before: u32) -> MeltHistory {
        let a: Amount = "KUDOS:1".parse().unwrap();
        MeltHistory {
            deposits_before,
            entry: CoinHistoryEntry::Melt {
                amount_with_fee: a,
                melt_fee: a,
                rc: HashCode::from_bytes([n; 64]),
                coin_sig: EddsaSignature::from_bytes([n; 64]),
            },
        }
    }

    fn refund(n: u8) -> CoinHistoryEntry {
        let a: Amount = "KUDOS:1".parse().unwrap();
        CoinHistoryEntry::Refund {
            amount: a,
            refund_fee: a,
            merchant_pub: EddsaPublicKey::from_bytes([n; 32]),
            h_contract_terms: HashCode::from_bytes([n; 64]),
            rtransaction_id: u64::from(n),
            merchant_sig: EddsaSignature::from_bytes([n; 64]),
        }
    }

    #[test]
    fn melts_go_after_the_deposits_before_them() {
        let history = vec![deposit(1), deposit(2), refund(1)];
        let merged = merge_melts(history, vec![melt(7, 0), melt(8, 1), melt(9, 1)]);
        assert_eq!(
            merged,
            vec![
                melt(7, 0).entry,
                deposit(1),
                melt(8, 1).entry,
                melt(9, 1).entry,
                deposit(2),
                refund(1)
            ]
        );
        // A melt after every deposit, and no deposits at all.
        assert_eq!(
            merge_melts(vec![deposit(1)], vec![melt(7, 1)]),
            vec![deposit(1), melt(7, 1).entry]
        );
        assert_eq!(
            merge_melts(vec![refund(1)], vec![melt(7, 0)]),
            vec![melt(7, 0).entry, refund(1)]
        );
    }

    #[test]
    fn the_spends_only_grow_at_their_end() {
        // Seen: d1, m(after d1). Then d2 arrives: it lands after the melt, so the first two
        // entries are still the same two.
        let before = merge_melts(vec![deposit(1)], vec![melt(7, 1)]);
        let after = merge_melts(vec![deposit(1), deposit(2)], vec![melt(7, 1)]);
        assert_eq!(after[..2], before[..]);
        // And a melt after d2 lands after it.
        let later = merge_melts(vec![deposit(1), deposit(2)], vec![melt(7, 1), melt(8, 2)]);
        assert_eq!(later[..3], after[..]);
    }
}
