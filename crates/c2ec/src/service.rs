//! The operations behind the endpoints: one method per request kind, each deciding with the
//! pure rules of [`crate::state`] and applying the decision through [`crate::db`].
//!
//! Handlers stay thin (extract → one call here → response). Races are settled by the database:
//! a conditional update that affects no row means someone else changed the operation first, so
//! the method re-reads and decides again (the second decision is then a replay or a conflict).

use std::sync::Arc;
use std::time::Duration;

use cardcash_util::{Amount, EddsaPublicKey, ErrorCode, PaytoUri};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::{AddIncomingRequest, TerminalWithdrawalSetup, TransferRequest};
use crate::db::transfer::{NewTransfer, TransferOutcome, TransferRow};
use crate::db::withdrawal::{
    AddIncomingOutcome, IncomingRow, InsertOutcome, NewWithdrawal, WithdrawalRow,
};
use crate::db::{C2ecStore, TOPIC_INCOMING, TOPIC_OUTGOING, TOPIC_WITHDRAWAL, now_micros};
use crate::error::C2ecError;
use crate::metrics::C2ecMetrics;
use crate::provider::CardProvider;
use crate::state::{
    self, AbortDecision, CheckConflict, CheckDecision, CheckView, Registration,
    RegistrationConflict, RegistrationDecision, RegistrationView, SetupAmountProblem, Status,
};
use cardcash_util::Wopid;

/// Shared state of the operations.
#[derive(Clone)]
pub struct C2ec {
    pub store: C2ecStore,
    pub provider: Arc<dyn CardProvider>,
    pub metrics: C2ecMetrics,
    /// The exchange account wallets must select.
    pub exchange_account: PaytoUri,
    /// Cancelled at shutdown: waiting long polls answer at once instead of holding the
    /// graceful shutdown for up to their timeout.
    pub stopping: CancellationToken,
}

/// Who aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Terminal(i64),
    Wallet,
}

impl C2ec {
    fn currency_ok(&self, a: &Amount) -> Result<(), C2ecError> {
        if a.currency() == self.store.currency() {
            Ok(())
        } else {
            Err(C2ecError::bad_request(
                ErrorCode::GenericCurrencyMismatch,
                format!("expected currency {}", self.store.currency()),
            ))
        }
    }

    /// `POST /terminal/withdrawals`: a new operation, or the one this `request_uid` made before.
    pub async fn setup(
        &self,
        terminal_id: i64,
        req: &TerminalWithdrawalSetup,
    ) -> Result<Wopid, C2ecError> {
        if !state::valid_request_uid(&req.request_uid) {
            return Err(C2ecError::malformed(
                "request_uid (1 to 128 bytes, no control characters)",
            ));
        }
        for a in [&req.amount, &req.suggested_amount, &req.terminal_fees]
            .into_iter()
            .flatten()
        {
            self.currency_ok(a)?;
        }
        let card_fees = req
            .terminal_fees
            .unwrap_or_else(|| Amount::zero(self.store.currency()));
        state::check_setup_amounts(
            req.amount.as_ref(),
            req.suggested_amount.as_ref(),
            &card_fees,
        )
        .map_err(|p| match p {
            SetupAmountProblem::Missing => C2ecError::bad_request(
                ErrorCode::GenericParameterMissing,
                "give amount or suggested_amount",
            ),
            SetupAmountProblem::Zero => C2ecError::malformed("amount (must be positive)"),
            SetupAmountProblem::ChargeTooBig => C2ecError::bad_request(
                ErrorCode::BankNumberTooBig,
                "amount plus terminal_fees exceeds the largest amount",
            ),
        })?;
        // What makes two setups "the same request": the money fields, canonically.
        let canonical = format!(
            "amount={:?};suggested={:?};fees={}",
            req.amount.map(|a| a.to_string()),
            req.suggested_amount.map(|a| a.to_string()),
            card_fees
        );
        let hash = cardcash_crypto::sha512(canonical.as_bytes());
        let wopid = cardcash_crypto::random::random_bytes::<32>()
            .map(Wopid::from_bytes)
            .map_err(|e| C2ecError::Internal(e.to_string()))?;
        let outcome = self
            .store
            .insert_withdrawal(&NewWithdrawal {
                wopid,
                terminal_id,
                request_uid: &req.request_uid,
                request_hash: hash.as_bytes(),
                amount: req.amount.as_ref(),
                suggested_amount: req.suggested_amount.as_ref(),
                card_fees: &card_fees,
                now: now_micros(),
            })
            .await?;
        match outcome {
            InsertOutcome::Created(w) => {
                self.metrics.withdrawals_created.inc();
                Ok(w)
            }
            InsertOutcome::Replay(w) => Ok(w),
            InsertOutcome::Conflict => Err(C2ecError::conflict(
                ErrorCode::BankTransferRequestUidReused,
                "request_uid was used for a different withdrawal",
            )),
        }
    }

