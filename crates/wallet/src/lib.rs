//! A GNU Taler wallet (the model is GNU Taler's wallet-core: its behaviour, not its code).
//!
//! - A persistent wallet database (one SQLite file, [`db`]) in which a withdrawal is a
//!   resumable state machine: `pending-registration → waiting-confirmation → waiting-funds →
//!   withdrawing → done` (or `aborted`). Every transition is one transaction; planchet secrets
//!   derive from a per-group seed ([`planchet`]), so a retry after a crash sends the same
//!   request and the exchange answers it with the same signatures.
//! - Exchanges ([`Wallet::add_exchange`]): `/config` and `/keys` fetched and verified (every
//!   master signature, the signing keys, `exchange_sig`); an exchange that does not verify is
//!   refused. Terms of service by version (the `ETag`).
//! - Withdrawals: bank-integrated from a `taler://withdraw/…` URI (as C2EC's terminal shows
//!   it) and manual (a reserve and the payto URI to wire to); fee-minimising coin selection
//!   ([`denom::select_withdrawal`]); RSA and CS coins, each unblinded and verified.
//! - One embeddable request interface, [`Wallet::handle`] (operation name + JSON → JSON, errors
//!   as Taler JSON with official codes), and a stream of [`Notification`]s; the typed API
//!   beneath it is public too. The `cardcash wallet` CLI is built on `handle`.
//!
//! - Refresh ([`Wallet::force_refresh`]): a coin melted into fresh coins, `melting → revealing
//!   → done`, resumable the same way (everything derives from the stored refresh master secret).
//!   [`Wallet::run_until_done`] refreshes coins whose denomination expires within
//!   [`WalletConfig::expiry_margin`], and no new coins of such denominations are made.
//! - Test hooks ([`WalletConfig::halt_at`], [`WalletConfig::step_hook`]) at every point where
//!   an answer has arrived but is not stored yet: the crash tests stop or kill the wallet there.
//!
//! - Recoup ([`Wallet::recoup_revoked_coins`], part of `run_until_done`): withdrawn coins of a
//!   denomination the exchange revoked pay their value back into their reserve, which is
//!   withdrawn again; revoked denominations get no new coins.
//!
//! - Payments ([`Wallet::prepare_pay_for_uri`], [`Wallet::confirm_pay`]): `taler://pay` URIs
//!   claimed with a stored nonce, the contract verified (hash, 1101, base URL, trusted
//!   exchange), repurchase detection through `/paid`, a fee-minimising coin selection
//!   ([`select_pay_coins`]), coins marked spent with the signed payment before `/pay` leaves,
//!   the confirmation (1104) verified, the change refreshed; refunds picked up
//!   ([`Wallet::start_refund_query`], `taler://refund`) with every exchange signature checked
//!   and credited once; aborts of payments under way.
//!
//! Not yet: automatic refund pickup during the auto-refund period, recoup of refreshed coins
//! (recoup-refresh), age restriction. Everything the wallet asks a service goes through
//! `cardcash-client`.

pub mod db;
pub mod denom;
mod error;
mod exchange;
mod pay;
pub mod planchet;
mod recoup;
mod refresh;
mod request;
mod withdraw;

use std::path::Path;
use std::sync::{Arc, Mutex};

use cardcash_client::HttpClient;
use cardcash_util::RelativeTime;
use serde::Serialize;
use tokio::sync::broadcast;

pub use error::{WalletError, WalletResult};
pub use exchange::{CoinFees, ExchangeSummary, TermsOfService};
pub use pay::{
    ConfirmPayResult, PayCandidate, PaySelection, PreparePayResult, RefundQueryResult,
    payment_transaction_id, refund_transaction_id, select_pay_coins,
};
pub use refresh::refresh_transaction_id;
pub use withdraw::{
    Balance, BankWithdrawalDetails, CoinSummary, ManualWithdrawal, PlannedCoins, Transaction,
    WithdrawalPlan,
};

use crate::db::WalletStore;

/// A point in a withdrawal where a test can make the wallet stop as if it crashed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The reserve is registered with the bank and the wallet recorded it.
    AfterRegistration,
    /// A batch withdrawal was sent and answered, but the answer not yet stored.
    AfterWithdrawRequest,
    /// A melt was sent and answered, but the exchange's choice not yet stored.
    AfterMelt,
    /// A reveal was sent and answered, but the fresh coins not yet stored.
    AfterReveal,
    /// A recoup was sent and answered, but the answer not yet stored.
    AfterRecoup,
    /// A claim was sent and answered (its nonce stored before), but the contract not yet
    /// stored.
    AfterClaim,
    /// A payment was sent and answered (the coins were marked spent before), but the
    /// merchant's confirmation not yet stored.
    AfterPay,
}

impl Step {
    /// Every step, for hooks that name them.
    pub const ALL: [Step; 7] = [
        Step::AfterRegistration,
        Step::AfterWithdrawRequest,
        Step::AfterMelt,
        Step::AfterReveal,
        Step::AfterRecoup,
        Step::AfterClaim,
        Step::AfterPay,
    ];

