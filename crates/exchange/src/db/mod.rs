//! All of the exchange's SQL behind one typed storage struct, [`ExchangeStore`], over
//! `cardcash_store::Database`. Each operation is implemented once per engine: `sqlite.rs` (sync
//! functions: reads inline, each write ONE closure on the store's writer thread, which runs
//! alone and group-commits) and `postgres.rs` (typed sqlx; each money movement ONE `CALL` of a
//! PL/pgSQL procedure of `migrations/postgres/0001_init.sql`, which locks what it decides on,
//! commits, then notifies; reads single statements). Rows come out as domain types; decisions
//! (balance checks, double-spending, refund limits) are made inside the same transaction that
//! applies them. No transaction and no driver type leaves this module. Reads of several
//! statements see one snapshot on both engines.
//!
//! # Money rules held here
//! - A reserve's balance never goes below zero (`CHECK` and the debit's condition; on
//!   PostgreSQL the reserve row is locked first); credits are unique per (account, gateway
//!   row), so a transfer is credited exactly once.
//! - An incoming transfer that funds no reserve is recorded for bouncing in the same
//!   transaction, keyed like credits, with the request of its transfer back fixed then
//!   (`request_uid` and WTID derived from account and gateway row). What is kept (the closing
//!   fee, at most the amount) and sent back is decided once, before the first attempt, so
//!   every attempt is the same request and the gateway executes it once. Per transfer,
//!   closing fee + sent back = amount.
//! - A withdrawal is keyed by the envelope hash: a replay returns the stored signature and
//!   charges nothing. A Clause-Schnorr nonce signs one planchet per denomination.
//! - A coin's remaining value never goes below zero; a deposit of a coin is keyed by its
//!   signature (one batch per signature), so a replay changes nothing and a different deposit
//!   needs value left. On PostgreSQL the batch's coins are locked in key order first.
//! - Refunds of one deposited coin never exceed what the coin contributed; a refund after the
//!   deposit was settled is refused (on PostgreSQL both lock the deposit's batch row).
//! - Settlement (the aggregator): a batch past its wire deadline is owed
//!   `Σ (contribution − refunds − deposit fee, at least 0)` over its coins. A batch owed
//!   nothing (fully refunded, or contributions no larger than their deposit fees) is settled
//!   without a transfer (`done`, no WTID): it is never due again and refunds of it are refused.
//!   A merchant account whose batches owe more than the wire fee is wired in one transfer
//!   that settles them. One whose due total is positive but not above the wire fee keeps
//!   waiting, as with the C exchange's aggregator: its batches are marked `waiting` and are no
//!   longer due by themselves (neither in `due_aggregates` nor in `next_wire_deadline`), so
//!   they can neither fill the aggregator's page nor hold its next deadline in the past; they
//!   join the account's aggregate again when another of its deposits becomes due, and a
//!   refund of a waiting batch makes it due again (it may now be owed nothing). A lower wire
//!   fee does not wake them (neither does it in the C exchange).
//!
//! # Refunds never create money (our deviation from the C exchange)
//! A refund gives the coin its amount minus a refund fee back. The C exchange
//! (`exchange_do_refund`) charges every refund the denomination's refund fee and, when a
//! refund completes the refunds of a deposit, also gives the deposit fee back. When a
//! denomination's deposit fee is larger than its refund fee, a fully refunded coin then ends
//! above what it paid (a coin of 5 with deposit fee 0.2 and refund fee 0.05, deposited and
//! refunded in full: 5 − 0.05 + 0.2 = 5.15), and a merchant and a wallet together could
//! repeat that. Here the refund that completes a deposit's refunds is instead charged
//! `refund fee − min(refund fee, deposit fee)`: up to the deposit fee of its refund fee is
//! waived, and nothing more is given back. Every other refund is charged the refund fee. The
//! fee charged is what `refunds.refund_fee_*` stores and the audit counts, so per deposit the
//! coin gets back `Σ refunds − Σ fees charged ≤ contribution`, and a coin's remaining value is
//! `value − Σ deposits + Σ (refund − fee charged)`. Whenever refund fee ≥ deposit fee (the
//! usual configuration) both rules credit the coin the same. The refund's request check is
//! unchanged (a refund smaller than the denomination's refund fee is refused), and the coin
//! history shows the denomination's refund fee with each refund, as the protocol (and the C
//! clients' check against `/keys`) expects.
//!
//! # Round trips per request
//!
//! PostgreSQL: a write that lost a race it could not lock against (two requests seeing a coin
//! or planchet for the first time at once) runs once more; that is the only extra trip.
//!
//! | request | PostgreSQL | SQLite |
//! |---|---|---|
//! | `/keys` (rebuilt after a management change, otherwise cached) | 5 `SELECT`s at once (one per table of key material, on parallel connections) | 1 inline read |
//! | management upload (denomination, signing key) | 1 `INSERT … ON CONFLICT` (+ 1 `SELECT` for a replay) + 1 notification | 1 writer closure |
//! | management upload (account, fees) | 1 transaction: `BEGIN`, advisory lock, `SELECT`, write, `COMMIT` + 1 notification | 1 writer closure |
//! | revocation | 1 `UPDATE` + 1 notification | 1 writer closure |
//! | reserve status | 1 `SELECT` | 1 inline read |
//! | reserve history | 1 `SELECT` (credits, withdrawals, closings, recoups) | 1 inline read |
//! | batch withdraw | 1 read (replays, balance before signing) + 1 `CALL exchange_batch_withdraw` | 1 inline read + 1 writer closure |
//! | batch deposit | 1 `CALL exchange_batch_deposit` | 1 writer closure |
//! | coin history (a 409's proof) | 1 `SELECT` (deposits, refunds, melts, recoups) | 1 inline read |
//! | melt | 1 `CALL exchange_melt` | 1 writer closure |
//! | reveal | 1 `SELECT` (the melt, its reveal if any) + 1 `CALL exchange_refresh_reveal` | 1 inline read + 1 writer closure |
//! | link | 1 `SELECT` | 1 inline read |
//! | refund | 1 `CALL exchange_refund` | 1 writer closure |
//! | recoup, recoup-refresh (see `recoup`) | 1 `CALL exchange_recoup` / `exchange_recoup_refresh` (+ the reserve's notification) | 1 writer closure |
//! | wirewatch page | 1 `CALL exchange_credit_reserves` (all rows of the page and the progress, bounces recorded with their request) | 1 writer closure |
//! | bounce worker | 1 `SELECT` (pending) + per bounce 1 `UPDATE` (the decision) + 1 `UPDATE` per attempt + 1 `SELECT` (next attempt) | 2 inline reads + 1 writer closure per decision and per attempt |
//! | aggregation round | 1 `SELECT` (due aggregates) + 1 `CALL exchange_record_wire_out` per aggregate | 1 inline read + 1 writer closure per aggregate |
//! | transfer worker | 1 `SELECT` (pending) + 1 `UPDATE` per attempt (+ 1 `SELECT`, the next attempt, when nothing was due) | 1 inline read + 1 writer closure per attempt (+ 1 inline read) |
//! | closer pass (see `closing`) | 1 `SELECT` (expired reserves with their origin) + per reserve 1 `SELECT` (closing fee) and 1 `CALL exchange_close_reserve` (or 1 upsert when it must wait) + 1 `SELECT` (next wake-up) | 2 inline reads + per reserve 1 inline read and 1 writer closure |
//! | closing transfer worker | 1 `SELECT` (pending) + 1 `UPDATE` per attempt + 1 `SELECT` (next attempt) | 2 inline reads + 1 writer closure per attempt |
//! | deposit tracking, `/transfers/$WTID` | 1 `SELECT` | 1 inline read |
//! | audit | 1 `SELECT` (one snapshot) | 1 inline read |