    /// Loads an operation; a terminal only sees its own.
    pub async fn get(
        &self,
        wopid: &Wopid,
        terminal: Option<i64>,
    ) -> Result<WithdrawalRow, C2ecError> {
        let row = self
            .store
            .get_withdrawal(wopid)
            .await?
            .ok_or(C2ecError::WithdrawalNotFound)?;
        match terminal {
            Some(t) if t != row.terminal_id => Err(C2ecError::WithdrawalNotFound),
            _ => Ok(row),
        }
    }

    /// Long poll: answers once the status differs from `old_state`, or at the timeout.
    /// Subscribes before reading, so a change between the read and the wait is never lost;
    /// every wake-up comes from a notification, never from polling the database.
    pub async fn poll(
        &self,
        wopid: &Wopid,
        terminal: Option<i64>,
        old_state: Status,
        timeout: Duration,
    ) -> Result<WithdrawalRow, C2ecError> {
        if timeout.is_zero() {
            return self.get(wopid, terminal).await;
        }
        let key = wopid.to_string();
        let mut sub = self.store.db().notifier().subscribe(TOPIC_WITHDRAWAL, &key);
        let mut row = self.get(wopid, terminal).await?;
        let deadline = Instant::now() + timeout;
        self.metrics.long_poll_waiters.inc();
        let _waiting = WaiterGuard(&self.metrics);
        while row.status == old_state {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.wait(&mut sub, left).await {
                break;
            }
            row = self.get(wopid, terminal).await?;
        }
        Ok(row)
    }

    /// Waits for a notification, the timeout or shutdown; `true` only for a notification.
    async fn wait(&self, sub: &mut cardcash_store::Subscription, timeout: Duration) -> bool {
        tokio::select! {
            woken = sub.wait(timeout) => woken,
            () = self.stopping.cancelled() => false,
        }
    }

