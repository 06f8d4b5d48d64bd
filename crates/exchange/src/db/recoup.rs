//! Storage of recoups (`migrations/*/0003_recoup.sql`; `sqlite/recoup.rs`, `postgres/recoup.rs`):
//! a coin of a revoked denomination pays ALL that is left of it back, in ONE transaction that
//! locks the coin, then what it credits (the withdrawal's reserve; for a coin made by a refresh,
//! the melted coin — both coins locked in key order, as deposits lock coins). The decisions (coin known
//! with another denomination, no such withdrawal, nothing left, replay) are made inside that
//! transaction on the locked rows, so a deposit or another recoup racing it sees the coin
//! before or after, never in between: the coin never pays out more than its value.
//!
//! # Money rules held here
//! - A recoup moves the coin's remaining value `v > 0` to the reserve: coin −v, reserve +v, and
//!   one `recoups` row of v, together. A coin with nothing left pays nothing: if it was
//!   recouped before it is a replay (the same answer), otherwise it is refused (spent).
//! - The reserve's expiration moves to at least `reserve_expiration` (it has money again, and
//!   the closer must give it the closing delay), as the C exchange does.
//! - A recoup-refresh moves the fresh coin's remaining value `v > 0` to the old coin: fresh
//!   −v, old +v, one `recoup_refreshes` row of v; the same replay and refusal rules. The old coin
//!   is then a "zombie": it may be melted even after its denomination's deposit expiry.
//! - A coin first seen by its recoup becomes known with its denomination's value, then is
//!   debited at once (the audit sees value − recoups = 0).

use cardcash_store::StoreError;
use cardcash_util::{Amount, EddsaPublicKey, EddsaSignature, HashCode, Timestamp};

use super::ExchangeStore;
use super::postgres::recoup as postgres;
use super::sqlite::recoup as sqlite;
use cardcash_store::Database;

/// A recoup to record (its signatures and denomination checked already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecoup {
    pub coin_pub: EddsaPublicKey,
    /// The coin's (revoked) denomination.
    pub denom_serial: i64,
    /// The unblinded denomination signature, stored with the coin if it is new here.
    pub denom_sig: Vec<u8>,
    /// The denomination's value (the coin's remaining value if it is new here).
    pub coin_value: Amount,
    /// The envelope hash the exchange recomputed from the coin's key and blinding secret.
    pub h_blind_ev: HashCode,
    /// The coin's signature over the recoup (purpose 1203).
    pub coin_sig: EddsaSignature,
    /// The coin's blinding key secret (shown in the coin's history).
    pub coin_blind: [u8; 32],
    pub now: Timestamp,
    /// The credited reserve expires no earlier than this.
    pub reserve_expiration: Timestamp,
}

/// The outcome of [`ExchangeStore::recoup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoupOutcome {
    /// `amount` (all that was left of the coin) was credited to `reserve_pub`.
    Done {
        reserve_pub: EddsaPublicKey,
        amount: Amount,
    },
    /// Nothing is left of the coin and it was recouped before: the same answer, no money.
    Replay { reserve_pub: EddsaPublicKey },
    /// No withdrawal of this envelope for the coin's denomination.
    WithdrawalNotFound,
    /// The coin is known with another denomination.
    CoinConflict,
    /// Nothing is left of the coin (spent) and it was never recouped.
    InsufficientFunds,
}

/// A recoup-refresh to record (its signatures and denomination checked already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecoupRefresh {
    /// The fresh coin.
    pub coin_pub: EddsaPublicKey,
    /// The fresh coin's (revoked) denomination.
    pub denom_serial: i64,
    /// The unblinded denomination signature, stored with the coin if it is new here.
    pub denom_sig: Vec<u8>,
    /// The denomination's value (the coin's remaining value if it is new here).
    pub coin_value: Amount,
    /// The envelope hash the exchange recomputed from the coin's key and blinding secret.
    pub h_coin_ev: HashCode,
    /// The coin's signature over the recoup-refresh (purpose 1206).
    pub coin_sig: EddsaSignature,
    /// The coin's blinding key secret (shown in the coin's history).
    pub coin_blind: [u8; 32],
    pub now: Timestamp,
}

/// The outcome of [`ExchangeStore::recoup_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoupRefreshOutcome {
    /// `amount` (all that was left of the fresh coin) was credited to `old_coin_pub`.
    Done {
        old_coin_pub: EddsaPublicKey,
        amount: Amount,
    },
    /// Nothing is left of the coin and it was recouped before: the same answer, no money.
    Replay { old_coin_pub: EddsaPublicKey },
    /// No reveal signed this envelope for the coin's denomination.
    MeltNotFound,
    /// The coin is known with another denomination.
    CoinConflict,
    /// Nothing is left of the coin (spent) and it was never recouped.
    InsufficientFunds,
}

/// A recoup as a coin's or reserve's history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoupRow {
    pub coin_pub: EddsaPublicKey,
    pub reserve_pub: EddsaPublicKey,
    pub amount: Amount,
    pub timestamp: Timestamp,
    pub coin_sig: EddsaSignature,
    pub coin_blind: [u8; 32],
}

/// What the audit needs of recoups (read in the audit's snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoupSums {
    /// Σ recouped into reserves.
    pub to_reserves: Amount,
    /// Σ recouped from fresh coins into the coins melted for them (it moves value between
    /// coins: the fresh coins' side and the old coins' side of the per-coin equation).
    pub to_coins: Amount,
}

impl ExchangeStore {
    /// Recoups a withdrawn coin into its reserve, in one transaction (see the module docs).
    pub async fn recoup(&self, recoup: NewRecoup) -> Result<RecoupOutcome, StoreError> {
        dispatch_write!(self, recoup(recoup))
    }

    /// Recoups a coin made by a refresh into the coin melted for it, in one transaction (see
    /// the module docs).
    pub async fn recoup_refresh(
        &self,
        recoup: NewRecoupRefresh,
    ) -> Result<RecoupRefreshOutcome, StoreError> {
        dispatch_write!(self, recoup_refresh(recoup))
    }
}
