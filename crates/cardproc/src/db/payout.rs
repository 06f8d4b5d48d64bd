//! Payout rows and the inputs of their writes (the SQL is in `sqlite.rs` and `postgres.rs`,
//! section "payouts"). A payout covers a set of captured transactions and refunds (their
//! `payout_id`, set once, inside the transaction that makes the payout up), so every captured
//! unit is paid out exactly once and every refund is netted exactly once.
//!
//! Making a payout up is one database transaction on both engines (the single writer on SQLite;
//! a transaction-scoped advisory lock on PostgreSQL, so two processes sharing the database
//! cannot make up payouts at the same time):
//! 1. persist due delayed finality (as the finality sweep does);
//! 2. if no captured transaction of the currency is due (captured at or before `due_before`)
//!    and unpaid, stop: nothing is made up (refunds alone wait for the next capture);
//! 3. insert the payout, assign it the due unpaid captures, then every refund not yet netted
//!    whose transaction is covered by this or an earlier payout;
//! 4. sum what it covers and settle ([`crate::payout::settle`]): the amount to wire, or the
//!    negative balance carried to the next payout (when refunds, fees and the previous debt
//!    exceed the captures).

use cardcash_store::StoreError;
use cardcash_store::columns::amount_from_columns;
use cardcash_util::{Amount, Currency, ShortHashCode};

use crate::payout::{Settlement, settle};
use cardcash_api::cardproc::{IsoTime, Payout, PayoutState};

/// A stored payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRow {
    /// Id (increasing).
    pub id: u64,
    /// Space.
    pub space_id: u64,
    /// See [`PayoutState`].
    pub state: PayoutState,
    /// Captured amounts covered.
    pub captured: Amount,
    /// Refunds covered.
    pub refunded: Amount,
    /// Fees kept.
    pub fees: Amount,
    /// Negative balance carried in.
    pub carried: Amount,
    /// Wired (or to be wired).
    pub amount: Amount,
    /// Negative balance carried out.
    pub debt: Amount,
    /// Transactions covered.
    pub transactions: u64,
    /// Refunds covered.
    pub refunds: u64,
    /// The bank's idempotency key for this payout's transfer.
    pub request_uid: ShortHashCode,
    /// When it was made up.
    pub created_at: IsoTime,
    /// When the bank booked it.
    pub paid_at: Option<IsoTime>,
    /// The bank's transaction row id.
    pub bank_row_id: Option<u64>,
    /// Failed attempts to pay it.
    pub attempts: u32,
    /// The last failure, for operators.
    pub last_error: Option<String>,
}

impl PayoutRow {
    /// The transfer subject at the bank (also what the merchant sees on its statement).
    pub fn subject(&self) -> String {
        subject(self.id)
    }

    /// The API view.
    pub fn view(&self) -> Payout {
        Payout {
            id: self.id,
            linked_space_id: self.space_id,
            state: self.state,
            currency: *self.amount.currency(),
            amount: self.amount.into(),
            captured_amount: self.captured.into(),
            refunded_amount: self.refunded.into(),
            fee_amount: self.fees.into(),
            carried_amount: self.carried.into(),
            debt_amount: self.debt.into(),
            transaction_count: self.transactions,
            refund_count: self.refunds,
            created_on: self.created_at,
            paid_on: self.paid_at,
            bank_transaction_id: self.bank_row_id,
            subject: self.subject(),
        }
    }
}

/// The transfer subject of payout `id`.
pub fn subject(id: u64) -> String {
    format!("cardproc payout {id}")
}

/// What [`super::CardprocStore::create_payout`] needs.
#[derive(Debug, Clone)]
pub struct NewPayout {
    /// The space paid out.
    pub space_id: u64,
    /// Only transactions in this currency (the bank's) are covered.
    pub currency: Currency,
    /// Captures at or before this time are due.
    pub due_before: IsoTime,
    /// Now (finality, `created_at`).
    pub now: IsoTime,
    /// Fee per captured transaction (in `currency`; zero: none).
    pub fee: Amount,
    /// A fresh random idempotency key for the bank transfer.
    pub request_uid: ShortHashCode,
}

/// What the covered rows sum to (read inside the making-up transaction).
#[derive(Debug, Clone, Copy)]
pub(super) struct Covered {
    pub transactions: i64,
    pub captured: Amount,
    pub refunded: Amount,
}

/// The settled amounts of a payout being made up.
pub(super) struct Settled {
    pub fees: Amount,
    pub settlement: Settlement,
}

/// Applies the fee and [`settle`] to what a payout covers.
pub(super) fn settle_covered(
    new: &NewPayout,
    covered: &Covered,
    carried: &Amount,
) -> Result<Settled, StoreError> {
    let count = u64::try_from(covered.transactions)
        .map_err(|_| StoreError::Corrupt("negative transaction count".into()))?;
    let fees = new
        .fee
        .checked_mul(count)
        .map_err(|e| StoreError::Internal(format!("payout fees: {e}")))?;
    let settlement = settle(&covered.captured, &covered.refunded, &fees, carried)
        .map_err(|e| StoreError::Internal(format!("payout settlement: {e}")))?;
    Ok(Settled { fees, settlement })
}

/// An amount from `SUM(…_val)` and `SUM(…_frac)` (the fractions summed may exceed one unit).
pub(super) fn amount_from_sums(
    currency: Currency,
    value: i64,
    fraction: i64,
) -> Result<Amount, StoreError> {
    let base = i64::from(cardcash_util::amount::FRAC_BASE);
    let value = value
        .checked_add(fraction.div_euclid(base))
        .ok_or_else(|| StoreError::Corrupt(format!("sum {value} overflows")))?;
    amount_from_columns(currency, value, fraction.rem_euclid(base))
}

/// The state a payout is made up in.
pub(super) fn initial_state(settlement: &Settlement) -> PayoutState {
    if settlement.amount.is_zero() {
        PayoutState::Netted
    } else {
        PayoutState::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_carry_fractions() {
        let chf = Currency::new("CHF").unwrap();
        let a = amount_from_sums(chf, 3, 250_000_000).unwrap();
        assert_eq!(a.to_string(), "CHF:5.5");
        assert!(amount_from_sums(chf, -1, 0).is_err());
    }
}
