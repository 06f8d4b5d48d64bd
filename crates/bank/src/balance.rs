//! Signed account balances and the debit rule.
//!
//! A Taler `Amount` is never negative, so a balance is a magnitude plus a sign (`Debit` = the
//! account owes the bank), the representation libeufin uses (`balance` + `has_debt`). An account
//! may go down to `-debit_limit`: customers have a limit of zero, the bank's own funding account a
//! large one. Pure arithmetic, no IO; the `db` layer stores the result.

use cardcash_util::{Amount, AmountError, Currency};
use serde::Serialize;

/// Which side of zero a balance is on (`credit_debit_indicator` in the Core Bank API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sign {
    /// Zero or positive: the bank owes the account holder.
    Credit,
    /// Negative: the account holder owes the bank.
    Debit,
}

/// A signed balance: `amount` with a `sign`. Zero is always `Credit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub amount: Amount,
    #[serde(rename = "credit_debit_indicator")]
    pub sign: Sign,
}

/// Why a balance change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    /// The debit would take the account below `-debit_limit`.
    #[error("insufficient funds: the debit would exceed the account's debit limit")]
    Insufficient,
    /// The result does not fit an `Amount` (above 2^52) or currencies differ.
    #[error(transparent)]
    Amount(#[from] AmountError),
}

impl Balance {
    /// A zero balance.
    pub fn zero(currency: &Currency) -> Self {
        Self {
            amount: Amount::zero(currency),
            sign: Sign::Credit,
        }
    }

    /// Builds a balance from its stored parts, normalising "negative zero" to `Credit`.
    pub fn new(amount: Amount, is_debit: bool) -> Self {
        let sign = if is_debit && !amount.is_zero() {
            Sign::Debit
        } else {
            Sign::Credit
        };
        Self { amount, sign }
    }

    /// Whether the balance is below zero.
    pub fn is_debit(&self) -> bool {
        self.sign == Sign::Debit
    }

    /// The balance in 1e-8 units as a signed integer (|units| < 2^80, fits `i128`).
    pub fn to_signed_units(&self) -> i128 {
        // `to_units` is at most 2^52 * 10^8 < 2^79, so the conversion cannot fail.
        let units = i128::try_from(self.amount.to_units()).unwrap_or(i128::MAX);
        match self.sign {
            Sign::Credit => units,
            Sign::Debit => -units,
        }
    }

    fn from_signed_units(currency: &Currency, units: i128) -> Result<Self, AmountError> {
        Ok(Self::new(
            Amount::from_units(currency, units.unsigned_abs())?,
            units < 0,
        ))
    }

    /// The balance after paying `amount` out, if it stays at or above `-debit_limit`.
    pub fn debit(&self, amount: &Amount, debit_limit: &Amount) -> Result<Self, BalanceError> {
        self.check_currency(amount)?;
        self.check_currency(debit_limit)?;
        let after = self.to_signed_units() - signed(amount);
        if after < -signed(debit_limit) {
            return Err(BalanceError::Insufficient);
        }
        Ok(Self::from_signed_units(self.amount.currency(), after)?)
    }

    /// The balance after receiving `amount`; fails only above the largest representable amount.
    pub fn credit(&self, amount: &Amount) -> Result<Self, BalanceError> {
        self.check_currency(amount)?;
        let after = self.to_signed_units() + signed(amount);
        Ok(Self::from_signed_units(self.amount.currency(), after)?)
    }

    fn check_currency(&self, other: &Amount) -> Result<(), AmountError> {
        if self.amount.currency() == other.currency() {
            Ok(())
        } else {
            Err(AmountError::CurrencyMismatch(
                *self.amount.currency(),
                *other.currency(),
            ))
        }
    }
}