mod postgres;
mod sqlite;

use cardcash_store::{Database, DbConfig, Engine, Notifier, Schema, StoreError};
use cardcash_util::{
    Amount, Currency, EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, ShortHashCode,
    Timestamp, WireSalt,
};

use crate::keys::store::DenominationPublic;

/// The service name: PostgreSQL schema and notification channel (`cardcash_exchange`).
pub const SERVICE: &str = "exchange";

/// The exchange's migrations for both engines.
pub static SCHEMA: Schema = cardcash_store::schema![1 => "0001_init.sql", 2 => "0002_refresh.sql", 3 => "0003_recoup.sql", 4 => "0004_closing.sql", 5 => "0005_legacy.sql"];

/// Notification topic: a reserve's balance changed (key: reserve public key, base32).
pub const TOPIC_RESERVE: &str = "reserve";
/// Notification topic: key material changed (key: empty): `/keys` is rebuilt.
pub const TOPIC_KEYS: &str = "keys";
/// Notification topic: a deposit was recorded or a refund changed one (key: empty); the
/// aggregator recomputes its next wake-up.
pub const TOPIC_DEPOSIT: &str = "deposit";
/// Notification topic: a wire transfer to a merchant is due (key: empty).
pub const TOPIC_WIRE_OUT: &str = "wire_out";
/// Notification topic: an incoming transfer was recorded for bouncing (key: empty); the bounce
/// worker sends it back.
pub const TOPIC_BOUNCE: &str = "bounce";

/// Opens (and migrates) the exchange's database at `url` (`sqlite:…` or `postgres://…`).
pub async fn connect(url: &str) -> Result<Database, StoreError> {
    Database::connect(
        &DbConfig {
            url: url.to_owned(),
            service: SERVICE,
        },
        &SCHEMA,
    )
    .await
}

// ---------------------------------------------------------------- rows: key material

/// A denomination signed by the master key.
#[derive(Debug, Clone, PartialEq)]
pub struct DenominationRow {
    /// Internal id (foreign key of withdrawals and coins).
    pub serial: i64,
    pub h_denom_pub: HashCode,
    pub public: DenominationPublic,
    pub section: String,
    pub value: Amount,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub fee_refresh: Amount,
    pub fee_refund: Amount,
    pub stamp_start: Timestamp,
    pub stamp_expire_withdraw: Timestamp,
    pub stamp_expire_deposit: Timestamp,
    pub stamp_expire_legal: Timestamp,
    pub master_sig: EddsaSignature,
    /// The master key's revocation signature, once revoked.
    pub revocation: Option<EddsaSignature>,
}

/// An online signing key signed by the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignkeyRow {
    pub exchange_pub: EddsaPublicKey,
    pub stamp_start: Timestamp,
    pub stamp_expire: Timestamp,
    pub stamp_end: Timestamp,
    pub master_sig: EddsaSignature,
    pub revocation: Option<EddsaSignature>,
}