    /// `after-registration`, `after-withdraw-request`, `after-melt`, `after-reveal`,
    /// `after-recoup`, `after-claim`, `after-pay`.
    pub fn name(self) -> &'static str {
        match self {
            Step::AfterRegistration => "after-registration",
            Step::AfterWithdrawRequest => "after-withdraw-request",
            Step::AfterMelt => "after-melt",
            Step::AfterReveal => "after-reveal",
            Step::AfterRecoup => "after-recoup",
            Step::AfterClaim => "after-claim",
            Step::AfterPay => "after-pay",
        }
    }
}

/// How a wallet behaves.
#[derive(Debug, Clone, Default)]
pub struct WalletConfig {
    /// Test hook: stop every withdrawal and refresh at this step with
    /// [`WalletError::Halted`].
    pub halt_at: Option<Step>,
    /// Test hook: called at every step before the wallet stores what it learnt (a crash test
    /// aborts the process there).
    pub step_hook: Option<fn(Step)>,
    /// Coins whose denomination can no longer be spent this long from now are refreshed by
    /// [`Wallet::run_until_done`], and no new ones are made (default
    /// [`DEFAULT_EXPIRY_MARGIN`]).
    pub expiry_margin: Option<RelativeTime>,
}

/// The default [`WalletConfig::expiry_margin`]: a week, so a wallet used now and then still
/// refreshes its coins in time.
pub const DEFAULT_EXPIRY_MARGIN: RelativeTime = RelativeTime::from_secs(7 * 24 * 3600);

/// Something changed in the wallet (for an app's screen; the CLI prints them as progress).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Notification {
    /// An exchange was added or its keys were updated.
    ExchangeUpdated {
        #[serde(rename = "exchangeBaseUrl")]
        exchange_base_url: String,
    },
    /// A transaction moved from one state to another.
    TransactionStateTransition {
        #[serde(rename = "transactionId")]
        transaction_id: String,
        #[serde(rename = "oldState")]
        old_state: String,
        #[serde(rename = "newState")]
        new_state: String,
    },
    /// Coins were withdrawn (of a group, so far, out of how many).
    WithdrawProgress {
        #[serde(rename = "transactionId")]
        transaction_id: String,
        withdrawn: u32,
        total: u32,
    },
    /// A step failed and will be retried.
    Error {
        #[serde(rename = "transactionId")]
        transaction_id: String,
        error: serde_json::Value,
    },
    /// The balance changed.
    BalanceChange,
}

/// A wallet on one database file. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Wallet {
    inner: Arc<Inner>,
}

struct Inner {
    store: WalletStore,
    http: HttpClient,
    notifications: broadcast::Sender<Notification>,
    config: WalletConfig,
    /// Groups being processed by this wallet now (one worker per group).
    busy: Mutex<Vec<String>>,
    /// Woken whenever a group stops being busy.
    idle: tokio::sync::Notify,
}

impl Wallet {
    /// Opens (or creates) the wallet database at `path`.
    pub fn open(path: &Path, config: WalletConfig) -> WalletResult<Self> {
        let store = WalletStore::open(path)?;
        let http = HttpClient::new()?;
        let (notifications, _) = broadcast::channel(1024);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                http,
                notifications,
                config,
                busy: Mutex::new(Vec::new()),
                idle: tokio::sync::Notify::new(),
            }),
        })
    }

    /// The notification stream (each subscriber sees what happens after it subscribed).
    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.inner.notifications.subscribe()
    }

    /// Stops writing to the database (a closed wallet answers reads only).
    pub fn close(&self) {
        self.inner.store.close();
    }

    fn expiry_margin(&self) -> RelativeTime {
        self.inner
            .config
            .expiry_margin
            .unwrap_or(DEFAULT_EXPIRY_MARGIN)
    }

    /// The exchange's denominations worth new coins now: not revoked, not about to expire.
    fn lasting_denominations(
        &self,
        exchange: &cardcash_util::BaseUrl,
    ) -> WalletResult<Vec<denom::Denom>> {
        let revoked = self.store().revoked_denominations(exchange)?;
        let mut all = self.store().denominations(exchange)?;
        all.retain(|d| !revoked.contains(&d.h_denom_pub));
        Ok(denom::lasting(
            &all,
            cardcash_util::Timestamp::now(),
            self.expiry_margin(),
        ))
    }

    fn store(&self) -> &WalletStore {
        &self.inner.store
    }

    /// The test hooks at `step`: the step hook, then [`WalletConfig::halt_at`].
    fn at_step(&self, step: Step) -> WalletResult<()> {
        if let Some(hook) = self.inner.config.step_hook {
            hook(step);
        }
        if self.inner.config.halt_at == Some(step) {
            return Err(WalletError::Halted(step));
        }
        Ok(())
    }

    fn notify(&self, n: Notification) {
        // Nobody listening is fine.
        let _ = self.inner.notifications.send(n);
    }
}
