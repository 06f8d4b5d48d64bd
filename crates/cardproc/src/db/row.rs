//! The card processor's rows as domain types, the inputs of its writes, and the API views of
//! its rows. Both engines decode into these; a stored value that does not decode is
//! `StoreError::Corrupt` (the schema is ours: a broken invariant, never a client error).

use std::collections::BTreeMap;
use std::str::FromStr;

use cardcash_store::StoreError;
use cardcash_util::{Amount, Currency};

use crate::config::Role;
use crate::processing::{RefundTerms, effective};
use cardcash_api::cardproc::mac::MacKey;
use cardcash_api::cardproc::{
    DecimalAmount, FailureReason, IsoTime, Refund, RefundState, RefundType, Transaction,
    TransactionState,
};

/// A stored API user (the MAC users: terminals and readers such as C2EC).
///
/// Secrets are stored as the base64 the user holds: HMAC verification needs the key itself, so
/// it cannot be hashed (c2ec.md §3 notes the same contradiction in the original design).
/// Protect the database accordingly.
#[derive(Debug, Clone)]
pub struct ApiUserRow {
    /// `x-mac-userid`.
    pub id: u64,
    /// The MAC key.
    pub secret: MacKey,
    /// What the user may do.
    pub role: Role,
    /// The space the user belongs to.
    pub space_id: u64,
}

/// A stored transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    /// Id.
    pub id: u64,
    /// Space.
    pub space_id: u64,
    /// Stored state (see [`TransactionRow::view`] for what readers see).
    pub state: TransactionState,
    /// Requested amount (with the currency).
    pub amount: Amount,
    /// Captured amount.
    pub completed: Amount,
    /// Refunded amount.
    pub refunded: Amount,
    /// Merchant reference.
    pub merchant_reference: String,
    /// Terminal id.
    pub terminal_id: Option<String>,
    /// Free-form metadata.
    pub meta_data: BTreeMap<String, String>,
    /// Masked PAN.
    pub card_masked: Option<String>,
    /// Failure reason.
    pub failure_reason: Option<FailureReason>,
    /// Created.
    pub created_at: IsoTime,
    /// Authorized.
    pub authorized_at: Option<IsoTime>,
    /// Captured.
    pub completed_at: Option<IsoTime>,
    /// Failed.
    pub failed_at: Option<IsoTime>,
    /// Delayed finality due time.
    pub fulfill_at: Option<IsoTime>,
}

impl TransactionRow {
    /// The state a reader sees at `now` (delayed finality applied even if the background task
    /// has not yet persisted it).
    pub fn effective_state(&self, now: IsoTime) -> TransactionState {
        effective(self.state, self.fulfill_at, now).0
    }

    /// The API view at `now`.
    pub fn view(&self, now: IsoTime) -> Transaction {
        let (state, became_final_at) = effective(self.state, self.fulfill_at, now);
        let (completed, completed_at) = match became_final_at {
            Some(at) => (self.amount, Some(at)),
            None => (self.completed, self.completed_at),
        };
        Transaction {
            id: self.id,
            linked_space_id: self.space_id,
            state,
            currency: *self.amount.currency(),
            authorization_amount: DecimalAmount::from(self.amount),
            completed_amount: DecimalAmount::from(completed),
            refunded_amount: DecimalAmount::from(self.refunded),
            merchant_reference: self.merchant_reference.clone(),
            terminal_id: self.terminal_id.clone(),
            card_masked: self.card_masked.clone(),
            failure_reason: self.failure_reason,
            created_on: self.created_at,
            authorized_on: self.authorized_at,
            completed_on: completed_at,
            failed_on: self.failed_at,
            meta_data: self.meta_data.clone(),
        }
    }
}

/// A stored refund (refunds succeed synchronously, so there is no state column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    /// Id.
    pub id: u64,
    /// Space.
    pub space_id: u64,
    /// Idempotency key.
    pub external_id: String,
    /// Refunded transaction.
    pub transaction_id: u64,
    /// Amount (in the transaction's currency).
    pub amount: Amount,
    /// Type.
    pub refund_type: RefundType,
    /// Merchant reference.
    pub merchant_reference: Option<String>,
    /// Created (and succeeded).
    pub created_at: IsoTime,
}

impl RefundRow {
    /// What the refund was asked for, to compare a later request under its `externalId` with.
    pub fn terms(&self) -> RefundTerms<'_> {
        RefundTerms {
            transaction: self.transaction_id,
            amount: DecimalAmount::from(self.amount),
            refund_type: self.refund_type,
            merchant_reference: self.merchant_reference.as_deref(),
        }
    }

    /// The API view.
    pub fn view(&self) -> Refund {
        Refund {
            id: self.id,
            external_id: self.external_id.clone(),
            linked_space_id: self.space_id,
            transaction: self.transaction_id,
            amount: DecimalAmount::from(self.amount),
            currency: *self.amount.currency(),
            state: RefundState::Successful,
            refund_type: self.refund_type,
            merchant_reference: self.merchant_reference.clone(),
            created_on: self.created_at,
            succeeded_on: Some(self.created_at),
        }
    }
}

/// A transaction to create (`PENDING`).
#[derive(Debug, Clone)]
pub struct NewTransaction {
    /// Space.
    pub space_id: u64,
    /// Requested amount.
    pub amount: Amount,
    /// Merchant reference.
    pub merchant_reference: String,
    /// Terminal id.
    pub terminal_id: Option<String>,
    /// Metadata.
    pub meta_data: BTreeMap<String, String>,
    /// The API user creating it.
    pub created_by: u64,
    /// Now.
    pub created_at: IsoTime,
}

/// A refund to book, idempotent on `(space_id, external_id)`.
#[derive(Debug, Clone)]
pub struct NewRefund {
    /// Space.
    pub space_id: u64,
    /// Idempotency key.
    pub external_id: String,
    /// The transaction to refund.
    pub transaction_id: u64,
    /// Amount (in the transaction's currency, which the storage reads).
    pub amount: DecimalAmount,
    /// Type.
    pub refund_type: RefundType,
    /// Merchant reference.
    pub merchant_reference: Option<String>,
    /// The API user.
    pub created_by: u64,
    /// Now: the refund's time, and the clock against which due delayed finality is persisted.
    pub created_at: IsoTime,
}

// Column codecs shared by both engines.

/// An id as a SQL `BIGINT`; `None` for ids beyond `i64::MAX`, which cannot exist.
pub(super) fn id_to_sql(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// A stored id (ids are positive).
pub(super) fn id_from_sql(what: &str, id: i64) -> Result<u64, StoreError> {
    u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("{what} {id} is negative")))
}

/// A stored enum name or other parsed text.
pub(super) fn parse_stored<T: FromStr>(what: &str, text: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what} {text:?} does not decode")))
}

/// A stored currency.
pub(super) fn currency_from_sql(text: &str) -> Result<Currency, StoreError> {
    Currency::new(text).map_err(|_| StoreError::Corrupt(format!("currency {text:?}")))
}

/// Metadata as stored: a JSON object of strings (the map's order is the key order).
pub(super) fn meta_to_sql(meta: &BTreeMap<String, String>) -> Result<String, StoreError> {
    serde_json::to_string(meta).map_err(|e| StoreError::Internal(format!("metaData: {e}")))
}

/// Stored metadata.
pub(super) fn meta_from_sql(text: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("meta_data: {e}")))
}

/// A stored MAC secret.
pub(super) fn secret_from_sql(text: &str) -> Result<MacKey, StoreError> {
    MacKey::from_base64(text).map_err(|e| StoreError::Corrupt(format!("api_user secret: {e}")))
}
