//! The card processor's operations, one method per endpoint, between the thin HTTP handlers and
//! `db/`. Each mutating operation is one database transaction.
//!
//! Spec: docs/CARDPROC-API.md. Rules kept here:
//! - authentication (Wallee MAC, ±600 s) and authorization (role, space) happen before anything
//!   is read or written;
//! - an unknown user's MAC is computed against a dummy key, so that it costs what a known
//!   user's wrong MAC costs (user ids cannot be probed by timing);
//! - `process-card` asks the [`Authorizer`] outside any database transaction, then applies the
//!   decision only if the transaction is still `PENDING` (a concurrent or repeated call returns
//!   the stored result unchanged);
//! - refunds persist due delayed finality, lock the transaction row, check `FULFILL` and
//!   `refunded + amount ≤ completed`, and are idempotent on `externalId` (same request → same
//!   refund, different request → 409), all in one transaction ([`CardprocStore::refund`]);
//! - each mutating operation is ONE storage call (one round trip on PostgreSQL, one writer
//!   closure on SQLite; `db/mod.rs` counts them);
//! - the outage switch is in memory (per process), for tests and demos.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use cardcash_util::Currency;

use crate::config::{CardprocConfig, Role};
use crate::db::{
    ApiUserRow, CardprocStore, NewRefund, NewTransaction, PayoutRow, RefundOutcome, StateChange,
};
use crate::error::CardprocError;
use crate::metrics::CardprocMetrics;
use crate::processing::{
    AuthorizationRequest, Authorizer, Card, Decision, RefundTerms, is_refund_replay, transition,
};
use cardcash_api::cardproc::IsoTime;
use cardcash_api::cardproc::mac::{self, MacKey};
use cardcash_api::cardproc::{
    ConfigResponse, CreateTransactionRequest, PayoutListResponse, ProcessCardRequest, Refund,
    RefundRequest, Transaction, TransactionState,
};

pub use crate::db::TOPIC_FINALITY_SCHEDULED;

/// Name in `/config`.
pub const SERVICE_NAME: &str = "cardcash-cardproc";
/// API version in `/config` (libtool style).
pub const API_VERSION: &str = "0:0:0";
/// Most payouts `GET /api/payout/list` returns.
pub const MAX_PAYOUTS_LISTED: u32 = 1000;
/// Longest merchant reference, terminal id and external id (Wallee's limit for references).
pub const MAX_REFERENCE_LEN: usize = 100;
/// Most metadata entries, and the longest key or value.
pub const MAX_META_ENTRIES: usize = 20;
/// Longest metadata key or value.
pub const MAX_META_LEN: usize = 512;

/// What a request needs to be authenticated (taken from the HTTP request by the handler layer).
#[derive(Debug, Clone, Copy)]
pub struct MacInput<'a> {
    /// `x-mac-version`.
    pub version: Option<&'a str>,
    /// `x-mac-userid`.
    pub user_id: Option<&'a str>,
    /// `x-mac-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `x-mac-value`.
    pub value: Option<&'a str>,
    /// HTTP method.
    pub method: &'a str,
    /// Path and query exactly as received.
    pub path_and_query: &'a str,
    /// The `spaceId` query parameter, unparsed.
    pub space_id: Option<&'a str>,
}

/// An operation, for role checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /api/transaction/create`.
    CreateTransaction,
    /// `POST /api/transaction/process-card`.
    ProcessCard,
    /// `POST /api/transaction-void/voidOnline`.
    Void,
    /// `GET /api/transaction/read`.
    ReadTransaction,
    /// `POST /api/refund/refund`.
    Refund,
    /// `GET /api/refund/read`.
    ReadRefund,
    /// `GET /api/payout/list`.
    ListPayouts,
}

impl Role {
    /// Whether this role may perform `op`.
    pub const fn allows(&self, op: Operation) -> bool {
        match self {
            Self::Terminal => {
                matches!(
                    op,
                    Operation::CreateTransaction
                        | Operation::ProcessCard
                        | Operation::Void
                        | Operation::ReadTransaction
                )
            }
            // The back office (C2EC, the merchant's bookkeeping): payouts are its business,
            // not the terminals'.
            Self::Reader => matches!(
                op,
                Operation::ReadTransaction
                    | Operation::Refund
                    | Operation::ReadRefund
                    | Operation::ListPayouts
            ),
        }
    }
}

