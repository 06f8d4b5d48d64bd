//! Withdrawals: bank-integrated (`taler://withdraw/…`: docs.taler.net core/api-bank-integration,
//! as C2EC's terminal shows it) and manual (a reserve the user wires money to), driven as a
//! state machine over the wallet database, plus what the wallet shows of them: balances,
//! transactions, coins.
//!
//! Each step reads the group, talks to one service, and applies the answer in one transaction
//! conditional on the state it left (`db`). A failure leaves the group where it was with the
//! error recorded; transient failures (network, 5xx) are retried with a backoff, the rest end
//! the run. Because planchets derive from the group's seed and are fixed before the first
//! batch is sent, a run interrupted anywhere resumes with the same requests.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use cardcash_api::bank_integration::{BankWithdrawalOperationPostRequest, WithdrawalStatus};
use cardcash_api::exchange::{
    BatchWithdrawRequest, CsNonce, CsrWithdrawRequest, ExchangeWithdrawValues,
};
use cardcash_client::BankIntegrationClient;
use cardcash_crypto::EddsaPrivateKey;
use cardcash_util::{
    Amount, BaseUrl, Currency, ErrorCode, HashCode, PaytoUri, RelativeTime, TalerUri, Timestamp,
};
use serde::Serialize;
use tokio::time::Instant;

use crate::db::{
    BankOperation, CoinRow, CoinStatus, PlanchetRow, RefreshState, WithdrawalGroupRow,
    WithdrawalKind, WithdrawalState,
};
use crate::denom::{Denom, DenomKey, select_withdrawal};
use crate::error::{WalletError, WalletResult};
use crate::planchet::{Planchet, cs_nonce};
use crate::refresh::refresh_transaction_id;
use crate::{Notification, Step, Wallet};

/// The longest a single long poll waits (the services bound theirs too).
const LONG_POLL: Duration = Duration::from_secs(30);
/// Keys older than this are fetched again before the coins of a withdrawal are chosen.
const KEYS_MAX_AGE: RelativeTime = RelativeTime::from_secs(3600);
/// Planchets per batch-withdraw request.
const BATCH: usize = 64;
/// Backoff after a transient failure: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(30));

/// What the bank says about a withdrawal operation, before the wallet accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BankWithdrawalDetails {
    pub bank_integration_base: String,
    pub wopid: String,
    pub status: String,
    pub currency: Option<String>,
    /// The amount fixed by the bank (or its suggestion).
    pub amount: Option<Amount>,
    pub suggested_exchange: Option<String>,
    pub required_exchange: Option<String>,
    /// The wallet's transaction for this operation, when it accepted it already.
    pub transaction_id: Option<String>,
}

/// What a withdrawal of an amount from an exchange would give, before it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalPlan {
    pub exchange_base_url: String,
    /// What the reserve receives.
    pub amount_raw: Amount,
    /// What the coins are worth.
    pub amount_effective: Amount,
    /// The exchange's withdraw fees for these coins.
    pub withdraw_fees: Amount,
    /// What no coin fits (stays in the reserve; the exchange wires it back when it closes).
    pub left_in_reserve: Amount,
    /// `{value, count, feeWithdraw, cipher}`, largest value first.
    pub coins: Vec<PlannedCoins>,
}

/// Coins of one value in a [`WithdrawalPlan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedCoins {
    pub value: Amount,
    pub count: u32,
    pub fee_withdraw: Amount,
    pub cipher: &'static str,
}

/// A manual withdrawal: where to wire the money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManualWithdrawal {
    pub transaction_id: String,
    pub reserve_pub: String,
    /// The exchange's accounts with the amount and the subject (the reserve public key).
    pub exchange_payto_uris: Vec<String>,
}

/// The balance of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub currency: String,
    /// Fresh coins.
    pub available: Amount,
    /// Coins of withdrawals and refreshes not yet done (and remainders of spent coins waiting
    /// for their refresh).
    pub pending_incoming: Amount,
    /// What payments under way take (their coins are spent, the merchant has not confirmed).
    pub pending_outgoing: Amount,
}

/// A transaction as the wallet lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub transaction_id: String,
    /// `withdrawal`, `refresh`, `payment` or `refund`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `bank-integrated` or `manual` (withdrawals only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_type: Option<&'static str>,
    pub state: &'static str,
    pub exchange_base_url: String,
    /// What the reserve receives (a refresh: what the melt takes from the old coin).
    pub amount_raw: Amount,
    /// What the coins are worth (raw minus fees and what no coin fits).
    pub amount_effective: Amount,
    /// The reserve of a withdrawal (empty otherwise).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reserve_pub: String,
    /// A payment's or refund's order: its merchant, id, summary and fulfillment URL.
    #[serde(flatten)]
    pub order: Option<crate::pay::OrderInfo>,
    pub exchange_payto_uris: Vec<String>,
    pub timestamp: Timestamp,
    pub error: Option<String>,
}

/// A coin as the wallet lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CoinSummary {
    pub coin_pub: String,
    pub denom_pub_hash: String,
    pub exchange_base_url: String,
    pub value: Amount,
    /// What is left of it (the change of a payment or a refund, until refreshed).
    pub remaining: Amount,
    pub status: &'static str,
    pub transaction_id: String,
}

