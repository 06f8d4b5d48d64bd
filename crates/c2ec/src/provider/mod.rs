//! Card providers: who C2EC asks to attest a card payment and to refund it.
//!
//! The real C2EC's provider client has four operations (thesis, "providers" chapter): set up,
//! format the payto URI of a transaction, read a transaction, refund. [`CardProvider`] is the same
//! contract; [`cardproc::CardprocProvider`] implements it against our card processor (a Wallee-style
//! API). Tests may plug in their own provider. Never touches the database.

pub mod cardproc;
pub mod memory;

use std::future::Future;
use std::pin::Pin;

use cardcash_util::{Amount, PaytoUri};

/// Boxed future, so the trait stays object safe (`Arc<dyn CardProvider>`).
pub type ProviderFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// What a provider says about a card transaction's life cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderTxState {
    /// Not final yet (authorized, processing, …): ask again later.
    Pending,
    /// Final success: the money is captured.
    Success,
    /// Final failure: declined, failed or voided; carries the provider's reason.
    Failed(String),
}

/// A card transaction as read from the provider.
#[derive(Debug, Clone)]
pub struct ProviderTransaction {
    pub id: String,
    pub state: ProviderTxState,
    /// The captured amount for a success, else the authorized (requested) amount.
    pub amount: Amount,
    /// The reference the terminal put on the transaction; ours is the WOPID.
    pub merchant_reference: Option<String>,
    /// The provider's raw answer, kept as evidence in the audit trail.
    pub raw: serde_json::Value,
}

/// A refund the provider executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    pub id: String,
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Network error, timeout or 5xx: retry with backoff.
    #[error("card provider unreachable: {0}")]
    Unreachable(String),
    /// The provider does not know this transaction.
    #[error("card transaction not found")]
    NotFound,
    /// The provider refused (e.g. refund above the captured amount, conflicting idempotency key).
    #[error("card provider refused: {0}")]
    Refused(String),
    /// Our credentials were rejected: an operator must fix the configuration.
    #[error("card provider rejected our credentials: {0}")]
    Unauthorized(String),
    /// The provider answered something we cannot interpret.
    #[error("card provider answered unexpectedly: {0}")]
    Protocol(String),
}

impl ProviderError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }
}

/// A card payment provider (Wallee-style terminal backend).
pub trait CardProvider: Send + Sync + 'static {
    /// Display name for `/config` (`provider_name`).
    fn name(&self) -> &str;

    /// The payto target type of this provider's transactions (`card-transaction`).
    fn payto_target_type(&self) -> &str;

    /// The payto URI of one transaction (text form): the debit account in incoming history and
    /// the address the exchange sends refunds to.
    fn format_payto(&self, tx_id: &str) -> String;

    /// The transaction id inside one of our payto URIs, `None` when it is not ours.
    fn parse_payto(&self, payto: &PaytoUri) -> Option<String>;

    /// Reads a transaction.
    fn get_transaction<'a>(&'a self, tx_id: &'a str) -> ProviderFuture<'a, ProviderTransaction>;

    /// Refunds `amount` of a captured transaction. `idempotency_key` makes retries safe: the
    /// provider executes one refund per key.
    fn refund<'a>(
        &'a self,
        tx_id: &'a str,
        amount: &'a Amount,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderRefund>;
}