/// A bank account of the exchange, as enabled (and possibly disabled) by the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireAccountRow {
    /// The full payto URI as signed.
    pub payto_uri: String,
    pub conversion_url: Option<String>,
    /// JSON arrays, stored as received (their hashes are signed).
    pub debit_restrictions: String,
    pub credit_restrictions: String,
    pub bank_label: Option<String>,
    pub priority: i64,
    pub master_sig_wire: EddsaSignature,
    /// The v12–14 layout of the account signature (purpose 1030 over the payto hash), for the
    /// legacy face's `/wire`; `None` until the offline key uploaded one.
    pub master_sig_wire_v12: Option<EddsaSignature>,
    pub master_sig_add: EddsaSignature,
    pub validity_start: Timestamp,
    pub master_sig_del: Option<EddsaSignature>,
    pub validity_end: Option<Timestamp>,
    pub is_active: bool,
}

/// Wire and closing fees of one wire method for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFeeRow {
    pub wire_method: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub wire_fee: Amount,
    pub closing_fee: Amount,
    pub master_sig: EddsaSignature,
}

/// Global fees for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalFeeRow {
    pub start: Timestamp,
    pub end: Timestamp,
    pub history_fee: Amount,
    pub account_fee: Amount,
    pub purse_fee: Amount,
    pub purse_timeout: RelativeTime,
    pub history_expiration: RelativeTime,
    pub purse_account_limit: u32,
    pub master_sig: EddsaSignature,
}

/// Everything `/keys` is built from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyMaterial {
    pub denominations: Vec<DenominationRow>,
    pub signkeys: Vec<SignkeyRow>,
    pub accounts: Vec<WireAccountRow>,
    pub wire_fees: Vec<WireFeeRow>,
    pub global_fees: Vec<GlobalFeeRow>,
}

/// The outcome of storing something the master key signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// New.
    Inserted,
    /// The same thing was stored before (a replayed upload).
    AlreadyKnown,
    /// Something different is stored for the same key (or period, or a later change).
    Conflict,
}

impl Stored {
    /// What an upload is when something is stored for its key (or period) already: the same
    /// thing (a replay), or a conflict.
    fn existing(same: bool) -> Self {
        if same {
            Self::AlreadyKnown
        } else {
            Self::Conflict
        }
    }

    /// What an upload of a fee for a period is when stored fees' periods overlap it: a replay
    /// of the one fee it overlaps, or a conflict; `None` when none overlaps (it is new).
    fn overlapping<T>(stored: &[T], same: impl FnOnce(&T) -> bool) -> Option<Self> {
        match stored {
            [] => None,
            [only] => Some(Self::existing(same(only))),
            _ => Some(Self::Conflict),
        }
    }
}

// ---------------------------------------------------------------- rows: reserves

/// A reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRow {
    pub reserve_pub: EddsaPublicKey,
    pub balance: Amount,
    /// Everything ever credited.
    pub total_in: Amount,
    pub created: Timestamp,
    pub last_activity: Timestamp,
    pub expiration: Timestamp,
}

/// One incoming wire transfer, as wirewatch read it from a Wire Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTransfer {
    /// The gateway's row id (unique per account).
    pub wire_reference: u64,
    pub amount: Amount,
    pub debit_payto: String,
    pub execution_date: Timestamp,
    /// The reserve it funds, or (`Err`) what it is instead when it funds no reserve: the
    /// transfer is recorded for bouncing with that text as its subject.
    pub reserve_pub: Result<EddsaPublicKey, String>,
}

/// What [`ExchangeStore::credit_reserves`] did with a page of transfers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditReport {
    /// Reserves newly credited (one entry per transfer).
    pub credited: Vec<EddsaPublicKey>,
    /// Transfers recorded for bouncing.
    pub bounced: u32,
    /// Transfers seen before (a replayed page after a crash).
    pub duplicates: u32,
}

/// The exchange's queues of outgoing transfers, each sent by its worker and retried until the
/// gateway takes it: bounced incoming transfers, transfers to merchants, closed reserves sent
/// back. One function per step serves all three on each engine (`next_attempt`,
/// `transfer_done`, `transfer_failed`), with the queue's own statements.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outgoing {
    Bounces,
    WireOuts,
    Closings,
}

/// An incoming transfer that funds no reserve, recorded for sending back (`wire_in_bounced`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceRow {
    pub serial: i64,
    /// The account that received it: the transfer back goes through its Wire Gateway.
    pub account_section: String,
    pub wire_reference: u64,
    pub amount: Amount,
    /// Who sent it: where it goes back to (a bank account, or C2EC's card transaction).
    pub debit_payto: String,
    pub subject: String,
    pub execution_date: Timestamp,
    /// The Wire Gateway's idempotency key of the transfer back ([`bounce_request_uid`]).
    pub request_uid: HashCode,
    /// The WTID the transfer back names ([`bounce_wtid`]).
    pub wtid: ShortHashCode,
    /// What is kept and sent back, once decided (before the first attempt).
    pub decision: Option<BounceDecision>,
    /// The gateway's row of the transfer back, once it accepted it.
    pub gateway_row_id: Option<u64>,
    /// Sent back, or kept whole as the closing fee: nothing left to do.
    pub done: bool,
    /// Failed attempts so far (the backoff).
    pub failures: u32,
}

/// What happens to a bounced transfer, decided once before the first attempt: every attempt
/// is then the same request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceDecision {
    /// Kept by the exchange: the closing fee of the account's wire method, at most the amount.
    pub closing_fee: Amount,
    /// Sent back: the amount minus the closing fee (zero: nothing is sent).
    pub returned: Amount,
    /// The exchange base URL the transfer back names (fixed with the rest of the request).
    pub exchange_base_url: String,
}