/// `txn:withdrawal:<group>` (wallet-core's transaction id form).
pub fn transaction_id(group_id: &str) -> String {
    format!("txn:withdrawal:{group_id}")
}

fn group_of(transaction_id: &str) -> WalletResult<&str> {
    transaction_id
        .strip_prefix("txn:withdrawal:")
        .ok_or_else(|| WalletError::UnknownTransaction(transaction_id.to_owned()))
}

fn parse_withdraw_uri(uri: &str) -> WalletResult<(BaseUrl, String)> {
    match uri.parse::<TalerUri>() {
        Ok(TalerUri::Withdraw {
            bank_integration_base,
            wopid,
            ..
        }) => Ok((bank_integration_base, wopid)),
        Ok(other) => Err(WalletError::BadRequest(format!(
            "a taler://{} URI is not a withdrawal",
            other.action()
        ))),
        Err(e) => Err(WalletError::BadRequest(format!("{uri:?}: {e}"))),
    }
}

fn new_group_id() -> WalletResult<String> {
    Ok(cardcash_util::base32::encode(
        &cardcash_crypto::random_bytes::<16>()?,
    ))
}

fn planchet_rows(denoms: &[&Denom]) -> Vec<PlanchetRow> {
    denoms
        .iter()
        .enumerate()
        .map(|(i, d)| PlanchetRow {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            h_denom_pub: d.h_denom_pub,
            withdrawn: false,
        })
        .collect()
}

fn sum(currency: &Currency, amounts: impl IntoIterator<Item = Amount>) -> Amount {
    amounts
        .into_iter()
        .try_fold(Amount::zero(currency), |acc, a| acc.checked_add(&a))
        .unwrap_or(Amount::max(currency))
}

impl Wallet {
    fn bank_client(&self, base: &BaseUrl) -> BankIntegrationClient {
        BankIntegrationClient::with_http(self.inner.http.clone(), base.clone()).named("the bank")
    }

    /// Reads the withdrawal operation of a `taler://withdraw` URI (nothing is stored).
    pub async fn prepare_bank_integrated_withdrawal(
        &self,
        uri: &str,
    ) -> WalletResult<BankWithdrawalDetails> {
        let (base, wopid) = parse_withdraw_uri(uri)?;
        let status = self
            .bank_client(&base)
            .withdrawal_operation(&wopid, None, Duration::ZERO)
            .await?;
        let known = self.store().withdrawal_by_wopid(&base, &wopid)?;
        Ok(BankWithdrawalDetails {
            bank_integration_base: base.to_string(),
            status: status.status.as_str().to_owned(),
            currency: status
                .currency
                .as_ref()
                .map(ToString::to_string)
                .or_else(|| status.amount.map(|a| a.currency().to_string())),
            amount: status.amount.or(status.suggested_amount),
            suggested_exchange: status.suggested_exchange,
            required_exchange: status.required_exchange,
            transaction_id: known.map(|g| transaction_id(&g.group_id)),
            wopid,
        })
    }

    /// Accepts the withdrawal of a `taler://withdraw` URI through `exchange` (default: the one
    /// the bank requires or suggests): adds and verifies the exchange, creates the withdrawal
    /// with a fresh reserve key, and registers the reserve with the bank. Accepting the same
    /// operation again returns the same transaction. The rest (confirmation, funding, coins)
    /// happens in [`Self::run_until_done`] / [`Self::process_withdrawal`].
    pub async fn accept_bank_integrated_withdrawal(
        &self,
        uri: &str,
        exchange: Option<BaseUrl>,
        amount: Option<Amount>,
    ) -> WalletResult<String> {
        let (base, wopid) = parse_withdraw_uri(uri)?;
        if let Some(group) = self.store().withdrawal_by_wopid(&base, &wopid)? {
            return Ok(transaction_id(&group.group_id));
        }
        let bank = self.bank_client(&base);
        let status = bank
            .withdrawal_operation(&wopid, None, Duration::ZERO)
            .await?;
        if status.status == WithdrawalStatus::Aborted {
            return Err(WalletError::AbortedByBank);
        }
        let exchange = match (
            &status.required_exchange,
            exchange,
            &status.suggested_exchange,
        ) {
            (Some(required), Some(given), _) if required.as_str() != given.as_str() => {
                return Err(WalletError::BadRequest(format!(
                    "the bank requires the exchange {required}, not {given}"
                )));
            }
            (Some(required), _, _) => parse_url(required)?,
            (None, Some(given), _) => given,
            (None, None, Some(suggested)) => parse_url(suggested)?,
            (None, None, None) => {
                return Err(WalletError::BadRequest(
                    "the bank suggests no exchange: give one".into(),
                ));
            }
        };
        let amount = match (status.amount, amount, status.suggested_amount) {
            (Some(fixed), Some(wanted), _) if fixed != wanted => {
                return Err(WalletError::BadRequest(format!(
                    "the bank fixed the amount at {fixed}, not {wanted}"
                )));
            }
            (Some(fixed), _, _) => fixed,
            (None, Some(wanted), _) => wanted,
            (None, None, Some(suggested)) => suggested,
            (None, None, None) => {
                return Err(WalletError::BadRequest(
                    "the bank fixes no amount: give one".into(),
                ));
            }
        };
        self.ensure_exchange(&exchange).await?;
        let group = self
            .create_withdrawal(
                WithdrawalKind::BankIntegrated,
                &exchange,
                amount,
                Some(BankOperation {
                    integration_base: base,
                    wopid,
                }),
            )
            .await?;
        // Registering right away is what the user expects of "accept"; a failure is recorded
        // and retried by the next run.
        let registered = self
            .process_until(
                &group,
                Some(WithdrawalState::WaitingConfirmation),
                Some(Instant::now() + LONG_POLL),
            )
            .await;
        if let Err(e) = registered
            && !e.is_transient()
            && !matches!(e, WalletError::Incomplete(_))
        {
            return Err(e);
        }
        Ok(transaction_id(&group))
    }

