//! An in-memory card processor with the behaviour of docs/CARDPROC-API.md, for benchmarks,
//! demos and tests that need a fault switch: approved cards are final at once, delayed ones
//! after `delay`, declined ones fail; an outage switch makes every call "unreachable"; refunds
//! are idempotent per key and never exceed the captured amount. No persistence.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cardcash_util::{Amount, PaytoTarget, PaytoUri};
use serde_json::json;

use super::{
    CardProvider, ProviderError, ProviderFuture, ProviderRefund, ProviderTransaction,
    ProviderTxState,
};

/// Processor host used in the payto URIs of this provider.
pub const HOST: &str = "cardproc.test";

/// Card outcomes of the test processor (the PANs of docs/CARDPROC-API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    Approved,
    Declined,
    DelayedFinality,
}

#[derive(Debug, Clone)]
struct FakeTx {
    amount: Amount,
    reference: String,
    card: Card,
    created: std::time::Instant,
    refunded: Amount,
}

/// The in-memory processor.
pub struct MemoryProvider {
    txs: Mutex<HashMap<u64, FakeTx>>,
    refunds: Mutex<HashMap<String, (u64, Amount)>>,
    next: AtomicU64,
    down: AtomicBool,
    pub delay: Duration,
    pub reads: AtomicU64,
}

impl MemoryProvider {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            txs: Mutex::new(HashMap::new()),
            refunds: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1000),
            down: AtomicBool::new(false),
            delay: Duration::from_millis(400),
            reads: AtomicU64::new(0),
        })
    }

    /// Runs a card payment of `amount` referencing `reference` (the WOPID); returns the id.
    pub fn pay(&self, reference: &str, amount: Amount, card: Card) -> String {
        let id = self.next.fetch_add(1, Ordering::SeqCst);

        self.txs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id,
                FakeTx {
                    refunded: Amount::zero(amount.currency()),
                    amount,
                    reference: reference.to_owned(),
                    card,
                    created: std::time::Instant::now(),
                },
            );
        id.to_string()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// What was refunded on a transaction.
    pub fn refunded(&self, tx_id: &str) -> Option<Amount> {
        let id: u64 = tx_id.parse().ok()?;
        self.txs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .map(|t| t.refunded)
    }

    pub fn refund_count(&self) -> usize {
        self.refunds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl CardProvider for MemoryProvider {
    fn name(&self) -> &str {
        "in-memory card processor"
    }

    fn payto_target_type(&self) -> &str {
        "card-transaction"
    }

    fn format_payto(&self, tx_id: &str) -> String {
        PaytoUri::card_transaction(HOST, tx_id)
            .map(|p| p.to_string())
            .unwrap_or_else(|_| format!("payto://card-transaction/{HOST}/{tx_id}"))
    }

    fn parse_payto(&self, payto: &PaytoUri) -> Option<String> {
        match payto.target() {
            PaytoTarget::CardTransaction {
                processor_host,
                transaction_id,
            } if processor_host == HOST => Some(transaction_id.clone()),
            _ => None,
        }
    }

    fn get_transaction<'a>(&'a self, tx_id: &'a str) -> ProviderFuture<'a, ProviderTransaction> {
        Box::pin(async move {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(ProviderError::Unreachable("503 outage".into()));
            }
            let id: u64 = tx_id.parse().map_err(|_| ProviderError::NotFound)?;
            let t = self
                .txs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&id)
                .cloned()
                .ok_or(ProviderError::NotFound)?;
            let state = match t.card {
                Card::Approved => ProviderTxState::Success,
                Card::Declined => ProviderTxState::Failed("DECLINE (DECLINED)".into()),
                Card::DelayedFinality if t.created.elapsed() >= self.delay => {
                    ProviderTxState::Success
                }
                Card::DelayedFinality => ProviderTxState::Pending,
            };
            Ok(ProviderTransaction {
                id: tx_id.to_owned(),
                state,
                amount: t.amount,
                merchant_reference: Some(t.reference.clone()),
                raw: json!({"id": id, "amount": t.amount.to_string()}),
            })
        })
    }

    fn refund<'a>(
        &'a self,
        tx_id: &'a str,
        amount: &'a Amount,
        key: &'a str,
    ) -> ProviderFuture<'a, ProviderRefund> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err(ProviderError::Unreachable("503 outage".into()));
            }
            let id: u64 = tx_id.parse().map_err(|_| ProviderError::NotFound)?;
            let mut refunds = self.refunds.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((tid, a)) = refunds.get(key) {
                return if *tid == id && a == amount {
                    Ok(ProviderRefund { id: key.to_owned() })
                } else {
                    Err(ProviderError::Refused("externalId reused".into()))
                };
            }
            let mut txs = self.txs.lock().unwrap_or_else(PoisonError::into_inner);
            let t = txs.get_mut(&id).ok_or(ProviderError::NotFound)?;
            let total = t
                .refunded
                .checked_add(amount)
                .map_err(|e| ProviderError::Refused(e.to_string()))?;
            if total > t.amount {
                return Err(ProviderError::Refused(
                    "refund exceeds captured amount".into(),
                ));
            }
            t.refunded = total;
            refunds.insert(key.to_owned(), (id, *amount));
            Ok(ProviderRefund { id: key.to_owned() })
        })
    }
}