/// The Wire Gateway `request_uid` of sending back the transfer `wire_reference` that `account`
/// received: fixed by what it bounces, so a retry (after a crash, by another exchange process
/// on the same database) is the same request, which the gateway executes once.
pub fn bounce_request_uid(account: &str, wire_reference: u64) -> HashCode {
    let mut message = b"cardcash-exchange bounce\0".to_vec();
    message.extend_from_slice(account.as_bytes());
    message.push(0);
    message.extend_from_slice(&wire_reference.to_be_bytes());
    cardcash_crypto::sha512(&message)
}

/// The WTID of the transfer back of [`bounce_request_uid`] (the gateway puts it in the
/// transfer's subject; derived, so it is as fixed as the request).
pub fn bounce_wtid(request_uid: &HashCode) -> ShortHashCode {
    cardcash_crypto::hash::sha512_short(request_uid.as_bytes())
}

/// One entry of a reserve's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveHistoryEntry {
    Credit {
        amount: Amount,
        debit_payto: String,
        wire_reference: u64,
        execution_date: Timestamp,
    },
    Withdraw {
        amount_with_fee: Amount,
        withdraw_fee: Amount,
        h_denom_pub: HashCode,
        h_blind_ev: HashCode,
        reserve_sig: EddsaSignature,
    },
    /// A withdrawn coin of a revoked denomination paid its remaining value back.
    Recoup {
        amount: Amount,
        timestamp: Timestamp,
        coin_pub: EddsaPublicKey,
    },
    /// The reserve was closed (see `closing`): `amount` is what it took from the reserve
    /// (closing fee included), sent back to `receiver_payto` minus the closing fee.
    Closing {
        amount: Amount,
        closing_fee: Amount,
        execution_date: Timestamp,
        receiver_payto: String,
        wtid: ShortHashCode,
    },
}

// ---------------------------------------------------------------- rows: withdraw

/// A planchet to record (signed already; the signature is what a replay gets back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWithdrawal {
    pub h_blind_ev: HashCode,
    pub denom_serial: i64,
    pub reserve_sig: EddsaSignature,
    pub amount_with_fee: Amount,
    /// The blind signature in storage form (see `crate::withdraw::encode_blind_signature`).
    pub denom_sig: Vec<u8>,
    /// The Clause-Schnorr session nonce, locked to this planchet.
    pub cs_nonce: Option<[u8; 32]>,
}

/// The outcome of [`ExchangeStore::batch_withdraw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawOutcome {
    /// The stored signatures in request order (replayed planchets keep their old ones).
    Done(Vec<Vec<u8>>),
    UnknownReserve,
    /// The reserve holds `balance`, the new planchets need `requested`; nothing was changed.
    InsufficientFunds {
        balance: Amount,
        requested: Amount,
    },
    /// A Clause-Schnorr nonce was used before for another planchet (index in the request).
    NonceReuse {
        index: usize,
    },
}

/// A planchet seen before: its reserve and stored signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWithdrawal {
    pub h_blind_ev: HashCode,
    pub reserve_pub: EddsaPublicKey,
    pub denom_sig: Vec<u8>,
}

// ---------------------------------------------------------------- rows: deposits and refunds

/// A batch deposit to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatchDeposit {
    pub merchant_pub: EddsaPublicKey,
    pub h_contract_terms: HashCode,
    pub merchant_payto: String,
    pub h_payto: ShortHashCode,
    pub wire_salt: WireSalt,
    pub wallet_timestamp: Timestamp,
    pub exchange_timestamp: Timestamp,
    pub refund_deadline: Timestamp,
    pub wire_deadline: Timestamp,
    pub wallet_data_hash: Option<HashCode>,
    pub h_coin_sigs: HashCode,
    pub total_without_fee: Amount,
    pub coins: Vec<NewCoinDeposit>,
}

/// One coin of a batch deposit (its signature and denomination checked already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCoinDeposit {
    pub coin_pub: EddsaPublicKey,
    pub denom_serial: i64,
    /// The unblinded denomination signature, stored with the coin the first time it is seen.
    pub denom_sig: Vec<u8>,
    /// The coin's value (its remaining value when first seen).
    pub coin_value: Amount,
    pub coin_sig: EddsaSignature,
    pub amount_with_fee: Amount,
    pub deposit_fee: Amount,
}

/// The outcome of [`ExchangeStore::batch_deposit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepositOutcome {
    /// Recorded now, or recorded before (a replay): the exchange timestamp to sign.
    Done { exchange_timestamp: Timestamp },
    /// The coin at `index` has less value left than its contribution; nothing was changed.
    InsufficientFunds { index: usize },
    /// The coin at `index` is known with another denomination (or another signature of it).
    CoinConflict { index: usize },
    /// A coin's signature belongs to a deposit of another batch: the request is not a replay
    /// and must not be paid twice.
    Conflict { index: usize },
}

/// A refund request (merchant signature checked already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub coin_pub: EddsaPublicKey,
    pub merchant_pub: EddsaPublicKey,
    pub h_contract_terms: HashCode,
    pub rtransaction_id: u64,
    pub amount: Amount,
    pub merchant_sig: EddsaSignature,
}

/// The outcome of [`ExchangeStore::refund`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Recorded (or the same refund recorded before).
    Done,
    /// No deposit of this coin for this contract and merchant.
    DepositNotFound,
    /// The deposit was settled (the merchant was paid, or it was owed nothing and closed
    /// without a transfer): too late to refund.
    AlreadyWired,
    /// The same refund id was used with another amount.
    Conflict,
    /// The refunds would exceed the coin's contribution.
    Exceeds { deposited: Amount },
    /// The refund amount's currency or the refund fee cannot be applied.
    FeeExceedsAmount,
}

