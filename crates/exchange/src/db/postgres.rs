//! The exchange's storage on PostgreSQL: not written yet (the SQLite side is complete). Every
//! operation answers a configuration error until `migrations/postgres/0001_init.sql` has its
//! functions and this file its typed sqlx calls.

#![expect(
    unused_variables,
    reason = "placeholder until the PostgreSQL side lands"
)]

use cardcash_store::{PgDb, StoreError};
use cardcash_util::{
    Amount, Currency, EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, ShortHashCode,
    Timestamp,
};

use super::*;

fn unsupported<T>() -> Result<T, StoreError> {
    Err(StoreError::Config(
        "the exchange does not run on PostgreSQL yet".into(),
    ))
}

pub(super) async fn key_material(
    _db: &PgDb,
    _currency: Currency,
) -> Result<KeyMaterial, StoreError> {
    unsupported()
}

pub(super) async fn insert_denomination(
    _db: &PgDb,
    _currency: Currency,
    row: DenominationRow,
) -> Result<Stored, StoreError> {
    unsupported()
}

pub(super) async fn insert_signkey(
    _db: &PgDb,
    _currency: Currency,
    row: SignkeyRow,
) -> Result<Stored, StoreError> {
    unsupported()
}

pub(super) async fn revoke_denomination(
    _db: &PgDb,
    _currency: Currency,
    h_denom_pub: HashCode,
    revocation: EddsaSignature,
) -> Result<bool, StoreError> {
    unsupported()
}

pub(super) async fn revoke_signkey(
    _db: &PgDb,
    _currency: Currency,
    exchange_pub: EddsaPublicKey,
    revocation: EddsaSignature,
) -> Result<bool, StoreError> {
    unsupported()
}

pub(super) async fn enable_wire_account(
    _db: &PgDb,
    _currency: Currency,
    row: WireAccountRow,
) -> Result<Stored, StoreError> {
    unsupported()
}

pub(super) async fn disable_wire_account(
    _db: &PgDb,
    _currency: Currency,
    payto_uri: String,
    master_sig_del: EddsaSignature,
    validity_end: Timestamp,
) -> Result<Option<Stored>, StoreError> {
    unsupported()
}

pub(super) async fn insert_wire_fee(
    _db: &PgDb,
    _currency: Currency,
    row: WireFeeRow,
) -> Result<Stored, StoreError> {
    unsupported()
}

pub(super) async fn insert_global_fee(
    _db: &PgDb,
    _currency: Currency,
    row: GlobalFeeRow,
) -> Result<Stored, StoreError> {
    unsupported()
}

pub(super) async fn wirewatch_progress(
    _db: &PgDb,
    _currency: Currency,
    account: String,
) -> Result<Option<u64>, StoreError> {
    unsupported()
}

pub(super) async fn credit_reserves(
    _db: &PgDb,
    _currency: Currency,
    account: String,
    transfers: Vec<IncomingTransfer>,
    last_row: u64,
    reserve_lifetime: RelativeTime,
) -> Result<CreditReport, StoreError> {
    unsupported()
}

pub(super) async fn reserve(
    _db: &PgDb,
    _currency: Currency,
    reserve_pub: EddsaPublicKey,
) -> Result<Option<ReserveRow>, StoreError> {
    unsupported()
}

pub(super) async fn reserve_history(
    _db: &PgDb,
    _currency: Currency,
    reserve_pub: EddsaPublicKey,
) -> Result<Vec<ReserveHistoryEntry>, StoreError> {
    unsupported()
}

pub(super) async fn stored_withdrawals(
    _db: &PgDb,
    _currency: Currency,
    hashes: Vec<HashCode>,
) -> Result<Vec<StoredWithdrawal>, StoreError> {
    unsupported()
}

pub(super) async fn batch_withdraw(
    _db: &PgDb,
    _currency: Currency,
    reserve_pub: EddsaPublicKey,
    planchets: Vec<NewWithdrawal>,
    now: Timestamp,
) -> Result<WithdrawOutcome, StoreError> {
    unsupported()
}

pub(super) async fn batch_deposit(
    _db: &PgDb,
    _currency: Currency,
    d: NewBatchDeposit,
) -> Result<DepositOutcome, StoreError> {
    unsupported()
}

pub(super) async fn coin(
    _db: &PgDb,
    _currency: Currency,
    coin_pub: EddsaPublicKey,
) -> Result<Option<CoinRow>, StoreError> {
    unsupported()
}

pub(super) async fn refund(
    _db: &PgDb,
    _currency: Currency,
    r: NewRefund,
    refund_fee: Amount,
) -> Result<RefundOutcome, StoreError> {
    unsupported()
}

pub(super) async fn due_aggregates(
    _db: &PgDb,
    _currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<DueAggregate>, StoreError> {
    unsupported()
}

pub(super) async fn next_wire_deadline(
    _db: &PgDb,
    _currency: Currency,
) -> Result<Option<Timestamp>, StoreError> {
    unsupported()
}

pub(super) async fn record_wire_out(
    _db: &PgDb,
    _currency: Currency,
    wire_out: NewWireOut,
) -> Result<Option<WireOutRow>, StoreError> {
    unsupported()
}

pub(super) async fn pending_wire_outs(
    _db: &PgDb,
    _currency: Currency,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<WireOutRow>, StoreError> {
    unsupported()
}

pub(super) async fn wire_out_done(
    _db: &PgDb,
    _currency: Currency,
    serial: i64,
    gateway_row_id: u64,
) -> Result<(), StoreError> {
    unsupported()
}

pub(super) async fn wire_out_failed(
    _db: &PgDb,
    _currency: Currency,
    serial: i64,
    next_attempt: Timestamp,
) -> Result<(), StoreError> {
    unsupported()
}

pub(super) async fn wire_out(
    _db: &PgDb,
    _currency: Currency,
    wtid: ShortHashCode,
) -> Result<Option<(WireOutRow, Vec<AggregatedDeposit>)>, StoreError> {
    unsupported()
}

pub(super) async fn deposit_tracking(
    _db: &PgDb,
    _currency: Currency,
    merchant_pub: EddsaPublicKey,
    h_contract_terms: HashCode,
    coin_pub: EddsaPublicKey,
) -> Result<Option<DepositTrackingRow>, StoreError> {
    unsupported()
}

pub(super) async fn audit_sums(_db: &PgDb, _currency: Currency) -> Result<AuditSums, StoreError> {
    unsupported()
}