    /// `POST /taler-integration/withdrawal-operation/$WOPID`: the wallet registers its reserve.
    pub async fn register(
        &self,
        wopid: &Wopid,
        reserve_pub: &EddsaPublicKey,
        selected_exchange: &PaytoUri,
        amount: Option<Amount>,
    ) -> Result<Status, C2ecError> {
        if let Some(a) = &amount {
            self.currency_ok(a)?;
        }
        if selected_exchange.to_string().len() > state::MAX_SELECTED_EXCHANGE_LEN {
            return Err(C2ecError::malformed(
                "selected_exchange (a payto URI of at most 1024 bytes)",
            ));
        }
        if !selected_exchange.same_account(&self.exchange_account) {
            return Err(C2ecError::conflict(
                ErrorCode::BankAccountIsNotExchange,
                "the selected account is not the exchange account of this C2EC",
            ));
        }
        let req = Registration {
            reserve_pub: *reserve_pub,
            exchange_account: self.exchange_account.to_string(),
            amount,
        };
        // Two rounds at most: a lost race is followed by a decision on the fresh state.
        for _ in 0..2 {
            let mut tx = self.store.begin().await?;
            let row = self
                .store
                .get_withdrawal_tx(&mut tx, wopid)
                .await?
                .ok_or(C2ecError::WithdrawalNotFound)?;
            let view = RegistrationView {
                status: row.status,
                reserve_pub: row.reserve_pub,
                exchange_account: row.exchange_account.clone(),
                amount: row.amount,
                suggested_amount: row.suggested_amount,
                card_fees: row.card_fees,
            };
            match state::decide_registration(&view, &req) {
                RegistrationDecision::Replay { status } => return Ok(status),
                RegistrationDecision::Conflict(c) => return Err(registration_conflict(c)),
                RegistrationDecision::Select { amount } => {
                    if self
                        .store
                        .reserve_pub_taken(&mut tx, reserve_pub, row.withdrawal_id)
                        .await?
                    {
                        return Err(C2ecError::conflict(
                            ErrorCode::BankDuplicateReservePubSubject,
                            "reserve public key already used",
                        ));
                    }
                    let selected = self
                        .store
                        .select(
                            &mut tx,
                            &row,
                            reserve_pub,
                            &req.exchange_account,
                            &amount,
                            now_micros(),
                        )
                        .await
                        .map_err(|e| {
                            if e.is_unique_violation() {
                                C2ecError::conflict(
                                    ErrorCode::BankDuplicateReservePubSubject,
                                    "reserve public key already used",
                                )
                            } else {
                                C2ecError::from(e)
                            }
                        })?;
                    if selected {
                        tx.commit().await.map_err(|e| {
                            if e.is_unique_violation() {
                                C2ecError::conflict(
                                    ErrorCode::BankDuplicateReservePubSubject,
                                    "reserve public key already used",
                                )
                            } else {
                                C2ecError::from(e)
                            }
                        })?;
                        return Ok(Status::Selected);
                    }
                    tx.rollback().await?;
                }
            }
        }
        Err(C2ecError::conflict(
            ErrorCode::BankWithdrawalOperationReserveSelectionConflict,
            "the withdrawal operation changed concurrently",
        ))
    }

    /// `POST /terminal/withdrawals/$WOPID/check`: binds the card transaction and wakes the
    /// attestation worker. Idempotent for the same transaction id.
    ///
    /// A reported payment is recorded whatever the operation's state, so that money captured
    /// on the card is refunded when the operation cannot be confirmed by it: a check that
    /// lands after an abort or expiry records the transaction (refund due) and still answers
    /// 409 `BANK_CONFIRM_ABORT_CONFLICT`; a second, different transaction is queued for refund
    /// and answered 409.
    pub async fn check(
        &self,
        terminal_id: i64,
        wopid: &Wopid,
        tx_id: &str,
    ) -> Result<(), C2ecError> {
        if !state::valid_provider_transaction_id(tx_id) {
            return Err(C2ecError::malformed(
                "provider_transaction_id (1 to 100 characters of A-Z a-z 0-9 - . _ ~)",
            ));
        }
        // Every lost race moves the operation forward (pending → selected → aborted/confirmed,
        // transaction unset → set), so a few rounds always reach a decision.
        for _ in 0..4 {
            let mut tx = self.store.begin().await?;
            let row = self
                .store
                .get_withdrawal_tx(&mut tx, wopid)
                .await?
                .ok_or(C2ecError::WithdrawalNotFound)?;
            if row.terminal_id != terminal_id {
                return Err(C2ecError::WithdrawalNotFound);
            }
            let view = CheckView {
                status: row.status,
                provider_transaction_id: row.provider_tx_id.clone(),
            };
            match state::decide_check(&view, tx_id) {
                CheckDecision::Replay { answer } => return answer.map_err(check_conflict),
                CheckDecision::RefundExtra { answer } => {
                    self.store
                        .record_extra_payment(&mut tx, &row, tx_id, now_micros())
                        .await?;
                    tx.commit().await?;
                    tracing::warn!(%wopid, tx_id, "further card transaction reported; refund due");
                    return Err(check_conflict(answer));
                }
                CheckDecision::Record { answer } => {
                    let recorded = self
                        .store
                        .record_check(&mut tx, &row, tx_id, now_micros())
                        .await
                        .map_err(tx_reuse)?;
                    if recorded {
                        tx.commit().await.map_err(tx_reuse)?;
                        return answer.map_err(check_conflict);
                    }
                    tx.rollback().await?;
                }
            }
        }
        Err(check_conflict(CheckConflict::OtherTransaction))
    }