fn signed(amount: &Amount) -> i128 {
    i128::try_from(amount.to_units()).unwrap_or(i128::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amt(s: &str) -> Amount {
        s.parse().unwrap()
    }

    fn kudos() -> Currency {
        "KUDOS".parse().unwrap()
    }

    #[test]
    fn debit_within_positive_balance() {
        let b = Balance::new(amt("KUDOS:10"), false);
        let after = b.debit(&amt("KUDOS:3.5"), &amt("KUDOS:0")).unwrap();
        assert_eq!(after, Balance::new(amt("KUDOS:6.5"), false));
    }

    #[test]
    fn debit_to_exactly_zero_is_allowed_without_limit() {
        let b = Balance::new(amt("KUDOS:1.25"), false);
        let after = b.debit(&amt("KUDOS:1.25"), &amt("KUDOS:0")).unwrap();
        assert_eq!(after, Balance::zero(&kudos()));
        assert!(!after.is_debit());
    }

    #[test]
    fn debit_below_zero_needs_a_limit() {
        let b = Balance::new(amt("KUDOS:1"), false);
        assert_eq!(
            b.debit(&amt("KUDOS:1.00000001"), &amt("KUDOS:0")),
            Err(BalanceError::Insufficient)
        );
        let after = b.debit(&amt("KUDOS:3"), &amt("KUDOS:2")).unwrap();
        assert_eq!(after, Balance::new(amt("KUDOS:2"), true));
        assert_eq!(
            after.debit(&amt("KUDOS:0.00000001"), &amt("KUDOS:2")),
            Err(BalanceError::Insufficient)
        );
    }

    #[test]
    fn credit_crosses_from_debt_to_credit() {
        let b = Balance::new(amt("KUDOS:2.5"), true);
        assert_eq!(
            b.credit(&amt("KUDOS:1")).unwrap(),
            Balance::new(amt("KUDOS:1.5"), true)
        );
        assert_eq!(
            b.credit(&amt("KUDOS:2.5")).unwrap(),
            Balance::zero(&kudos())
        );
        assert_eq!(
            b.credit(&amt("KUDOS:4")).unwrap(),
            Balance::new(amt("KUDOS:1.5"), false)
        );
    }

    #[test]
    fn negative_zero_is_credit() {
        assert_eq!(Balance::new(amt("KUDOS:0"), true).sign, Sign::Credit);
    }

    #[test]
    fn currency_mismatch_is_an_error() {
        let b = Balance::zero(&kudos());
        assert!(matches!(
            b.credit(&amt("EUR:1")),
            Err(BalanceError::Amount(AmountError::CurrencyMismatch(..)))
        ));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let max = Amount::max(&kudos());
        let b = Balance::new(max, false);
        assert!(matches!(
            b.credit(&amt("KUDOS:1")),
            Err(BalanceError::Amount(AmountError::OutOfRange))
        ));
    }

    proptest::proptest! {
        /// Random transfers between two accounts: what one loses the other gains (the pair's
        /// sum never changes), and no balance ever goes below its limit.
        #[test]
        fn transfers_conserve_money_and_respect_limits(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..5_000_000_000u64), 1..60),
            limit_a in 0u64..2_000_000_000u64,
        ) {
            let cur = kudos();
            let units = |u: u64| Amount::from_units(&cur, u128::from(u)).unwrap();
            let (limit_a, limit_b) = (units(limit_a), Amount::zero(&cur));
            let (mut a, mut b) = (Balance::zero(&cur), Balance::zero(&cur));
            for (a_pays, amount) in ops {
                let amount = units(amount);
                let (from, to, limit) = if a_pays {
                    (&mut a, &mut b, &limit_a)
                } else {
                    (&mut b, &mut a, &limit_b)
                };
                match from.debit(&amount, limit) {
                    Ok(after) => {
                        *to = to.credit(&amount).unwrap();
                        *from = after;
                    }
                    Err(BalanceError::Insufficient) => {
                        // Refused exactly when the debit would cross the limit.
                        let limit_units = i128::try_from(limit.to_units()).unwrap();
                        let amount_units = i128::try_from(amount.to_units()).unwrap();
                        proptest::prop_assert!(from.to_signed_units() - amount_units < -limit_units);
                    }
                    Err(e) => proptest::prop_assert!(false, "unexpected {e}"),
                }
                proptest::prop_assert_eq!(a.to_signed_units() + b.to_signed_units(), 0);
                proptest::prop_assert!(
                    a.to_signed_units() >= -i128::try_from(limit_a.to_units()).unwrap()
                );
                proptest::prop_assert!(b.to_signed_units() >= 0);
            }
        }
    }

    #[test]
    fn signed_units() {
        assert_eq!(
            Balance::new(amt("KUDOS:1.5"), true).to_signed_units(),
            -150_000_000
        );
    }
}
