//! The card processor's operations, one method per endpoint, between the thin HTTP handlers and
//! `db/`. Each mutating operation is one database transaction.
//!
//! Spec: docs/CARDPROC-API.md. Rules kept here:
//! - authentication (Wallee MAC, ±600 s) and authorization (role, space) happen before anything
//!   is read or written;
//! - `process-card` asks the [`Authorizer`] outside any database transaction, then applies the
//!   decision only if the transaction is still `PENDING` (a concurrent or repeated call returns
//!   the stored result unchanged);
//! - refunds lock the transaction row, persist due delayed finality, check `FULFILL` and
//!   `refunded + amount ≤ completed`, and are idempotent on `externalId` (same request → same
//!   refund, different request → 409), all in one transaction;
//! - the outage switch is in memory (per process), for tests and demos.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cardcash_store::Db;
use cardcash_util::Currency;

use crate::config::{CardprocConfig, Role};
use crate::db;
use crate::db::transaction::{NewTransaction, TransactionRow};
use crate::db::user::ApiUserRow;
use crate::error::CardprocError;
use crate::metrics::CardprocMetrics;
use crate::processing::{AuthorizationRequest, Authorizer, Card, transition};
use cardcash_api::cardproc::IsoTime;
use cardcash_api::cardproc::mac;
use cardcash_api::cardproc::{
    ConfigResponse, CreateTransactionRequest, ProcessCardRequest, Refund, RefundRequest,
    Transaction, TransactionState,
};

/// Name in `/config`.
pub const SERVICE_NAME: &str = "cardcash-cardproc";
/// API version in `/config` (libtool style).
pub const API_VERSION: &str = "0:0:0";
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
            Self::Reader => matches!(
                op,
                Operation::ReadTransaction | Operation::Refund | Operation::ReadRefund
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
    db: Db,
    currencies: Vec<Currency>,
    space_id: u64,
    admin_token: Option<String>,
    authorizer: Arc<dyn Authorizer>,
    metrics: CardprocMetrics,
    outage: AtomicBool,
}

/// Store notification topic (key: transaction id) sent when a delayed approval is stored, so
/// the finality worker (of any process, on PostgreSQL) recomputes its next wake-up.
pub const TOPIC_FINALITY_SCHEDULED: &str = "finality_scheduled";