/// An authenticated API user.
#[derive(Debug, Clone)]
pub struct ApiUser {
    /// User id.
    pub id: u64,
    /// Role.
    pub role: Role,
    /// The space named in the request (equal to the user's and the processor's).
    pub space_id: u64,
}

impl ApiUser {
    /// 403 unless the user's role allows `op`.
    pub fn require(&self, op: Operation) -> Result<(), CardprocError> {
        if self.role.allows(op) {
            Ok(())
        } else {
            Err(CardprocError::Forbidden(
                "this API user's role does not allow this operation",
            ))
        }
    }
}

/// Shared state of a running card processor.
pub struct Cardproc {
    store: CardprocStore,
    currencies: Vec<Currency>,
    space_id: u64,
    admin_token: Option<String>,
    authorizer: Arc<dyn Authorizer>,
    metrics: CardprocMetrics,
    outage: AtomicBool,
    /// Wakes this process's payout worker after a capture (a permit is kept when it is busy,
    /// so no capture is missed; other processes' captures wait for its idle timer).
    payout_wake: Arc<Notify>,
}

impl std::fmt::Debug for Cardproc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cardproc")
            .field("store", &self.store)
            .field("space_id", &self.space_id)
            .finish_non_exhaustive()
    }
}

/// The key an unknown user's MAC is checked against. Its value does not matter (an unknown
/// user is refused whatever the check says); computing the HMAC makes the refusal cost what a
/// known user's wrong MAC costs, so user ids cannot be told apart by timing.
static DUMMY_KEY: LazyLock<MacKey> = LazyLock::new(|| {
    MacKey::from_bytes(vec![0x5a; 32])
        .unwrap_or_else(|_| unreachable!("a non-empty key is a valid MAC key"))
});

/// Whether `user` exists and `verify` accepts the request with its key. `verify` runs exactly
/// once either way (with [`DUMMY_KEY`] for an unknown user).
fn mac_valid(user: Option<&ApiUserRow>, verify: impl FnOnce(&MacKey) -> bool) -> bool {
    let checked = verify(user.map_or(&*DUMMY_KEY, |u| &u.secret));
    checked && user.is_some()
}

fn check_text(field: &str, text: &str, allow_empty: bool) -> Result<(), CardprocError> {
    if (!allow_empty && text.is_empty())
        || text.chars().count() > MAX_REFERENCE_LEN
        || text.chars().any(char::is_control)
    {
        return Err(CardprocError::Malformed(format!(
            "{field} must be 1 to {MAX_REFERENCE_LEN} characters without control characters"
        )));
    }
    Ok(())
}

impl Cardproc {
    /// Builds the shared state.
    pub fn new(
        config: &CardprocConfig,
        store: CardprocStore,
        authorizer: Arc<dyn Authorizer>,
        metrics: CardprocMetrics,
    ) -> Self {
        Self {
            store,
            currencies: config.currencies.clone(),
            space_id: config.space_id,
            admin_token: config.admin_token.clone(),
            authorizer,
            metrics,
            outage: AtomicBool::new(false),
            payout_wake: Arc::new(Notify::new()),
        }
    }

    /// The storage.
    pub fn store(&self) -> &CardprocStore {
        &self.store
    }

    /// `GET /config`.
    pub fn config(&self) -> ConfigResponse {
        ConfigResponse {
            name: SERVICE_NAME.to_owned(),
            version: API_VERSION.to_owned(),
            currencies: self.currencies.clone(),
            space_id: self.space_id,
        }
    }

    /// Whether the outage switch is on.
    pub fn is_down(&self) -> bool {
        self.outage.load(Ordering::SeqCst)
    }

    /// Checks the admin bearer token (constant time); 403 when admin is disabled.
    pub fn check_admin(&self, token: Option<&str>) -> Result<(), CardprocError> {
        let Some(expected) = &self.admin_token else {
            return Err(CardprocError::Forbidden(
                "admin endpoints are disabled (no ADMIN_TOKEN configured)",
            ));
        };
        match token {
            Some(t) if cardcash_http::constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
            _ => Err(CardprocError::Unauthorized(
                "admin bearer token missing or wrong",
            )),
        }
    }

