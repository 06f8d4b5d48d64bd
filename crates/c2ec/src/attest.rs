//! Attestation: may this card transaction fund this withdrawal?
//!
//! The real C2EC confirms from the provider's transaction data alone (thesis, "providers"); we
//! check more (our notes `spec/c2ec.md` §2.4): the state is final success, the currency and the
//! captured amount are exactly what the operation expects, and the transaction names this WOPID
//! as its merchant reference, so a payment made for one QR code cannot confirm another. Pure.

use cardcash_util::Amount;

use crate::provider::{ProviderTransaction, ProviderTxState};

/// What the operation expects from the card payment.
#[derive(Debug, Clone)]
pub struct Expectation<'a> {
    /// The WOPID in its base32 text form (what terminals put into `merchantReference`).
    pub wopid: &'a str,
    /// What the card must be charged: the withdrawal amount plus terminal (card) fees.
    pub charge: &'a Amount,
}

/// Why an attestation failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The provider reports a final failure (declined, failed, voided).
    Declined(String),
    /// The transaction is in another currency.
    CurrencyMismatch { expected: String, got: String },
    /// The captured amount differs from the expected charge.
    AmountMismatch { expected: Amount, got: Amount },
    /// The transaction references another (or no) withdrawal operation.
    NotBound { reference: Option<String> },
    /// The provider does not know the transaction.
    UnknownTransaction,
}

impl Rejection {
    /// A short reason for the audit trail and the logs.
    pub fn reason(&self) -> String {
        match self {
            Self::Declined(r) => format!("card payment failed: {r}"),
            Self::CurrencyMismatch { expected, got } => {
                format!("currency mismatch: expected {expected}, got {got}")
            }
            Self::AmountMismatch { expected, got } => {
                format!("amount mismatch: expected {expected}, got {got}")
            }
            Self::NotBound { reference } => format!(
                "transaction not bound to this withdrawal (merchant reference {})",
                reference.as_deref().unwrap_or("missing")
            ),
            Self::UnknownTransaction => "card transaction unknown to the provider".to_owned(),
        }
    }
}

/// The attestation decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Confirm the withdrawal and credit the reserve.
    Confirm,
    /// Not final yet: try again later.
    NotYetFinal,
    /// Abort. `refund` is true when money was captured for *this* operation and must go back
    /// to the card; a transaction bound to another operation is never touched.
    Reject { rejection: Rejection, refund: bool },
}

/// Decides whether `tx` funds the operation described by `expect`.
pub fn judge(tx: &ProviderTransaction, expect: &Expectation<'_>) -> Verdict {
    let bound = tx.merchant_reference.as_deref() == Some(expect.wopid);
    match &tx.state {
        ProviderTxState::Pending => Verdict::NotYetFinal,
        ProviderTxState::Failed(reason) => Verdict::Reject {
            rejection: Rejection::Declined(reason.clone()),
            refund: false,
        },
        ProviderTxState::Success if !bound => Verdict::Reject {
            rejection: Rejection::NotBound {
                reference: tx.merchant_reference.clone(),
            },
            refund: false,
        },
        ProviderTxState::Success if tx.amount.currency() != expect.charge.currency() => {
            Verdict::Reject {
                rejection: Rejection::CurrencyMismatch {
                    expected: expect.charge.currency().to_string(),
                    got: tx.amount.currency().to_string(),
                },
                refund: true,
            }
        }
        ProviderTxState::Success if &tx.amount != expect.charge => Verdict::Reject {
            rejection: Rejection::AmountMismatch {
                expected: *expect.charge,
                got: tx.amount,
            },
            refund: true,
        },
        ProviderTxState::Success => Verdict::Confirm,
    }
}

/// Delay before attestation attempt number `attempt` (1-based) when the provider is unreachable
/// or the transaction not final: `base · 2^(attempt-1)`, capped at `max`.
pub fn backoff(
    base: std::time::Duration,
    attempt: u32,
    max: std::time::Duration,
) -> std::time::Duration {
    let shift = attempt.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << shift).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const WOPID: &str = "W0P1D";

    fn tx(state: ProviderTxState, amount: &str, reference: Option<&str>) -> ProviderTransaction {
        ProviderTransaction {
            id: "42".into(),
            state,
            amount: amount.parse().unwrap(),
            merchant_reference: reference.map(str::to_owned),
            raw: serde_json::Value::Null,
        }
    }

    fn judge_one(t: &ProviderTransaction) -> Verdict {
        let charge: Amount = "CHF:20.5".parse().unwrap();
        judge(
            t,
            &Expectation {
                wopid: WOPID,
                charge: &charge,
            },
        )
    }

    #[test]
    fn final_success_with_exact_amount_and_binding_confirms() {
        let t = tx(ProviderTxState::Success, "CHF:20.50", Some(WOPID));
        assert_eq!(judge_one(&t), Verdict::Confirm);
    }

    #[test]
    fn not_final_waits() {
        let t = tx(ProviderTxState::Pending, "CHF:20.5", Some(WOPID));
        assert_eq!(judge_one(&t), Verdict::NotYetFinal);
    }

    #[test]
    fn decline_aborts_without_refund() {
        let t = tx(
            ProviderTxState::Failed("DECLINED".into()),
            "CHF:20.5",
            Some(WOPID),
        );
        assert_eq!(
            judge_one(&t),
            Verdict::Reject {
                rejection: Rejection::Declined("DECLINED".into()),
                refund: false
            }
        );
    }

    #[test]
    fn amount_mismatch_aborts_and_refunds() {
        let t = tx(ProviderTxState::Success, "CHF:20.49", Some(WOPID));
        match judge_one(&t) {
            Verdict::Reject {
                rejection: Rejection::AmountMismatch { got, .. },
                refund: true,
            } => assert_eq!(got.to_string(), "CHF:20.49"),
            other => panic!("unexpected verdict {other:?}"),
        }
    }

    #[test]
    fn currency_mismatch_aborts_and_refunds() {
        let t = tx(ProviderTxState::Success, "EUR:20.5", Some(WOPID));
        assert!(matches!(
            judge_one(&t),
            Verdict::Reject {
                rejection: Rejection::CurrencyMismatch { .. },
                refund: true
            }
        ));
    }

    #[test]
    fn payment_for_another_operation_is_never_refunded_by_us() {
        let t = tx(ProviderTxState::Success, "CHF:20.5", Some("OTHER"));
        assert_eq!(
            judge_one(&t),
            Verdict::Reject {
                rejection: Rejection::NotBound {
                    reference: Some("OTHER".into())
                },
                refund: false
            }
        );
        let t = tx(ProviderTxState::Success, "CHF:20.5", None);
        assert!(matches!(
            judge_one(&t),
            Verdict::Reject { refund: false, .. }
        ));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(backoff(base, 1, max), Duration::from_millis(100));
        assert_eq!(backoff(base, 2, max), Duration::from_millis(200));
        assert_eq!(backoff(base, 4, max), Duration::from_millis(800));
        assert_eq!(backoff(base, 5, max), max);
        assert_eq!(backoff(base, 100, max), max);
    }
}