/// One entry of a coin's history (the double-spending proof of a 409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoinHistoryEntry {
    Deposit {
        amount_with_fee: Amount,
        deposit_fee: Amount,
        merchant_pub: EddsaPublicKey,
        h_contract_terms: HashCode,
        h_payto: ShortHashCode,
        wire_salt: WireSalt,
        wallet_timestamp: Timestamp,
        refund_deadline: Timestamp,
        wire_deadline: Timestamp,
        wallet_data_hash: Option<HashCode>,
        coin_sig: EddsaSignature,
    },
    Refund {
        amount: Amount,
        /// The denomination's refund fee, as the protocol's coin history shows it (the fee a
        /// completing refund is charged can be lower; see the module docs).
        refund_fee: Amount,
        merchant_pub: EddsaPublicKey,
        h_contract_terms: HashCode,
        rtransaction_id: u64,
        merchant_sig: EddsaSignature,
    },
    /// The coin was melted (see `refresh`): `amount_with_fee` taken from it, of which
    /// `melt_fee` is the old denomination's refresh fee.
    Melt {
        amount_with_fee: Amount,
        melt_fee: Amount,
        rc: HashCode,
        coin_sig: EddsaSignature,
    },
    /// The coin (of a revoked denomination) paid all that was left of it back to the reserve
    /// it was withdrawn from.
    Recoup {
        amount: Amount,
        timestamp: Timestamp,
        reserve_pub: EddsaPublicKey,
        coin_sig: EddsaSignature,
        coin_blind: [u8; 32],
    },
    /// The coin (made by a refresh, of a revoked denomination) paid all that was left of it
    /// back to the coin melted for it.
    RecoupRefresh {
        amount: Amount,
        timestamp: Timestamp,
        old_coin_pub: EddsaPublicKey,
        coin_sig: EddsaSignature,
        coin_blind: [u8; 32],
    },
    /// A coin this coin was refreshed into paid its value back to this coin (a credit).
    OldCoinRecoup {
        amount: Amount,
        timestamp: Timestamp,
        coin_pub: EddsaPublicKey,
    },
}

/// A coin's record: denomination and what is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinRow {
    pub coin_pub: EddsaPublicKey,
    pub h_denom_pub: HashCode,
    pub remaining: Amount,
    pub history: Vec<CoinHistoryEntry>,
}

// ---------------------------------------------------------------- rows: settlement

/// A merchant account's share that is due: its batches past their wire deadline, not yet
/// settled (those waiting for the wire fee included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueAggregate {
    pub merchant_pub: EddsaPublicKey,
    pub merchant_payto: String,
    pub h_payto: ShortHashCode,
    /// The batches it covers.
    pub batch_serials: Vec<i64>,
    /// Σ (contribution − refunds − deposit fee, at least zero) over their coins.
    pub total: Amount,
}

/// A wire transfer to record for an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWireOut {
    pub aggregate: DueAggregate,
    pub wtid: ShortHashCode,
    /// The Wire Gateway's idempotency key (derived from the WTID).
    pub request_uid: HashCode,
    /// The exchange account that pays.
    pub account_section: String,
    pub wire_fee: Amount,
    pub now: Timestamp,
}

/// A wire transfer to a merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireOutRow {
    pub serial: i64,
    pub wtid: ShortHashCode,
    pub request_uid: HashCode,
    pub execution_date: Timestamp,
    pub merchant_pub: EddsaPublicKey,
    pub merchant_payto: String,
    pub h_payto: ShortHashCode,
    pub account_section: String,
    /// What the merchant receives (after the wire fee).
    pub amount: Amount,
    pub wire_fee: Amount,
    pub gateway_row_id: Option<u64>,
    pub failures: u32,
}

/// A deposit as the merchant tracks it (`GET /deposits/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositTrackingRow {
    pub exchange_timestamp: Timestamp,
    pub wire_deadline: Timestamp,
    pub merchant_payto: String,
    pub wire_salt: WireSalt,
    pub amount_with_fee: Amount,
    pub deposit_fee: Amount,
    pub refunded: Amount,
    /// The wire transfer that paid it, once aggregated.
    pub wire: Option<(ShortHashCode, Timestamp)>,
    /// Settled without a wire transfer: its batch was owed nothing (fully refunded, or no more
    /// than its deposit fees) when the aggregator settled it; it will never be wired. (The C
    /// exchange answers such a deposit with 202 and the wire deadline as `execution_time`,
    /// forever: it keeps it in a transient aggregation that is never wired.)
    pub settled_without_transfer: bool,
}

/// One coin of an aggregated wire transfer (`GET /transfers/$WTID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatedDeposit {
    pub h_contract_terms: HashCode,
    pub coin_pub: EddsaPublicKey,
    pub amount_with_fee: Amount,
    pub deposit_fee: Amount,
    pub refunded: Amount,
}