    /// The coins and fees of withdrawing `amount` from `exchange` (added and verified first),
    /// without withdrawing anything.
    pub async fn get_withdrawal_plan(
        &self,
        exchange: &BaseUrl,
        amount: Amount,
    ) -> WalletResult<WithdrawalPlan> {
        self.ensure_exchange(exchange).await?;
        let ex = self.known_exchange(exchange)?;
        if amount.currency() != &ex.currency {
            return Err(WalletError::BadRequest(format!(
                "{exchange} deals in {}, not {}",
                ex.currency,
                amount.currency()
            )));
        }
        let denoms = self.lasting_denominations(exchange)?;
        let selection = select_withdrawal(&amount, &denoms, Timestamp::now());
        let left = amount
            .checked_sub(&selection.total_cost())
            .unwrap_or(Amount::zero(amount.currency()));
        Ok(WithdrawalPlan {
            exchange_base_url: exchange.to_string(),
            amount_raw: amount,
            amount_effective: selection.total_value,
            withdraw_fees: selection.total_fee,
            left_in_reserve: left,
            coins: selection
                .coins
                .iter()
                .map(|(d, n)| PlannedCoins {
                    value: d.value,
                    count: *n,
                    fee_withdraw: d.fee_withdraw,
                    cipher: d.key.cipher(),
                })
                .collect(),
        })
    }

    /// Reads a `taler://withdraw-exchange/…` URI (an exchange inviting a manual withdrawal):
    /// adds and verifies the exchange, checks the master key the URI pins, and returns the
    /// exchange and the suggested amount. [`Self::accept_manual_withdrawal`] then creates the
    /// reserve.
    pub async fn prepare_withdraw_exchange(
        &self,
        uri: &str,
    ) -> WalletResult<(BaseUrl, Option<Amount>)> {
        let (base, pinned, amount) = match uri.parse::<TalerUri>() {
            Ok(TalerUri::WithdrawExchange {
                exchange_base,
                exchange_pub,
                amount,
            }) => (exchange_base, exchange_pub, amount),
            Ok(other) => {
                return Err(WalletError::BadRequest(format!(
                    "a taler://{} URI is not a taler://withdraw-exchange URI",
                    other.action()
                )));
            }
            Err(e) => return Err(WalletError::BadRequest(format!("{uri:?}: {e}"))),
        };
        self.add_exchange_pinned(&base, pinned.as_ref()).await?;
        Ok((base, amount))
    }

    /// Creates a manual withdrawal of `amount` from `exchange`: the reserve, and the exchange's
    /// accounts to wire `amount` to with the reserve public key as subject.
    pub async fn accept_manual_withdrawal(
        &self,
        exchange: &BaseUrl,
        amount: Amount,
    ) -> WalletResult<ManualWithdrawal> {
        self.ensure_exchange(exchange).await?;
        let group = self
            .create_withdrawal(WithdrawalKind::Manual, exchange, amount, None)
            .await?;
        let row = self.group(&group)?;
        Ok(ManualWithdrawal {
            transaction_id: transaction_id(&group),
            reserve_pub: row.reserve_pub.to_string(),
            exchange_payto_uris: self.payto_uris(&row)?,
        })
    }

    fn payto_uris(&self, g: &WithdrawalGroupRow) -> WalletResult<Vec<String>> {
        let exchange = self.known_exchange(&g.exchange)?;
        let mut accounts = exchange.keys.accounts.clone();
        accounts.sort_by_key(|a| std::cmp::Reverse(a.priority));
        Ok(accounts
            .into_iter()
            .map(|a| {
                a.payto_uri
                    .with_param("amount", &g.amount.to_string())
                    .with_param("message", &g.reserve_pub.to_string())
                    .to_string()
            })
            .collect())
    }