    /// Abort by terminal or wallet: 204 also when already aborted, 409 once confirmed. When a
    /// card transaction is bound to the operation, its money is refunded (decided by the
    /// database at the moment of the abort, so a racing `/check` cannot slip through).
    pub async fn abort(&self, wopid: &Wopid, actor: Actor) -> Result<(), C2ecError> {
        for _ in 0..3 {
            let mut tx = self.store.begin().await?;
            let row = self
                .store
                .get_withdrawal_tx(&mut tx, wopid)
                .await?
                .ok_or(C2ecError::WithdrawalNotFound)?;
            if let Actor::Terminal(t) = actor
                && t != row.terminal_id
            {
                return Err(C2ecError::WithdrawalNotFound);
            }
            match state::decide_abort(row.status) {
                AbortDecision::AlreadyAborted => return Ok(()),
                AbortDecision::Confirmed => {
                    return Err(C2ecError::conflict(
                        ErrorCode::BankAbortConfirmConflict,
                        "the withdrawal is confirmed and cannot be aborted",
                    ));
                }
                AbortDecision::Abort => {
                    let who = match actor {
                        Actor::Terminal(_) => "terminal",
                        Actor::Wallet => "wallet",
                    };
                    let done = self
                        .store
                        .abort(
                            &mut tx,
                            &row,
                            row.status,
                            who,
                            &format!("aborted by {who}"),
                            None,
                            false,
                            now_micros(),
                        )
                        .await?;
                    if done {
                        tx.commit().await?;
                        self.metrics.finished("aborted");
                        return Ok(());
                    }
                    tx.rollback().await?;
                }
            }
        }
        Err(C2ecError::conflict(
            ErrorCode::BankAbortConfirmConflict,
            "the withdrawal operation changed concurrently",
        ))
    }

    /// `POST /taler-wire-gateway/transfer`: records the exchange's transfer; the refund worker
    /// turns it into a card refund.
    pub async fn transfer(&self, req: &TransferRequest) -> Result<(i64, i64), C2ecError> {
        self.currency_ok(&req.amount)?;
        if req.amount.is_zero() {
            return Err(C2ecError::malformed("amount (must be positive)"));
        }
        let target = self.provider.parse_payto(&req.credit_account);
        let credit_account = req.credit_account.to_string();
        let canonical = format!(
            "{}|{}|{}|{}",
            req.amount, req.exchange_base_url, req.wtid, req.credit_account
        );
        let hash = cardcash_crypto::sha512(canonical.as_bytes());
        let outcome = self
            .store
            .insert_transfer(&NewTransfer {
                request_uid: &req.request_uid,
                request_hash: hash.as_bytes(),
                amount: &req.amount,
                wtid: &req.wtid,
                exchange_base_url: req.exchange_base_url.as_str(),
                credit_account: &credit_account,
                target_tx_id: target.as_deref(),
                now: now_micros(),
            })
            .await?;
        match outcome {
            TransferOutcome::Accepted { row_id, created_at } => Ok((row_id, created_at)),
            TransferOutcome::RequestUidReuse => Err(C2ecError::conflict(
                ErrorCode::BankTransferRequestUidReused,
                "request_uid used already with different data",
            )),
        }
    }