/// The audit's sums (see `crate::audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSums {
    pub reserves_in: Amount,
    pub reserve_balances: Amount,
    pub withdrawn_with_fee: Amount,
    pub withdraw_fees: Amount,
    pub reserve_totals_in: Amount,
    pub deposits_with_fee: Amount,
    pub deposit_fees: Amount,
    pub refunds: Amount,
    /// Σ refund fees charged (stored per refund; a completing refund's can be below the
    /// denomination's).
    pub refund_fees: Amount,
    pub wired: Amount,
    pub wire_fees: Amount,
    /// Σ merchant shares of deposits already aggregated.
    pub aggregated_shares: Amount,
    /// Σ merchant shares of deposits settled without a wire transfer (zero: they were settled
    /// because they were owed nothing, and refunds are refused once settled).
    pub settled_unwired_shares: Amount,
    /// Σ coin remaining values, and Σ of their denominations' values.
    pub coin_remaining: Amount,
    pub coin_values: Amount,
    /// Σ incoming transfers recorded for bouncing.
    pub bounced_in: Amount,
    /// Σ sent back (accepted by the gateway).
    pub bounced_returned: Amount,
    /// Σ closing fees kept of bounced transfers.
    pub bounce_fees: Amount,
    /// Σ not sent back yet: undecided transfers whole, decided ones what is to go back.
    pub bounces_pending: Amount,
    /// Bounced transfers (account, gateway row) whose decided closing fee + amount sent back
    /// differ from their amount (should be none).
    pub bounces_off_balance: Vec<(String, u64)>,
    /// Reserves whose stored balance differs from credits − withdrawals (should be none).
    pub reserves_off_balance: Vec<EddsaPublicKey>,
    /// Coins whose stored remaining value differs from value − deposits + (refunds − refund
    /// fees charged).
    pub coins_off_balance: Vec<EddsaPublicKey>,
    /// What refreshes melted and issued (see `refresh`).
    pub refresh: refresh::RefreshSums,
    /// What recoups moved (see `recoup`).
    pub recoup: recoup::RecoupSums,
    /// What reserve closings moved (see `closing`).
    pub closing: closing::ClosingSums,
}

// ---------------------------------------------------------------- the store

/// The exchange's storage: every query and money movement, on either engine; cheap to clone.
#[derive(Clone, Debug)]
pub struct ExchangeStore {
    db: Database,
    currency: Currency,
}

macro_rules! dispatch_read {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match &$self.db {
            Database::Sqlite(db) => {
                let currency = $self.currency;
                db.read(move |c| sqlite::$f(c, currency $(, $arg)*))
            }
            Database::Postgres(db) => postgres::$f(db, $self.currency $(, $arg)*).await,
        }
    };
}

macro_rules! dispatch_write {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match &$self.db {
            Database::Sqlite(db) => {
                let currency = $self.currency;
                db.write(move |tx| sqlite::$f(tx, currency $(, $arg)*)).await
            }
            Database::Postgres(db) => postgres::$f(db, $self.currency $(, $arg)*).await,
        }
    };
}

// Feature modules (declared after the macros, which they use): each holds its rows, its own
// `impl ExchangeStore` block and, per engine, `sqlite/<feature>.rs` and `postgres/<feature>.rs`
// (declared in `sqlite/mod.rs` and `postgres/mod.rs`), plus its migration pair.

pub mod refresh;
pub use refresh::{
    LinkRow, MeltOutcome, MeltSession, NewFreshCoin, NewMelt, NewReveal, RefreshSums,
    RevealOutcome, StoredReveal,
};

pub mod recoup;
pub use recoup::{NewRecoup, NewRecoupRefresh, RecoupOutcome, RecoupRefreshOutcome, RecoupSums};

pub mod closing;
pub use closing::{ClosingSums, TOPIC_CLOSING};