    async fn create_withdrawal(
        &self,
        kind: WithdrawalKind,
        exchange: &BaseUrl,
        amount: Amount,
        bank: Option<BankOperation>,
    ) -> WalletResult<String> {
        let ex = self.known_exchange(exchange)?;
        if amount.currency() != &ex.currency {
            return Err(WalletError::BadRequest(format!(
                "{exchange} deals in {}, not {}",
                ex.currency,
                amount.currency()
            )));
        }
        let denoms = self.lasting_denominations(exchange)?;
        let selection = select_withdrawal(&amount, &denoms, Timestamp::now());
        if selection.coins.is_empty() {
            return Err(WalletError::DenominationsInsufficient(amount.to_string()));
        }
        let reserve_priv = EddsaPrivateKey::generate()?;
        let group_id = new_group_id()?;
        let state = match kind {
            WithdrawalKind::BankIntegrated => WithdrawalState::PendingRegistration,
            WithdrawalKind::Manual => WithdrawalState::WaitingFunds,
        };
        let row = WithdrawalGroupRow {
            group_id: group_id.clone(),
            kind,
            state,
            exchange: exchange.clone(),
            currency: ex.currency,
            reserve_pub: reserve_priv.public(),
            reserve_priv,
            seed: cardcash_crypto::random_bytes::<32>()?,
            amount,
            bank,
            exchange_account: None,
            created: Timestamp::now(),
            finished: None,
            last_error: None,
        };
        self.store()
            .create_withdrawal(row, planchet_rows(&selection.planchet_denoms()))
            .await?;
        self.notify(Notification::TransactionStateTransition {
            transaction_id: transaction_id(&group_id),
            old_state: "none".into(),
            new_state: state.as_str().into(),
        });
        self.notify(Notification::BalanceChange);
        Ok(group_id)
    }

    /// Fetches and verifies the exchange's keys again when the stored ones are older than
    /// [`KEYS_MAX_AGE`].
    pub(crate) async fn refresh_keys_if_stale(&self, exchange: &BaseUrl) -> WalletResult<()> {
        let known = self.known_exchange(exchange)?;
        if Timestamp::now().saturating_sub(known.keys_updated) > KEYS_MAX_AGE {
            self.add_exchange(exchange).await?;
        }
        Ok(())
    }

    /// Adds the exchange if the wallet does not know it, or updates its keys if they are
    /// stale; a known exchange with fresh keys costs no request.
    pub(crate) async fn ensure_exchange(&self, exchange: &BaseUrl) -> WalletResult<()> {
        if self.store().exchange(exchange)?.is_none() {
            self.add_exchange(exchange).await?;
            return Ok(());
        }
        self.refresh_keys_if_stale(exchange).await
    }

    fn group(&self, group_id: &str) -> WalletResult<WithdrawalGroupRow> {
        self.store()
            .withdrawal(group_id)?
            .ok_or_else(|| WalletError::UnknownTransaction(transaction_id(group_id)))
    }