impl std::fmt::Debug for Cardproc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cardproc")
            .field("db", &self.db)
            .field("space_id", &self.space_id)
            .finish_non_exhaustive()
    }
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
        db: Db,
        authorizer: Arc<dyn Authorizer>,
        metrics: CardprocMetrics,
    ) -> Self {
        Self {
            db,
            currencies: config.currencies.clone(),
            space_id: config.space_id,
            admin_token: config.admin_token.clone(),
            authorizer,
            metrics,
            outage: AtomicBool::new(false),
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
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
        // Unknown user and wrong MAC give the same answer, so ids cannot be probed.
        let user = db::user::get(&self.db, user_id).await?;
        let valid = user.as_ref().is_some_and(|u| {
            mac::verify(
                &u.secret,
                user_id,
                timestamp,
                input.method,
                input.path_and_query,
                value,
            )
        });
        let Some(ApiUserRow {
            id, role, space_id, ..
        }) = user.filter(|_| valid)
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
        let new = NewTransaction {
            space_id: user.space_id,
            amount: req.amount.to_amount(req.currency),
            merchant_reference: &req.merchant_reference,
            terminal_id: req.terminal_id.as_deref(),
            meta_data: &req.meta_data,
            created_by: user.id,
            created_at: now,
        };
        let new = &new;
        let row: TransactionRow = self
            .db
            .retry_write(|tx| Box::pin(async move { db::transaction::insert(tx, new).await }))
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
        let row = db::transaction::get(&self.db, user.space_id, id)
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
        let now = IsoTime::now();
        let change = transition(decision, now);
        let masked = card.pan.masked();
        let (change, masked) = (&change, masked.as_str());
        let space = user.space_id;
        let updated = self
            .db
            .retry_write(|tx| {
                Box::pin(async move {
                    match db::transaction::apply_transition(tx, id, change, masked).await? {
                        Some(row) => {
                            if row.fulfill_at.is_some() {
                                tx.notify(TOPIC_FINALITY_SCHEDULED, &row.id.to_string());
                            }
                            Ok::<_, CardprocError>((row, true))
                        }
                        None => db::transaction::lock(tx, space, id)
                            .await?
                            .map(|row| (row, false))
                            .ok_or(CardprocError::TransactionNotFound),
                    }
                })
            })
            .await?;
        let (row, applied) = updated;
        if applied && row.state.is_final() {
            self.metrics.finalized(row.state);
        }
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
        let space = user.space_id;
        let now = IsoTime::now();
        let (row, voided) = self
            .db
            .retry_write(|tx| {
                Box::pin(async move {
                    if let Some(row) = db::transaction::void(tx, space, id, now).await? {
                        return Ok::<_, CardprocError>((row, true));
                    }
                    let row = db::transaction::lock(tx, space, id)
                        .await?
                        .ok_or(CardprocError::TransactionNotFound)?;
                    match row.effective_state(now) {
                        TransactionState::Voided => Ok((row, false)),
                        other => Err(CardprocError::NotVoidable(other)),
                    }
                })
            })
            .await?;
        if voided {
            self.metrics.finalized(TransactionState::Voided);
        }
        Ok(row.view(now))
    }

    /// `GET /api/transaction/read`.
    pub async fn read_transaction(
        &self,
        user: &ApiUser,
        id: u64,
    ) -> Result<Transaction, CardprocError> {
        user.require(Operation::ReadTransaction)?;
        let row = db::transaction::get(&self.db, user.space_id, id)
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
        let (space, creator) = (user.space_id, user.id);
        let outcome = self
            .db
            .retry_write(|tx| {
                Box::pin(async move {
                    let now = IsoTime::now();
                    // Persist due finality first so the checks below see what readers see.
                    let finalized =
                        db::transaction::finalize_due(tx, now, Some(req.transaction)).await?;
                    let row = db::transaction::lock(tx, space, req.transaction).await?;
                    if let Some(existing) =
                        db::refund::find_by_external_id(tx, space, &req.external_id).await?
                    {
                        let same = existing.transaction_id == req.transaction
                            && cardcash_api::cardproc::DecimalAmount::from(existing.amount)
                                == req.amount
                            && existing.refund_type == req.refund_type
                            && existing.merchant_reference == req.merchant_reference;
                        return if same {
                            Ok((existing, finalized, false))
                        } else {
                            Err(CardprocError::ExternalIdReused)
                        };
                    }
                    let row = row.ok_or(CardprocError::TransactionNotFound)?;
                    if row.state != TransactionState::Fulfill {
                        return Err(CardprocError::NotRefundable(row.state));
                    }
                    let amount = req.amount.to_amount(*row.amount.currency());
                    let refunded = row
                        .refunded
                        .checked_add(&amount)
                        .ok()
                        .filter(|total| {
                            total.partial_cmp(&row.completed).is_some_and(|o| o.is_le())
                        })
                        .ok_or(CardprocError::RefundExceedsCompleted)?;
                    db::transaction::set_refunded(tx, row.id, &refunded).await?;
                    let new = db::refund::NewRefund {
                        space_id: space,
                        external_id: &req.external_id,
                        transaction_id: row.id,
                        amount,
                        refund_type: req.refund_type,
                        merchant_reference: req.merchant_reference.as_deref(),
                        created_by: creator,
                        created_at: now,
                    };
                    let id = match db::refund::insert(tx, &new).await {
                        // Same externalId inserted concurrently for another transaction (a
                        // concurrent one for this transaction waited on the row lock above).
                        Err(CardprocError::Store(e)) if e.is_unique_violation() => {
                            return Err(CardprocError::ExternalIdReused);
                        }
                        other => other?,
                    };
                    let stored = db::refund::get_in(tx, id).await?.ok_or_else(|| {
                        CardprocError::Internal("refund vanished after insert".into())
                    })?;
                    Ok((stored, finalized, true))
                })
            })
            .await?;
        let (refund, finalized, created) = outcome;
        self.metrics.finalized_many(finalized);
        if created {
            self.metrics.refunds.inc();
        }
        Ok(refund.view())
    }

    /// `GET /api/refund/read`.
    pub async fn read_refund(&self, user: &ApiUser, id: u64) -> Result<Refund, CardprocError> {
        user.require(Operation::ReadRefund)?;
        let row = db::refund::get(&self.db, user.space_id, id)
            .await?
            .ok_or(CardprocError::RefundNotFound)?;
        Ok(row.view())
    }

    /// Persists every due delayed finality; returns how many transactions became `FULFILL`.
    pub async fn finalize_due(&self) -> Result<u64, CardprocError> {
        let now = IsoTime::now();
        let n = self
            .db
            .retry_write(|tx| {
                Box::pin(async move { db::transaction::finalize_due(tx, now, None).await })
            })
            .await?;
        self.metrics.finalized_many(n);
        Ok(n)
    }

    /// When the next delayed finality falls due.
    pub async fn next_due(&self) -> Result<Option<IsoTime>, CardprocError> {
        db::transaction::next_due(&self.db).await
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
    fn text_checks() {
        assert!(check_text("x", "W0PID", false).is_ok());
        assert!(check_text("x", "", false).is_err());
        assert!(check_text("x", "", true).is_ok());
        assert!(check_text("x", &"a".repeat(101), false).is_err());
        assert!(check_text("x", "a\nb", false).is_err());
    }
}
