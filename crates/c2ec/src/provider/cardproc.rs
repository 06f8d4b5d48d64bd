//! [`CardProvider`] for our card processor (docs/CARDPROC-API.md), through
//! `cardcash_client::CardprocClient` (C2EC never links the processor itself).
//!
//! Transactions are named by `payto://card-transaction/<processor host>/<id>` — the debit
//! account of a confirmed withdrawal and the address the exchange sends refunds to.

use cardcash_api::cardproc::{DecimalAmount, RefundRequest, RefundType, TransactionState};
use cardcash_client::{CardprocClient, ClientError};
use cardcash_util::{Amount, PaytoTarget, PaytoUri};

use super::{
    CardProvider, ProviderError, ProviderFuture, ProviderRefund, ProviderTransaction,
    ProviderTxState,
};

/// The payto target type of card transactions.
pub const TARGET_TYPE: &str = "card-transaction";

/// The card processor as a provider.
#[derive(Debug, Clone)]
pub struct CardprocProvider {
    name: String,
    /// Authority naming this processor inside payto URIs.
    host: String,
    client: CardprocClient,
}

impl CardprocProvider {
    pub fn new(name: &str, host: &str, client: CardprocClient) -> Self {
        Self {
            name: name.to_owned(),
            host: host.to_owned(),
            client,
        }
    }
}

fn map_err(e: ClientError) -> ProviderError {
    if e.is_not_found() {
        ProviderError::NotFound
    } else if e.is_retryable() {
        ProviderError::Unreachable(e.to_string())
    } else if e.is_unauthorized() {
        ProviderError::Unauthorized(e.to_string())
    } else if e.is_client_error() {
        ProviderError::Refused(e.to_string())
    } else {
        ProviderError::Protocol(e.to_string())
    }
}

impl CardProvider for CardprocProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn payto_target_type(&self) -> &str {
        TARGET_TYPE
    }

    fn format_payto(&self, tx_id: &str) -> String {
        match PaytoUri::card_transaction(&self.host, tx_id) {
            Ok(p) => p.to_string(),
            // Unreachable with a configured host and a processor id; keep a readable value.
            Err(_) => format!("payto://{TARGET_TYPE}/{}/{tx_id}", self.host),
        }
    }

    fn parse_payto(&self, payto: &PaytoUri) -> Option<String> {
        match payto.target() {
            PaytoTarget::CardTransaction {
                processor_host,
                transaction_id,
            } if processor_host.eq_ignore_ascii_case(&self.host)
                && transaction_id.parse::<u64>().is_ok() =>
            {
                Some(transaction_id.clone())
            }
            _ => None,
        }
    }

    fn get_transaction<'a>(&'a self, tx_id: &'a str) -> ProviderFuture<'a, ProviderTransaction> {
        Box::pin(async move {
            let id: u64 = tx_id.parse().map_err(|_| ProviderError::NotFound)?;
            let tx = self.client.read_transaction(id).await.map_err(map_err)?;
            let state = match tx.state {
                TransactionState::Fulfill => ProviderTxState::Success,
                s if s.is_final_failure() => ProviderTxState::Failed(
                    tx.failure_reason
                        .map(|r| format!("{s:?} ({r:?})"))
                        .unwrap_or_else(|| format!("{s:?}")),
                ),
                _ => ProviderTxState::Pending,
            };
            let amount = if state == ProviderTxState::Success {
                tx.completed_amount()
            } else {
                tx.authorization_amount()
            };
            let raw =
                serde_json::to_value(&tx).map_err(|e| ProviderError::Protocol(e.to_string()))?;
            Ok(ProviderTransaction {
                id: tx.id.to_string(),
                state,
                amount,
                merchant_reference: Some(tx.merchant_reference.clone()).filter(|r| !r.is_empty()),
                raw,
            })
        })
    }

    fn refund<'a>(
        &'a self,
        tx_id: &'a str,
        amount: &'a Amount,
        idempotency_key: &'a str,
    ) -> ProviderFuture<'a, ProviderRefund> {
        Box::pin(async move {
            let id: u64 = tx_id.parse().map_err(|_| ProviderError::NotFound)?;
            let req = RefundRequest {
                external_id: idempotency_key.to_owned(),
                transaction: id,
                amount: DecimalAmount::from(*amount),
                refund_type: RefundType::MerchantInitiatedOnline,
                merchant_reference: None,
            };
            let refund = self.client.refund(&req).await.map_err(map_err)?;
            Ok(ProviderRefund {
                id: refund.id.to_string(),
            })
        })
    }
}