    /// Works on every unfinished withdrawal until all are done or aborted, or until
    /// `deadline` (then [`WalletError::Incomplete`]). A withdrawal waiting for money the user
    /// has not wired yet waits as long as it is allowed to.
    pub async fn run_until_done(&self, deadline: Option<Instant>) -> WalletResult<()> {
        // Each withdrawal runs on its own task, so one waiting for a wire transfer does not
        // hold up another; one that fails for good is not tried again in this run, and the
        // first such error is the run's answer once the others are done.
        let mut failed: Vec<String> = Vec::new();
        let mut first_error = None;
        // Refreshes are short (a melt and a reveal): one after the other, first — the
        // unfinished ones, then those of coins about to expire.
        for r in self.store().refreshes()? {
            if r.state != RefreshState::Done
                && let Err(e) = self.process_refresh(&r.refresh_id).await
            {
                if matches!(e, WalletError::Halted(_)) {
                    return Err(e);
                }
                first_error.get_or_insert(e);
            }
        }
        // Payments a crash left unanswered, then the change and refunds of spent coins.
        if let Err(e) = self.resume_purchases().await {
            if matches!(e, WalletError::Halted(_)) {
                return Err(e);
            }
            first_error.get_or_insert(e);
        }
        self.pick_up_auto_refunds().await?;
        if let Err(e) = self.refresh_remainders().await {
            if matches!(e, WalletError::Halted(_)) {
                return Err(e);
            }
            first_error.get_or_insert(e);
        }
        if let Err(e) = self.refresh_expiring_coins().await {
            if matches!(e, WalletError::Halted(_)) {
                return Err(e);
            }
            first_error.get_or_insert(e);
        }
        // Coins of revoked denominations go back into their reserves, withdrawn again below.
        if let Err(e) = self.recoup_revoked_coins().await {
            if matches!(e, WalletError::Halted(_)) {
                return Err(e);
            }
            first_error.get_or_insert(e);
        }
        loop {
            let pending: Vec<String> = self
                .store()
                .withdrawals()?
                .into_iter()
                .filter(|g| !g.state.is_final() && !failed.contains(&g.group_id))
                .map(|g| g.group_id)
                .collect();
            if pending.is_empty() {
                return first_error.map_or(Ok(()), Err);
            }
            let mut tasks = tokio::task::JoinSet::new();
            for group in pending {
                let wallet = self.clone();
                tasks.spawn(async move {
                    let result = wallet.process_until(&group, None, deadline).await;
                    (group, result)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                let (group, result) =
                    joined.map_err(|e| WalletError::Incomplete(format!("worker: {e}")))?;
                if let Err(e) = result {
                    // Out of time: everything else is out of time too.
                    if matches!(e, WalletError::Incomplete(_) | WalletError::Halted(_)) {
                        tasks.abort_all();
                        return Err(e);
                    }
                    failed.push(group);
                    first_error.get_or_insert(e);
                }
            }
        }
    }

    /// Works on one withdrawal (by transaction id) until it is done or aborted, or until
    /// `deadline`. Returns its final state.
    pub async fn process_withdrawal(
        &self,
        transaction: &str,
        deadline: Option<Instant>,
    ) -> WalletResult<WithdrawalState> {
        let group = group_of(transaction)?.to_owned();
        self.group(&group)?;
        self.process_until(&group, None, deadline).await
    }

    /// The state machine's loop for one group: until a final state, `stop_at`, or the
    /// deadline. Transient errors are recorded, announced and retried with a backoff.
    async fn process_until(
        &self,
        group_id: &str,
        stop_at: Option<WithdrawalState>,
        deadline: Option<Instant>,
    ) -> WalletResult<WithdrawalState> {
        // One worker per group: wait for another task of this wallet to let go of it (the
        // wake-up is registered before looking, so none is missed).
        let _busy = loop {
            let idle = self.inner.idle.notified();
            if let Some(guard) = BusyGuard::take(self, group_id) {
                break guard;
            }
            idle.await;
        };
        let mut backoff = BACKOFF.0;
        loop {
            let g = self.group(group_id)?;
            if g.state.is_final() || Some(g.state) == stop_at {
                return Ok(g.state);
            }
            let window = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(WalletError::Incomplete(format!(
                            "{} is {}",
                            transaction_id(group_id),
                            g.state.as_str()
                        )));
                    }
                    left.min(LONG_POLL)
                }
                None => LONG_POLL,
            };
            match self.step(&g, window).await {
                Ok(state) => {
                    backoff = BACKOFF.0;
                    if state != g.state {
                        self.notify(Notification::TransactionStateTransition {
                            transaction_id: transaction_id(group_id),
                            old_state: g.state.as_str().into(),
                            new_state: state.as_str().into(),
                        });
                        if matches!(state, WithdrawalState::Done | WithdrawalState::Aborted) {
                            self.notify(Notification::BalanceChange);
                        }
                    }
                }
                Err(e) => {
                    self.store().record_error(group_id, e.to_string()).await?;
                    self.notify(Notification::Error {
                        transaction_id: transaction_id(group_id),
                        error: e.to_json(),
                    });
                    if !e.is_transient() {
                        return Err(e);
                    }
                    tracing::info!(group = group_id, error = %e, backoff_ms = backoff.as_millis(), "withdrawal: retrying");
                    let wait = match deadline {
                        Some(d) => backoff.min(d.saturating_duration_since(Instant::now())),
                        None => backoff,
                    };
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        }
    }

    /// One step from the group's state; returns the state afterwards.
    async fn step(
        &self,
        g: &WithdrawalGroupRow,
        window: Duration,
    ) -> WalletResult<WithdrawalState> {
        match g.state {
            WithdrawalState::PendingRegistration => self.register(g).await,
            WithdrawalState::WaitingConfirmation => self.wait_for_confirmation(g, window).await,
            WithdrawalState::WaitingFunds => self.wait_for_funds(g, window).await,
            WithdrawalState::Withdrawing => self.withdraw_coins(g).await,
            s @ (WithdrawalState::Done | WithdrawalState::Aborted) => Ok(s),
        }
    }

    fn bank_of<'g>(&self, g: &'g WithdrawalGroupRow) -> WalletResult<&'g BankOperation> {
        g.bank.as_ref().ok_or_else(|| {
            WalletError::Store(cardcash_store::StoreError::Corrupt(format!(
                "bank-integrated withdrawal {} without its bank",
                g.group_id
            )))
        })
    }

    async fn transition(
        &self,
        g: &WithdrawalGroupRow,
        to: WithdrawalState,
        account: Option<PaytoUri>,
    ) -> WalletResult<WithdrawalState> {
        self.store()
            .transition(&g.group_id, g.state, to, account)
            .await?;
        // Whoever moved it, the database has the truth.
        Ok(self.group(&g.group_id)?.state)
    }

    /// Registers the reserve with the bank: the exchange account is the first of the
    /// exchange's accounts (by priority) of a wire type the bank serves that the bank accepts
    /// (C2EC refuses any account but its own exchange account).
    async fn register(&self, g: &WithdrawalGroupRow) -> WalletResult<WithdrawalState> {
        let op = self.bank_of(g)?;
        let bank = self.bank_client(&op.integration_base);
        let status = bank
            .withdrawal_operation(&op.wopid, None, Duration::ZERO)
            .await?;
        if status.status == WithdrawalStatus::Aborted {
            return self.transition(g, WithdrawalState::Aborted, None).await;
        }
        if status.selected_reserve_pub == Some(g.reserve_pub) {
            // Registered before a crash took the answer.
            let state = self
                .transition(
                    g,
                    WithdrawalState::WaitingConfirmation,
                    status.selected_exchange_account,
                )
                .await?;
            return self.halt_if(Step::AfterRegistration, state);
        }
        let exchange = self.known_exchange(&g.exchange)?;
        let mut accounts: Vec<_> = exchange
            .keys
            .accounts
            .iter()
            .filter(|a| {
                status.wire_types.is_empty()
                    || status
                        .wire_types
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(a.payto_uri.target_type()))
            })
            .collect();
        accounts.sort_by_key(|a| std::cmp::Reverse(a.priority));
        let mut last_refusal = None;
        for account in accounts {
            let selection = BankWithdrawalOperationPostRequest {
                reserve_pub: g.reserve_pub,
                selected_exchange: account.payto_uri.clone(),
                amount: status.amount.is_none().then_some(g.amount),
            };
            match bank.select(&op.wopid, &selection).await {
                Ok(_) => {
                    let state = self
                        .transition(
                            g,
                            WithdrawalState::WaitingConfirmation,
                            Some(account.payto_uri.clone()),
                        )
                        .await?;
                    return self.halt_if(Step::AfterRegistration, state);
                }
                Err(e) if e.error_code() == Some(ErrorCode::BankAccountIsNotExchange) => {
                    last_refusal = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(match last_refusal {
            Some(e) => e.into(),
            None => WalletError::BadRequest(format!(
                "{} has no account of a wire type the bank serves ({})",
                g.exchange,
                status.wire_types.join(", ")
            )),
        })
    }

    fn halt_if(&self, step: Step, state: WithdrawalState) -> WalletResult<WithdrawalState> {
        self.at_step(step)?;
        Ok(state)
    }

    /// Waits (one long poll) for the bank to confirm the operation.
    async fn wait_for_confirmation(
        &self,
        g: &WithdrawalGroupRow,
        window: Duration,
    ) -> WalletResult<WithdrawalState> {
        let op = self.bank_of(g)?;
        let status = self
            .bank_client(&op.integration_base)
            .withdrawal_operation(&op.wopid, Some(WithdrawalStatus::Selected), window)
            .await?;
        match status.status {
            WithdrawalStatus::Confirmed => {
                self.transition(g, WithdrawalState::WaitingFunds, None)
                    .await
            }
            WithdrawalStatus::Aborted => self.transition(g, WithdrawalState::Aborted, None).await,
            WithdrawalStatus::Pending | WithdrawalStatus::Selected => Ok(g.state),
        }
    }

    /// Waits (one long poll) for the exchange to show the reserve; then fixes the coins for
    /// the balance it holds (fees included) and moves on to withdrawing.
    async fn wait_for_funds(
        &self,
        g: &WithdrawalGroupRow,
        window: Duration,
    ) -> WalletResult<WithdrawalState> {
        let summary = match self
            .exchange_client(&g.exchange)
            .reserve(&g.reserve_pub, window)
            .await
        {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(g.state),
            Err(e) => return Err(e.into()),
        };
        if summary.balance.is_zero() {
            return Ok(g.state);
        }
        // The money may have taken days: choose from the exchange's current keys.
        self.refresh_keys_if_stale(&g.exchange).await?;
        let denoms = self.lasting_denominations(&g.exchange)?;
        let selection = select_withdrawal(&summary.balance, &denoms, Timestamp::now());
        if selection.coins.is_empty() {
            return Err(WalletError::DenominationsInsufficient(
                summary.balance.to_string(),
            ));
        }
        self.store()
            .start_withdrawing(&g.group_id, planchet_rows(&selection.planchet_denoms()))
            .await?;
        Ok(self.group(&g.group_id)?.state)
    }

    /// Withdraws every planchet not yet withdrawn, in batches; each answer is unblinded,
    /// verified and stored in one transaction.
    async fn withdraw_coins(&self, g: &WithdrawalGroupRow) -> WalletResult<WithdrawalState> {
        let denoms: HashMap<HashCode, Denom> = self
            .store()
            .denominations(&g.exchange)?
            .into_iter()
            .map(|d| (d.h_denom_pub, d))
            .collect();
        let all = self.store().planchets(&g.group_id)?;
        let total = u32::try_from(all.len()).unwrap_or(u32::MAX);
        let todo: Vec<PlanchetRow> = all.into_iter().filter(|p| !p.withdrawn).collect();
        let mut withdrawn = total - u32::try_from(todo.len()).unwrap_or(total);
        let client = self.exchange_client(&g.exchange);
        for chunk in todo.chunks(BATCH) {
            // The exchange's R values for the CS planchets (the same nonce gives the same R).
            let mut inputs = Vec::with_capacity(chunk.len());
            for p in chunk {
                let denom = denoms.get(&p.h_denom_pub).cloned().ok_or_else(|| {
                    WalletError::Incomplete(format!(
                        "denomination {} is no longer known",
                        p.h_denom_pub
                    ))
                })?;
                let cs_r = match &denom.key {
                    DenomKey::Rsa(_) => None,
                    DenomKey::Cs(_) => {
                        let ewv = client
                            .csr_withdraw(&CsrWithdrawRequest {
                                nonce: CsNonce::from_bytes(cs_nonce(&g.seed, p.index)),
                                denom_pub_hash: denom.h_denom_pub,
                            })
                            .await?
                            .ewv;
                        match ewv {
                            ExchangeWithdrawValues::Cs { r_pub_0, r_pub_1 } => {
                                Some([*r_pub_0.as_bytes(), *r_pub_1.as_bytes()])
                            }
                            ExchangeWithdrawValues::Rsa => {
                                return Err(WalletError::MalformedResponse(
                                    "/csr-withdraw answered RSA values for a CS denomination"
                                        .into(),
                                ));
                            }
                        }
                    }
                };
                inputs.push((p.index, denom, cs_r));
            }
            // Blinding is CPU work: off the executor.
            let (seed, reserve) = (g.seed, g.reserve_priv.clone());
            let planchets = tokio::task::spawn_blocking(move || {
                inputs
                    .iter()
                    .map(|(i, d, r)| Planchet::derive(&seed, *i, d, &reserve, *r))
                    .collect::<WalletResult<Vec<_>>>()
            })
            .await
            .map_err(|e| WalletError::Incomplete(format!("blinding: {e}")))??;
            let response = client
                .batch_withdraw(
                    &g.reserve_pub,
                    &BatchWithdrawRequest {
                        planchets: planchets.iter().map(|p| p.request.clone()).collect(),
                    },
                )
                .await?;
            self.at_step(Step::AfterWithdrawRequest)?;
            if response.ev_sigs.len() != planchets.len() {
                return Err(WalletError::MalformedResponse(format!(
                    "{} signatures for {} planchets",
                    response.ev_sigs.len(),
                    planchets.len()
                )));
            }
            let (group_id, exchange) = (g.group_id.clone(), g.exchange.clone());
            let coins = tokio::task::spawn_blocking(move || {
                let now = Timestamp::now();
                planchets
                    .iter()
                    .zip(&response.ev_sigs)
                    .map(|(p, s)| {
                        Ok(CoinRow {
                            denom_sig: p.unblind(&s.ev_sig)?,
                            coin_pub: p.coin_pub,
                            coin_priv: p.coin_priv.clone(),
                            exchange: exchange.clone(),
                            h_denom_pub: p.denom.h_denom_pub,
                            value: p.denom.value,
                            status: CoinStatus::Fresh,
                            origin: transaction_id(&group_id),
                            index: p.index,
                            created: now,
                            cs_r: p.cs_r,
                            remaining: p.denom.value,
                        })
                    })
                    .collect::<WalletResult<Vec<_>>>()
            })
            .await
            .map_err(|e| WalletError::Incomplete(format!("unblinding: {e}")))??;
            let n = u32::try_from(coins.len()).unwrap_or(u32::MAX);
            self.store().apply_withdrawn(&g.group_id, coins).await?;
            withdrawn += n;
            self.notify(Notification::WithdrawProgress {
                transaction_id: transaction_id(&g.group_id),
                withdrawn,
                total,
            });
        }
        Ok(self.group(&g.group_id)?.state)
    }

    /// The value of each group's planchets (all, and those not yet withdrawn).
    fn planned(&self, g: &WithdrawalGroupRow) -> WalletResult<(Amount, Amount)> {
        let values: HashMap<HashCode, Amount> = self
            .store()
            .denominations(&g.exchange)?
            .into_iter()
            .map(|d| (d.h_denom_pub, d.value))
            .collect();
        let planchets = self.store().planchets(&g.group_id)?;
        let value = |p: &PlanchetRow| {
            values
                .get(&p.h_denom_pub)
                .copied()
                .unwrap_or(Amount::zero(&g.currency))
        };
        Ok((
            sum(&g.currency, planchets.iter().map(value)),
            sum(
                &g.currency,
                planchets.iter().filter(|p| !p.withdrawn).map(value),
            ),
        ))
    }

    /// The balance per currency: fresh coins, and coins of unfinished withdrawals.
    pub fn get_balances(&self) -> WalletResult<Vec<Balance>> {
        let mut out: BTreeMap<String, (Amount, Amount)> = BTreeMap::new();
        let zero = |c: &Currency| (Amount::zero(c), Amount::zero(c));
        // Melt fees by denomination: a spent coin's remainder is coming back only when it is
        // worth more than melting it costs (dust stays at the exchange).
        let mut melt_fees: HashMap<HashCode, Amount> = HashMap::new();
        let mut read: Vec<BaseUrl> = Vec::new();
        for coin in self.store().coins()? {
            let c = *coin.value.currency();
            let entry = out.entry(c.to_string()).or_insert_with(|| zero(&c));
            if coin.status == CoinStatus::Fresh {
                entry.0 = sum(&c, [entry.0, coin.value]);
            } else if coin.status == CoinStatus::Spent && !coin.remaining.is_zero() {
                if !read.contains(&coin.exchange) {
                    for d in self.store().denominations(&coin.exchange)? {
                        melt_fees.insert(d.h_denom_pub, d.fee_refresh);
                    }
                    read.push(coin.exchange.clone());
                }
                let fee = melt_fees
                    .get(&coin.h_denom_pub)
                    .copied()
                    .unwrap_or(coin.remaining);
                if coin.remaining.to_units() > fee.to_units() {
                    entry.1 = sum(&c, [entry.1, coin.remaining]);
                }
            }
        }
        let outgoing = self.payments_under_way()?;
        for g in self.store().withdrawals()? {
            let entry = out
                .entry(g.currency.to_string())
                .or_insert_with(|| zero(&g.currency));
            if !g.state.is_final() {
                let (_, open) = self.planned(&g)?;
                entry.1 = sum(&g.currency, [entry.1, open]);
            }
        }
        for r in self.store().refreshes()? {
            if r.state != RefreshState::Done {
                let currency = *r.amount.currency();
                let entry = out
                    .entry(currency.to_string())
                    .or_insert_with(|| zero(&currency));
                entry.1 = sum(&currency, [entry.1, self.refresh_effective(&r)?]);
            }
        }
        Ok(out
            .into_iter()
            .map(|(currency, (available, pending_incoming))| Balance {
                pending_outgoing: outgoing
                    .get(&currency)
                    .copied()
                    .unwrap_or(Amount::zero(available.currency())),
                currency,
                available,
                pending_incoming,
            })
            .collect())
    }

    /// Every withdrawal, oldest first.
    pub fn get_transactions(&self) -> WalletResult<Vec<Transaction>> {
        let mut out: Vec<Transaction> = self
            .store()
            .withdrawals()?
            .into_iter()
            .map(|g| {
                let (planned, _) = self.planned(&g)?;
                // Coins recouped went back into the reserve and were withdrawn again: count
                // what the withdrawal gave in the end.
                let recouped = self.store().recouped_value(&g.group_id, &g.currency)?;
                let effective = planned
                    .checked_sub(&recouped)
                    .unwrap_or(Amount::zero(&g.currency));
                Ok(Transaction {
                    transaction_id: transaction_id(&g.group_id),
                    kind: "withdrawal",
                    withdrawal_type: Some(g.kind.as_str()),
                    state: g.state.as_str(),
                    exchange_base_url: g.exchange.to_string(),
                    amount_raw: g.amount,
                    amount_effective: effective,
                    reserve_pub: g.reserve_pub.to_string(),
                    order: None,
                    exchange_payto_uris: match g.kind {
                        WithdrawalKind::Manual => self.payto_uris(&g)?,
                        WithdrawalKind::BankIntegrated => Vec::new(),
                    },
                    timestamp: g.created,
                    error: g.last_error.clone(),
                })
            })
            .collect::<WalletResult<_>>()?;
        for r in self.store().refreshes()? {
            out.push(Transaction {
                transaction_id: refresh_transaction_id(&r.refresh_id),
                kind: "refresh",
                withdrawal_type: None,
                state: r.state.as_str(),
                exchange_base_url: r.exchange.to_string(),
                amount_raw: r.amount,
                amount_effective: self.refresh_effective(&r)?,
                reserve_pub: String::new(),
                order: None,
                exchange_payto_uris: Vec::new(),
                timestamp: r.created,
                error: r.last_error.clone(),
            });
        }
        out.extend(self.purchase_transactions()?);
        out.sort_by_key(|t| t.timestamp);
        Ok(out)
    }

    /// Every coin.
    pub fn list_coins(&self) -> WalletResult<Vec<CoinSummary>> {
        Ok(self
            .store()
            .coins()?
            .into_iter()
            .map(|c| CoinSummary {
                coin_pub: c.coin_pub.to_string(),
                denom_pub_hash: c.h_denom_pub.to_string(),
                exchange_base_url: c.exchange.to_string(),
                value: c.value,
                remaining: c.remaining,
                status: c.status.as_str(),
                transaction_id: c.origin.clone(),
            })
            .collect())
    }
}

fn parse_url(text: &str) -> WalletResult<BaseUrl> {
    BaseUrl::parse(text).map_err(|e| WalletError::BadRequest(format!("{text:?}: {e}")))
}

/// Marks a group as worked on by this wallet until dropped.
struct BusyGuard<'w> {
    wallet: &'w Wallet,
    group: String,
}

