//! The operations behind the withdrawal endpoints: one method per request kind, each one
//! storage call that decides with the pure rules of [`crate::state`] inside its transaction
//! (see [`crate::db`]) and maps the outcome to the answer.
//!
//! Handlers stay thin (extract → one call here → response). Races are settled by the database:
//! the row is locked (PostgreSQL) or the writer runs alone (SQLite) while the rule decides, so
//! of two racing requests the second decides on what the first wrote (a replay or a conflict).
//! The Wire Gateway is served by the shared router through `http::wire`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardcash_store::{ResultExt as _, Subscription};
use cardcash_util::{Amount, EddsaPublicKey, ErrorCode, PaytoUri};
use tokio_util::sync::CancellationToken;

use crate::api::TerminalWithdrawalSetup;
use crate::db::withdrawal::{
    AbortOutcome, AbortRequest, CheckOutcome, NewWithdrawal, RegisterOutcome, SetupOutcome,
    WithdrawalRow,
};
use crate::db::{C2ecStore, TOPIC_WITHDRAWAL, withdrawal_key};
use crate::error::C2ecError;
use crate::metrics::C2ecMetrics;
use crate::provider::CardProvider;
use crate::state::{
    self, AbortDecision, CheckConflict, CheckDecision, Registration, RegistrationConflict,
    RegistrationDecision, SetupAmountProblem, Status,
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
            .setup(NewWithdrawal {
                wopid,
                terminal_id,
                request_uid: req.request_uid.clone(),
                request_hash: hash.as_bytes().to_vec(),
                amount: req.amount,
                suggested_amount: req.suggested_amount,
                card_fees,
                now: crate::db::now(),
            })
            .await?;
        match outcome {
            SetupOutcome::Created(w) => {
                self.metrics.withdrawals_created.inc();
                Ok(w)
            }
            SetupOutcome::Replay(w) => Ok(w),
            SetupOutcome::Conflict => Err(C2ecError::conflict(
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
            .withdrawal(wopid)
            .await?
            .ok_or(C2ecError::WithdrawalNotFound)?;
        match terminal {
            Some(t) if t != row.terminal_id => Err(C2ecError::WithdrawalNotFound),
            _ => Ok(row),
        }
    }

    /// Long poll: answers once the status differs from `old_state`, or at the timeout (or at
    /// shutdown). The shared loop subscribes before reading, so a change between the read and
    /// the wait is never lost; only status changes notify an operation's topic, so every
    /// wake-up is an answer unless the timeout is near.
    ///
    /// A wake-up whose notifications carry the new status
    /// ([`StatusNews`](crate::db::withdrawal::StatusNews)) is answered from the
    /// row read before and the news, without reading it again, when the news tells the whole
    /// story ([`WithdrawalRow::after_news`]). The row is read again after a timeout, at
    /// shutdown, after a wake-up of everybody (the PostgreSQL listener reconnected: news may
    /// have been lost) and whenever the news does not suffice.
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
        let news = Mutex::new(None::<Vec<String>>);
        let mut waiting = NewsWait {
            sub: self
                .store
                .notifier()
                .subscribe_messages(TOPIC_WITHDRAWAL, &withdrawal_key(wopid)),
            news: &news,
        };
        self.metrics.long_poll_waiters.inc();
        let _waiting = WaiterGuard(&self.metrics);
        // The row last answered by `read` (the news apply to it).
        let known = Mutex::new(None::<WithdrawalRow>);
        let currency = *self.store.currency();
        cardcash_http::wait_for_change_until(
            Some(&self.stopping),
            timeout,
            &mut waiting,
            || async {
                let told = match (take(&known), take(&news)) {
                    (Some(row), Some(news)) => row.after_news(currency, &news),
                    _ => None,
                };
                let row = match told {
                    Some(row) => row,
                    None => self.get(wopid, terminal).await?,
                };
                *lock(&known) = Some(row.clone());
                Ok(row)
            },
            |row| row.status != old_state,
            |w, left| {
                Box::pin(async move {
                    let woken = w.sub.wait(left).await;
                    // Only a wake-up's news may replace the read; a timeout reads again.
                    *lock(w.news) = if woken { w.sub.take_messages() } else { None };
                    woken
                })
            },
        )
        .await
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
        // A racing registration of the same key for another operation loses on the unique
        // index (PostgreSQL); the rules see every other case.
        let outcome = self
            .store
            .register(wopid, req, crate::db::now())
            .await
            .on_constraint("withdrawals_reserve_pub_key", |_| duplicate_reserve_pub())?;
        match outcome {
            RegisterOutcome::NotFound => Err(C2ecError::WithdrawalNotFound),
            RegisterOutcome::ReservePubTaken => Err(duplicate_reserve_pub()),
            RegisterOutcome::Decided(RegistrationDecision::Select { .. }) => Ok(Status::Selected),
            RegisterOutcome::Decided(RegistrationDecision::Replay { status }) => Ok(status),
            RegisterOutcome::Decided(RegistrationDecision::Conflict(c)) => {
                Err(registration_conflict(c))
            }
        }
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
        let outcome = self
            .store
            .check(wopid, terminal_id, tx_id, crate::db::now())
            .await
            .on_constraint("withdrawals_provider_tx_id_key", |_| {
                C2ecError::conflict(
                    ErrorCode::BankWithdrawalOperationReserveSelectionConflict,
                    "this card transaction is already bound to another withdrawal",
                )
            })?;
        match outcome {
            CheckOutcome::NotFound => Err(C2ecError::WithdrawalNotFound),
            CheckOutcome::Decided(CheckDecision::Record { answer })
            | CheckOutcome::Decided(CheckDecision::Replay { answer }) => {
                answer.map_err(check_conflict)
            }
            CheckOutcome::Decided(CheckDecision::RefundExtra { answer }) => {
                tracing::warn!(%wopid, tx_id, "further card transaction reported; refund due");
                Err(check_conflict(answer))
            }
        }
    }

    /// Abort by terminal or wallet: 204 also when already aborted, 409 once confirmed. When a
    /// card transaction is bound to the operation, its money is refunded (decided by the
    /// database at the moment of the abort, so a racing `/check` cannot slip through).
    pub async fn abort(&self, wopid: &Wopid, actor: Actor) -> Result<(), C2ecError> {
        let (terminal, who) = match actor {
            Actor::Terminal(t) => (Some(t), "terminal"),
            Actor::Wallet => (None, "wallet"),
        };
        let request = AbortRequest {
            terminal,
            only_selected: false,
            actor: who,
            reason: format!("aborted by {who}"),
            evidence: None,
        };
        match self.store.abort(wopid, request, crate::db::now()).await? {
            AbortOutcome::NotFound => Err(C2ecError::WithdrawalNotFound),
            AbortOutcome::Decided { aborted: true, .. } => {
                self.metrics.finished("aborted");
                Ok(())
            }
            AbortOutcome::Decided { from, .. } => match state::decide_abort(from) {
                AbortDecision::Confirmed => Err(C2ecError::conflict(
                    ErrorCode::BankAbortConfirmConflict,
                    "the withdrawal is confirmed and cannot be aborted",
                )),
                AbortDecision::AlreadyAborted | AbortDecision::Abort => Ok(()),
            },
        }
    }
}

/// A long poll's subscription and where its wake-ups leave their news for the next read.
struct NewsWait<'a> {
    sub: Subscription,
    news: &'a Mutex<Option<Vec<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn take<T>(m: &Mutex<Option<T>>) -> Option<T> {
    lock(m).take()
}

fn duplicate_reserve_pub() -> C2ecError {
    C2ecError::conflict(
        ErrorCode::BankDuplicateReservePubSubject,
        "reserve public key already used",
    )
}

/// Decrements the long-poll gauge when the waiting request ends (also on error or cancel).
struct WaiterGuard<'a>(&'a C2ecMetrics);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.long_poll_waiters.dec();
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