impl ExchangeStore {
    /// The store of `db`, whose amounts are all in `currency`.
    pub fn new(db: Database, currency: Currency) -> Self {
        Self { db, currency }
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    pub fn engine(&self) -> Engine {
        self.db.engine()
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The notifier of the topics above (subscribe BEFORE reading the state you wait on).
    pub fn notifier(&self) -> &Notifier {
        self.db.notifier()
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    // ----- key material -----

    /// Every denomination, signing key, account and fee (for `/keys`).
    pub async fn key_material(&self) -> Result<KeyMaterial, StoreError> {
        dispatch_read!(self, key_material())
    }

    /// Stores a master-signed denomination (`serial` is ignored).
    pub async fn insert_denomination(&self, row: DenominationRow) -> Result<Stored, StoreError> {
        dispatch_write!(self, insert_denomination(row))
    }

    pub async fn insert_signkey(&self, row: SignkeyRow) -> Result<Stored, StoreError> {
        dispatch_write!(self, insert_signkey(row))
    }

    /// Revokes a denomination; `false` if it is unknown.
    pub async fn revoke_denomination(
        &self,
        h_denom_pub: HashCode,
        sig: EddsaSignature,
    ) -> Result<bool, StoreError> {
        dispatch_write!(self, revoke_denomination(h_denom_pub, sig))
    }

    /// Revokes a signing key; `false` if it is unknown.
    pub async fn revoke_signkey(
        &self,
        exchange_pub: EddsaPublicKey,
        sig: EddsaSignature,
    ) -> Result<bool, StoreError> {
        dispatch_write!(self, revoke_signkey(exchange_pub, sig))
    }

    /// Enables an account; `Conflict` when a change with a later or equal date is stored. A
    /// replay (`AlreadyKnown`) still stores a v12 signature the stored row lacks, and a
    /// re-enable without one keeps the stored one (it covers only the payto URI).
    pub async fn enable_wire_account(&self, row: WireAccountRow) -> Result<Stored, StoreError> {
        dispatch_write!(self, enable_wire_account(row))
    }

    /// Disables an account: `None` if unknown, else whether the change applied (`Conflict`
    /// when a later change is stored).
    pub async fn disable_wire_account(
        &self,
        payto_uri: String,
        master_sig_del: EddsaSignature,
        validity_end: Timestamp,
    ) -> Result<Option<Stored>, StoreError> {
        dispatch_write!(
            self,
            disable_wire_account(payto_uri, master_sig_del, validity_end)
        )
    }

    /// Stores wire fees; `Conflict` when they overlap a stored period with other values.
    pub async fn insert_wire_fee(&self, row: WireFeeRow) -> Result<Stored, StoreError> {
        dispatch_write!(self, insert_wire_fee(row))
    }

    pub async fn insert_global_fee(&self, row: GlobalFeeRow) -> Result<Stored, StoreError> {
        dispatch_write!(self, insert_global_fee(row))
    }

    // ----- reserves -----

    /// Where wirewatch stopped in `account`'s incoming history.
    pub async fn wirewatch_progress(&self, account: String) -> Result<Option<u64>, StoreError> {
        dispatch_read!(self, wirewatch_progress(account))
    }

    /// Credits a page of incoming transfers of `account` and moves its progress to `last_row`,
    /// in one transaction: each transfer exactly once, whatever was credited before.
    pub async fn credit_reserves(
        &self,
        account: String,
        transfers: Vec<IncomingTransfer>,
        last_row: u64,
        reserve_lifetime: RelativeTime,
    ) -> Result<CreditReport, StoreError> {
        dispatch_write!(
            self,
            credit_reserves(account, transfers, last_row, reserve_lifetime)
        )
    }

    pub async fn reserve(
        &self,
        reserve_pub: EddsaPublicKey,
    ) -> Result<Option<ReserveRow>, StoreError> {
        dispatch_read!(self, reserve(reserve_pub))
    }

    pub async fn reserve_history(
        &self,
        reserve_pub: EddsaPublicKey,
    ) -> Result<Vec<ReserveHistoryEntry>, StoreError> {
        dispatch_read!(self, reserve_history(reserve_pub))
    }

    // ----- bounces -----

    /// Bounced transfers not done and due for an attempt at `now`, oldest first.
    pub async fn pending_bounces(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<BounceRow>, StoreError> {
        dispatch_read!(self, pending_bounces(now, limit))
    }

    /// The earliest next attempt of the bounces not done (for the worker's sleep).
    pub async fn next_bounce_attempt(&self) -> Result<Option<Timestamp>, StoreError> {
        dispatch_read!(self, next_attempt(Outgoing::Bounces))
    }

    /// A bounced transfer by the account that received it and its gateway row.
    pub async fn bounce(
        &self,
        account: String,
        wire_reference: u64,
    ) -> Result<Option<BounceRow>, StoreError> {
        dispatch_read!(self, bounce(account, wire_reference))
    }

    /// Decides what happens to an undecided bounced transfer, once: the exchange keeps
    /// `closing_fee` (at most the amount) and sends the rest back naming `exchange_base_url`;
    /// when nothing is left it is done at once (kept whole). Returns the decided row, or
    /// `None` if the row is unknown or was decided before (by another worker).
    pub async fn decide_bounce(
        &self,
        serial: i64,
        closing_fee: Amount,
        exchange_base_url: String,
    ) -> Result<Option<BounceRow>, StoreError> {
        dispatch_write!(self, decide_bounce(serial, closing_fee, exchange_base_url))
    }

    /// The gateway accepted the transfer back (a decided one with something to send).
    pub async fn bounce_done(&self, serial: i64, gateway_row_id: u64) -> Result<(), StoreError> {
        dispatch_write!(
            self,
            transfer_done(Outgoing::Bounces, serial, gateway_row_id)
        )
    }

    /// An attempt failed (or could not be made); try again at `next_attempt`.
    pub async fn bounce_failed(
        &self,
        serial: i64,
        next_attempt: Timestamp,
    ) -> Result<(), StoreError> {
        dispatch_write!(
            self,
            transfer_failed(Outgoing::Bounces, serial, next_attempt)
        )
    }

    // ----- withdraw -----

    /// The planchets among `hashes` that were signed before.
    pub async fn stored_withdrawals(
        &self,
        hashes: Vec<HashCode>,
    ) -> Result<Vec<StoredWithdrawal>, StoreError> {
        dispatch_read!(self, stored_withdrawals(hashes))
    }

    /// Records signed planchets and debits the reserve for the new ones, in one transaction.
    pub async fn batch_withdraw(
        &self,
        reserve_pub: EddsaPublicKey,
        planchets: Vec<NewWithdrawal>,
        now: Timestamp,
    ) -> Result<WithdrawOutcome, StoreError> {
        dispatch_write!(self, batch_withdraw(reserve_pub, planchets, now))
    }

    // ----- deposits and refunds -----

    /// Records a batch deposit: every coin's value checked and debited, in one transaction.
    pub async fn batch_deposit(
        &self,
        deposit: NewBatchDeposit,
    ) -> Result<DepositOutcome, StoreError> {
        dispatch_write!(self, batch_deposit(deposit))
    }

    /// A coin with its history (for the double-spending proof).
    pub async fn coin(&self, coin_pub: EddsaPublicKey) -> Result<Option<CoinRow>, StoreError> {
        dispatch_read!(self, coin(coin_pub))
    }

    /// Applies a refund with `refund_fee` (the denomination's), in one transaction. The refund
    /// that completes the deposit's refunds is charged less (see "Refunds never create money"
    /// above).
    pub async fn refund(
        &self,
        refund: NewRefund,
        refund_fee: Amount,
    ) -> Result<RefundOutcome, StoreError> {
        dispatch_write!(self, refund(refund, refund_fee))
    }

    // ----- settlement -----

    /// The deposits due at `now`, one aggregate per merchant account, at most `limit`
    /// accounts: those with a due batch that does not wait (the first such batches first),
    /// each with all of its unsettled due batches, the waiting ones included. An account whose
    /// due batches all wait is not returned, so accounts stuck below the wire fee never fill
    /// the page.
    pub async fn due_aggregates(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueAggregate>, StoreError> {
        dispatch_read!(self, due_aggregates(now, limit))
    }

    /// The earliest wire deadline of the unsettled batches that do not wait (for the
    /// aggregator's sleep). A deadline in the past means `due_aggregates` has work: waiting
    /// batches never keep it in the past.
    pub async fn next_wire_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        dispatch_read!(self, next_wire_deadline())
    }

    /// Settles an aggregate, in one transaction, recomputing from the rows as they are now
    /// (batches settled since it was read are left alone; refunds since count). Batches owed
    /// nothing are settled without a transfer. If what the others owe exceeds the wire fee,
    /// they are marked with the WTID and the transfer of the difference is recorded and
    /// returned; otherwise they wait (see "Settlement" in the module docs) and the result is
    /// `None`.
    /// Either way, no batch of the aggregate is due afterwards until something changes it.
    pub async fn record_wire_out(
        &self,
        wire_out: NewWireOut,
    ) -> Result<Option<WireOutRow>, StoreError> {
        dispatch_write!(self, record_wire_out(wire_out))
    }

    /// Wire transfers not yet accepted by the gateway and due for an attempt.
    pub async fn pending_wire_outs(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<WireOutRow>, StoreError> {
        dispatch_read!(self, pending_wire_outs(now, limit))
    }

    /// When the earliest recorded transfer not yet accepted is next to be attempted (the
    /// transfer worker sleeps until then, also right after a restart).
    pub async fn next_wire_out_attempt(&self) -> Result<Option<Timestamp>, StoreError> {
        dispatch_read!(self, next_attempt(Outgoing::WireOuts))
    }

    /// The gateway accepted the transfer.
    pub async fn wire_out_done(&self, serial: i64, gateway_row_id: u64) -> Result<(), StoreError> {
        dispatch_write!(
            self,
            transfer_done(Outgoing::WireOuts, serial, gateway_row_id)
        )
    }

    /// An attempt failed; try again at `next_attempt`.
    pub async fn wire_out_failed(
        &self,
        serial: i64,
        next_attempt: Timestamp,
    ) -> Result<(), StoreError> {
        dispatch_write!(
            self,
            transfer_failed(Outgoing::WireOuts, serial, next_attempt)
        )
    }

    /// A wire transfer by its WTID, with the deposits it paid.
    pub async fn wire_out(
        &self,
        wtid: ShortHashCode,
    ) -> Result<Option<(WireOutRow, Vec<AggregatedDeposit>)>, StoreError> {
        dispatch_read!(self, wire_out(wtid))
    }

    /// A coin's deposit for a merchant and contract.
    pub async fn deposit_tracking(
        &self,
        merchant_pub: EddsaPublicKey,
        h_contract_terms: HashCode,
        coin_pub: EddsaPublicKey,
    ) -> Result<Option<DepositTrackingRow>, StoreError> {
        dispatch_read!(
            self,
            deposit_tracking(merchant_pub, h_contract_terms, coin_pub)
        )
    }

    /// The audit's sums over the whole database (one consistent snapshot).
    pub async fn audit_sums(&self) -> Result<AuditSums, StoreError> {
        dispatch_read!(self, audit_sums())
    }
}

// ---------------------------------------------------------------- decoding (both engines)

fn corrupt(msg: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("exchange row: {msg}"))
}

fn time(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_sql_micros(micros).map_err(|e| corrupt(format!("timestamp {micros}: {e}")))
}

fn duration(micros: i64) -> Result<RelativeTime, StoreError> {
    RelativeTime::from_sql_micros(micros).map_err(|e| corrupt(format!("duration {micros}: {e}")))
}

fn amount(currency: Currency, val: i64, frac: i64) -> Result<Amount, StoreError> {
    cardcash_store::columns::amount_from_columns(currency, val, frac)
}

fn cols(a: &Amount) -> (i64, i32) {
    cardcash_store::columns::amount_to_columns(a)
}

fn fixed<T>(
    what: &str,
    bytes: &[u8],
    from: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, StoreError> {
    from(bytes).ok_or_else(|| corrupt(format!("{what} of {} bytes", bytes.len())))
}

/// A denomination's public key from its cipher number and stored bytes.
fn denomination_public(cipher: i64, key: &[u8]) -> Result<DenominationPublic, StoreError> {
    u32::try_from(cipher)
        .ok()
        .and_then(|c| DenominationPublic::from_bytes(c, key))
        .ok_or_else(|| corrupt(format!("denomination key of cipher {cipher}")))
}

/// A count kept in an integer column (attempts that failed, closings of a reserve), saturating.
fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The gateway's row of an outgoing transfer, once the gateway took it.
fn gateway_row(id: Option<i64>) -> Result<Option<u64>, StoreError> {
    id.map(|g| unsigned("gateway row", g)).transpose()
}

fn unsigned(what: &str, n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| corrupt(format!("{what} {n}")))
}

fn signed(what: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Internal(format!("{what} {n} exceeds i64")))
}

/// The amount of `units` (1e-8) in `currency`.
fn units(currency: Currency, units: u128) -> Result<Amount, StoreError> {
    Amount::from_units(&currency, units).map_err(|e| corrupt(format!("sum of amounts: {e}")))
}

/// The notification key of a reserve: its base32 public key.
pub fn reserve_key(reserve_pub: &EddsaPublicKey) -> String {
    reserve_pub.to_string()
}

/// The current time to the microsecond (the unit of every time column).
pub fn now() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX - 1));
    Timestamp::from_micros(micros)
}