    /// `POST /admin/outage`.
    pub fn set_outage(&self, down: bool) {
        tracing::warn!(down, "outage switch changed");
        self.outage.store(down, Ordering::SeqCst);
    }

    /// Outage, MAC, user, timestamp and space checks for one `/api/…` request.
    pub async fn authenticate(&self, input: MacInput<'_>) -> Result<ApiUser, CardprocError> {
        if self.is_down() {
            return Err(CardprocError::Outage);
        }
        let (Some(version), Some(user_id), Some(timestamp), Some(value)) =
            (input.version, input.user_id, input.timestamp, input.value)
        else {
            return Err(CardprocError::Unauthorized(
                "missing x-mac-* authentication headers",
            ));
        };
        if version.trim() != mac::MAC_VERSION {
            return Err(CardprocError::Unauthorized("unsupported x-mac-version"));
        }
        let user_id: u64 = user_id
            .trim()
            .parse()
            .map_err(|_| CardprocError::Unauthorized("malformed x-mac-userid"))?;
        let timestamp: u64 = timestamp
            .trim()
            .parse()
            .map_err(|_| CardprocError::Unauthorized("malformed x-mac-timestamp"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let user = self.store.cached_user(user_id).await?;
        let valid = mac_valid(user.as_deref(), |key| {
            mac::verify(
                key,
                user_id,
                timestamp,
                input.method,
                input.path_and_query,
                value,
            )
        });
        let Some(&ApiUserRow {
            id, role, space_id, ..
        }) = user.as_deref().filter(|_| valid)
        else {
            return Err(CardprocError::Unauthorized("unknown API user or wrong MAC"));
        };
        if !mac::timestamp_fresh(timestamp, now) {
            return Err(CardprocError::Unauthorized(
                "x-mac-timestamp too far from the server clock",
            ));
        }
        let space = input
            .space_id
            .ok_or(CardprocError::MissingParameter("spaceId"))?;
        let space: u64 = space
            .parse()
            .map_err(|_| CardprocError::Malformed("spaceId must be a number".into()))?;
        if space != self.space_id || space != space_id {
            return Err(CardprocError::Forbidden(
                "this API user has no access to that space",
            ));
        }
        Ok(ApiUser {
            id,
            role,
            space_id: space,
        })
    }

    /// `POST /api/transaction/create`.
    pub async fn create_transaction(
        &self,
        user: &ApiUser,
        req: &CreateTransactionRequest,
    ) -> Result<Transaction, CardprocError> {
        user.require(Operation::CreateTransaction)?;
        if !self.currencies.contains(&req.currency) {
            return Err(CardprocError::CurrencyNotAccepted);
        }
        if req.amount.is_zero() {
            return Err(CardprocError::Malformed("amount must be positive".into()));
        }
        check_text("merchantReference", &req.merchant_reference, false)?;
        if let Some(t) = &req.terminal_id {
            check_text("terminalId", t, false)?;
        }
        if req.meta_data.len() > MAX_META_ENTRIES
            || req
                .meta_data
                .iter()
                .any(|(k, v)| k.is_empty() || k.len() > MAX_META_LEN || v.len() > MAX_META_LEN)
        {
            return Err(CardprocError::Malformed(format!(
                "metaData: at most {MAX_META_ENTRIES} entries, keys 1 to {MAX_META_LEN} bytes, values up to {MAX_META_LEN}"
            )));
        }
        let now = IsoTime::now();
        let row = self
            .store
            .create_transaction(NewTransaction {
                space_id: user.space_id,
                amount: req.amount.to_amount(req.currency),
                merchant_reference: req.merchant_reference.clone(),
                terminal_id: req.terminal_id.clone(),
                meta_data: req.meta_data.clone(),
                created_by: user.id,
                created_at: now,
            })
            .await?;
        self.metrics.created.inc();
        Ok(row.view(now))
    }

    /// `POST /api/transaction/process-card`.
    pub async fn process_card(
        &self,
        user: &ApiUser,
        id: u64,
        req: &ProcessCardRequest,
    ) -> Result<Transaction, CardprocError> {
        user.require(Operation::ProcessCard)?;
        // A decision that depends on the card alone is applied without reading the transaction
        // first; the conditional apply leaves a processed transaction as it is (a replay gets
        // the stored result). A card that does not parse takes the reading path, which answers
        // a replay with the stored result and a pending transaction with the card's error.
        if let Ok(card) = Card::parse(req, IsoTime::now())
            && let Some(decision) = self.authorizer.decide_by_card(&card)
        {
            return self.apply(user, id, card, decision).await;
        }
        let row = self
            .store
            .transaction(user.space_id, id)
            .await?
            .ok_or(CardprocError::TransactionNotFound)?;
        if row.state != TransactionState::Pending {
            // Idempotent: a processed transaction is returned as it is, whatever card is shown.
            return Ok(row.view(IsoTime::now()));
        }
        let card = Card::parse(req, IsoTime::now())?;
        let decision = self
            .authorizer
            .authorize(AuthorizationRequest {
                transaction_id: row.id,
                card: &card,
                amount: row.amount,
                merchant_reference: &row.merchant_reference,
            })
            .await?;
        self.apply(user, id, card, decision).await
    }

    /// Stores `decision` if transaction `id` is still `PENDING`; answers the row as it is then.
    async fn apply(
        &self,
        user: &ApiUser,
        id: u64,
        card: Card,
        decision: Decision,
    ) -> Result<Transaction, CardprocError> {
        let change = transition(decision, IsoTime::now());
        let row = match self
            .store
            .apply_decision(user.space_id, id, change, card.pan.masked())
            .await?
        {
            StateChange::Applied(row) => {
                if row.state.is_final() {
                    self.metrics.finalized(row.state);
                }
                if row.state == TransactionState::Fulfill || row.fulfill_at.is_some() {
                    self.payout_wake.notify_one();
                }
                row
            }
            // Another request processed it meanwhile: its result stands.
            StateChange::Unchanged(row) => row,
            StateChange::NotFound => return Err(CardprocError::TransactionNotFound),
        };
        Ok(row.view(IsoTime::now()))
    }

    /// `POST /api/transaction-void/voidOnline`: cancels an `AUTHORIZED` (not yet final)
    /// transaction; voiding a voided one returns it unchanged, anything else is 409.
    pub async fn void_transaction(
        &self,
        user: &ApiUser,
        id: u64,
    ) -> Result<Transaction, CardprocError> {
        user.require(Operation::Void)?;
        let now = IsoTime::now();
        let row = match self.store.void(user.space_id, id, now).await? {
            StateChange::Applied(row) => {
                self.metrics.finalized(TransactionState::Voided);
                row
            }
            StateChange::Unchanged(row) => match row.effective_state(now) {
                TransactionState::Voided => row,
                other => return Err(CardprocError::NotVoidable(other)),
            },
            StateChange::NotFound => return Err(CardprocError::TransactionNotFound),
        };
        Ok(row.view(now))
    }

    /// `GET /api/transaction/read`.
    pub async fn read_transaction(
        &self,
        user: &ApiUser,
        id: u64,
    ) -> Result<Transaction, CardprocError> {
        user.require(Operation::ReadTransaction)?;
        let row = self
            .store
            .transaction(user.space_id, id)
            .await?
            .ok_or(CardprocError::TransactionNotFound)?;
        Ok(row.view(IsoTime::now()))
    }

    /// `POST /api/refund/refund`.
    pub async fn refund(
        &self,
        user: &ApiUser,
        req: &RefundRequest,
    ) -> Result<Refund, CardprocError> {
        user.require(Operation::Refund)?;
        check_text("externalId", &req.external_id, false)?;
        if let Some(r) = &req.merchant_reference {
            check_text("merchantReference", r, true)?;
        }
        if req.amount.is_zero() {
            return Err(CardprocError::Malformed("amount must be positive".into()));
        }
        let (outcome, finalized) = self
            .store
            .refund(NewRefund {
                space_id: user.space_id,
                external_id: req.external_id.clone(),
                transaction_id: req.transaction,
                amount: req.amount,
                refund_type: req.refund_type,
                merchant_reference: req.merchant_reference.clone(),
                created_by: user.id,
                created_at: IsoTime::now(),
            })
            .await?;
        self.metrics.finalized_many(finalized);
        match outcome {
            RefundOutcome::Created(refund) => {
                self.metrics.refunds.inc();
                Ok(refund.view())
            }
            RefundOutcome::Existing(refund) => {
                let requested = RefundTerms {
                    transaction: req.transaction,
                    amount: req.amount,
                    refund_type: req.refund_type,
                    merchant_reference: req.merchant_reference.as_deref(),
                };
                if is_refund_replay(refund.terms(), requested) {
                    Ok(refund.view())
                } else {
                    Err(CardprocError::ExternalIdReused)
                }
            }
            RefundOutcome::TransactionNotFound => Err(CardprocError::TransactionNotFound),
            RefundOutcome::NotRefundable(state) => Err(CardprocError::NotRefundable(state)),
            RefundOutcome::ExceedsCompleted => Err(CardprocError::RefundExceedsCompleted),
        }
    }

    /// `GET /api/payout/list`: the space's payouts, newest first (at most
    /// [`MAX_PAYOUTS_LISTED`]).
    pub async fn list_payouts(&self, user: &ApiUser) -> Result<PayoutListResponse, CardprocError> {
        user.require(Operation::ListPayouts)?;
        let rows = self
            .store
            .payouts(user.space_id, MAX_PAYOUTS_LISTED)
            .await?;
        Ok(PayoutListResponse {
            payouts: rows.iter().map(PayoutRow::view).collect(),
        })
    }

    /// What wakes the payout worker.
    pub fn payout_wake(&self) -> Arc<Notify> {
        self.payout_wake.clone()
    }

    /// The service metrics.
    pub fn metrics(&self) -> &CardprocMetrics {
        &self.metrics
    }

    /// `GET /api/refund/read`.
    pub async fn read_refund(&self, user: &ApiUser, id: u64) -> Result<Refund, CardprocError> {
        user.require(Operation::ReadRefund)?;
        let row = self
            .store
            .refund_by_id(user.space_id, id)
            .await?
            .ok_or(CardprocError::RefundNotFound)?;
        Ok(row.view())
    }

    /// Persists every due delayed finality (counting the transactions that became
    /// `FULFILL`); returns when the next one falls due.
    pub async fn sweep_finality(&self) -> Result<Option<IsoTime>, CardprocError> {
        let sweep = self.store.sweep_finality(IsoTime::now()).await?;
        self.metrics.finalized_many(sweep.finalized);
        Ok(sweep.next_due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        use Operation::*;
        for op in [CreateTransaction, ProcessCard, Void, ReadTransaction] {
            assert!(Role::Terminal.allows(op));
        }
        assert!(!Role::Terminal.allows(Refund) && !Role::Terminal.allows(ReadRefund));
        for op in [ReadTransaction, Refund, ReadRefund] {
            assert!(Role::Reader.allows(op));
        }
        assert!(!Role::Reader.allows(CreateTransaction) && !Role::Reader.allows(ProcessCard));
        assert!(!Role::Reader.allows(Void));
    }

    #[test]
    fn unknown_users_cost_one_mac_check_and_never_pass() {
        let known = ApiUserRow {
            id: 1,
            secret: MacKey::from_bytes(vec![1; 32]).unwrap(),
            role: Role::Terminal,
            space_id: 7,
        };
        for (user, verdict, expected) in [
            (None, true, false),
            (None, false, false),
            (Some(&known), false, false),
            (Some(&known), true, true),
        ] {
            let mut checked_with = Vec::new();
            let valid = mac_valid(user, |key| {
                checked_with.push(key.to_base64());
                verdict
            });
            assert_eq!(valid, expected, "{user:?} {verdict}");
            let key = user.map_or(DUMMY_KEY.to_base64(), |u| u.secret.to_base64());
            assert_eq!(
                checked_with,
                [key],
                "one HMAC, with the user's or the dummy key"
            );
        }
    }

    #[test]
    fn text_checks() {
        assert!(check_text("x", "W0PID", false).is_ok());
        assert!(check_text("x", "", false).is_err());
        assert!(check_text("x", "", true).is_ok());
        assert!(check_text("x", &"a".repeat(101), false).is_err());
        assert!(check_text("x", "a\nb", false).is_err());
    }
}