    /// Incoming history with long polling (only for a positive `limit` and an empty page).
    pub async fn incoming(
        &self,
        limit: i64,
        offset: Option<i64>,
        timeout: Duration,
    ) -> Result<Vec<IncomingRow>, C2ecError> {
        let mut sub = (limit > 0 && !timeout.is_zero())
            .then(|| self.store.db().notifier().subscribe_topic(TOPIC_INCOMING));
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.store.incoming_history(limit, offset).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            match sub.as_mut() {
                Some(s) if rows.is_empty() && !left.is_zero() => {
                    self.metrics.long_poll_waiters.inc();
                    let woken = self.wait(s, left).await;
                    self.metrics.long_poll_waiters.dec();
                    if !woken {
                        return Ok(rows);
                    }
                }
                _ => return Ok(rows),
            }
        }
    }

    /// Outgoing history with long polling, like [`Self::incoming`].
    pub async fn outgoing(
        &self,
        limit: i64,
        offset: Option<i64>,
        timeout: Duration,
    ) -> Result<Vec<TransferRow>, C2ecError> {
        let mut sub = (limit > 0 && !timeout.is_zero())
            .then(|| self.store.db().notifier().subscribe_topic(TOPIC_OUTGOING));
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.store.outgoing_history(limit, offset).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            match sub.as_mut() {
                Some(s) if rows.is_empty() && !left.is_zero() => {
                    if !self.wait(s, left).await {
                        return Ok(rows);
                    }
                }
                _ => return Ok(rows),
            }
        }
    }

    /// `POST /taler-wire-gateway/admin/add-incoming`.
    pub async fn add_incoming(&self, req: &AddIncomingRequest) -> Result<(i64, i64), C2ecError> {
        self.currency_ok(&req.amount)?;
        match self
            .store
            .add_incoming(
                &req.reserve_pub,
                &req.amount,
                &req.debit_account.to_string(),
                now_micros(),
            )
            .await?
        {
            AddIncomingOutcome::Added { row_id, created_at } => Ok((row_id, created_at)),
            AddIncomingOutcome::ReservePubReuse => Err(C2ecError::conflict(
                ErrorCode::BankDuplicateReservePubSubject,
                "reserve public key already used",
            )),
        }
    }
}

/// Decrements the long-poll gauge when the waiting request ends (also on error or cancel).
struct WaiterGuard<'a>(&'a C2ecMetrics);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.long_poll_waiters.dec();
    }
}

/// A card transaction already bound to another operation.
fn tx_reuse(e: cardcash_store::StoreError) -> C2ecError {
    if e.is_unique_violation() {
        C2ecError::conflict(
            ErrorCode::BankWithdrawalOperationReserveSelectionConflict,
            "this card transaction is already bound to another withdrawal",
        )
    } else {
        C2ecError::from(e)
    }
}

fn registration_conflict(c: RegistrationConflict) -> C2ecError {
    match c {
        RegistrationConflict::Aborted => C2ecError::conflict(
            ErrorCode::BankUpdateAbortConflict,
            "the withdrawal was aborted",
        ),
        RegistrationConflict::OtherSelection => C2ecError::conflict(
            ErrorCode::BankWithdrawalOperationReserveSelectionConflict,
            "another reserve or exchange was selected for this withdrawal",
        ),
        RegistrationConflict::AmountDiffers => C2ecError::conflict(
            ErrorCode::BankAmountDiffers,
            "the amount is fixed and differs",
        ),
        RegistrationConflict::NoAmount => C2ecError::conflict(
            ErrorCode::BankAmountRequired,
            "no amount was given by the terminal or the wallet",
        ),
        RegistrationConflict::ZeroAmount => C2ecError::malformed("amount (must be positive)"),
        RegistrationConflict::ChargeTooBig => C2ecError::bad_request(
            ErrorCode::BankNumberTooBig,
            "amount plus the terminal's card fees exceeds the largest amount",
        ),
    }
}

fn check_conflict(c: CheckConflict) -> C2ecError {
    match c {
        CheckConflict::NotSelected => C2ecError::conflict(
            ErrorCode::BankConfirmIncomplete,
            "no wallet has registered a reserve for this withdrawal yet",
        ),
        CheckConflict::Aborted => C2ecError::conflict(
            ErrorCode::BankConfirmAbortConflict,
            "the withdrawal was aborted",
        ),
        CheckConflict::OtherTransaction => C2ecError::conflict(
            ErrorCode::BankWithdrawalOperationReserveSelectionConflict,
            "a different card transaction was reported for this withdrawal",
        ),
    }
}