impl<'w> BusyGuard<'w> {
    fn take(wallet: &'w Wallet, group: &str) -> Option<Self> {
        let mut busy = wallet
            .inner
            .busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if busy.iter().any(|g| g == group) {
            return None;
        }
        busy.push(group.to_owned());
        Some(Self {
            wallet,
            group: group.to_owned(),
        })
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let mut busy = self
            .wallet
            .inner
            .busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        busy.retain(|g| g != &self.group);
        drop(busy);
        self.wallet.inner.idle.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdraw_uris_as_c2ec_gives_them() {
        let (base, wopid) =
            parse_withdraw_uri("taler+http://withdraw/localhost:8082/taler-integration/ABC123")
                .unwrap();
        assert_eq!(base.as_str(), "http://localhost:8082/taler-integration/");
        assert_eq!(wopid, "ABC123");
        let (base, _) =
            parse_withdraw_uri("taler://withdraw/bank.example/taler-integration/W1").unwrap();
        assert_eq!(base.as_str(), "https://bank.example/taler-integration/");
        let pay = parse_withdraw_uri("taler://pay/shop.example/order/");
        assert!(matches!(pay, Err(WalletError::BadRequest(_))), "{pay:?}");
        assert!(parse_withdraw_uri("https://bank.example/").is_err());
        assert!(parse_withdraw_uri("taler://withdraw/").is_err());
    }

    #[test]
    fn transaction_ids_round_trip() {
        assert_eq!(group_of(&transaction_id("G1")).unwrap(), "G1");
        assert!(group_of("txn:payment:X").is_err());
    }
}
