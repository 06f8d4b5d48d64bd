//! Denominations as the wallet uses them, read from a verified `/keys`, and the choice of coins
//! for a withdrawal (pure, no IO).
//!
//! Selection (wallet-core's `selectWithdrawalDenominations`, behaviour only): among the
//! denominations one may withdraw now, keep per value the one with the smallest withdraw fee
//! (then the latest withdraw expiry), then take greedily from the largest value down as many
//! coins as `value + fee_withdraw` fit into what is left. Large coins first means few coins and
//! so few fees; the fee is counted against the reserve, so the selection never costs more than
//! the reserve holds.

use std::collections::BTreeMap;

use cardcash_api::exchange::{DenominationGroupKeys, ExchangeKeysResponse};
use cardcash_crypto::{cs, rsa};
use cardcash_util::{Amount, HashCode, RelativeTime, Timestamp};

use crate::error::WalletError;

/// A denomination key of an exchange.
#[derive(Clone, Debug)]
pub struct Denom {
    pub h_denom_pub: HashCode,
    pub value: Amount,
    pub fee_withdraw: Amount,
    pub fee_deposit: Amount,
    pub fee_refresh: Amount,
    pub fee_refund: Amount,
    pub key: DenomKey,
    pub stamp_start: Timestamp,
    pub stamp_expire_withdraw: Timestamp,
    pub stamp_expire_deposit: Timestamp,
}

/// The public key of a denomination.
#[derive(Clone, Debug)]
pub enum DenomKey {
    Rsa(rsa::RsaPublicKey),
    Cs([u8; 32]),
}

impl DenomKey {
    /// `"RSA"` or `"CS"`, as `/keys` names the cipher.
    pub fn cipher(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RSA",
            Self::Cs(_) => "CS",
        }
    }

    /// The key's bytes as stored (RSA: GNUnet's encoding; CS: the 32-byte point).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Rsa(k) => k.encode(),
            Self::Cs(k) => k.to_vec(),
        }
    }

    /// The inverse of [`Self::to_bytes`].
    pub fn from_parts(cipher: &str, bytes: &[u8]) -> Option<Self> {
        match cipher {
            "RSA" => rsa::RsaPublicKey::decode(bytes).ok().map(Self::Rsa),
            "CS" => <[u8; 32]>::try_from(bytes).ok().map(Self::Cs),
            _ => None,
        }
    }
}

impl Denom {
    /// Whether a coin of this denomination may be withdrawn at `now`.
    pub fn withdrawable_at(&self, now: Timestamp) -> bool {
        self.stamp_start <= now && now < self.stamp_expire_withdraw
    }

    /// Whether its coins can no longer be spent `margin` after `now` (the wallet refreshes
    /// such coins while it still can, and withdraws no new ones).
    pub fn expires_within(&self, now: Timestamp, margin: RelativeTime) -> bool {
        now.saturating_add(margin) >= self.stamp_expire_deposit
    }
}

/// The denominations worth getting new coins of: none whose coins expire within `margin`.
pub fn lasting(denoms: &[Denom], now: Timestamp, margin: RelativeTime) -> Vec<Denom> {
    denoms
        .iter()
        .filter(|d| !d.expires_within(now, margin))
        .cloned()
        .collect()
}

/// Every denomination of `/keys` the wallet can use (age-restricted ones and lost keys are
/// left out). `/keys` must have been verified (`cardcash_client::verify_keys`).
pub fn denominations(keys: &ExchangeKeysResponse) -> Result<Vec<Denom>, WalletError> {
    let revoked: Vec<HashCode> = keys.recoup.iter().map(|r| r.h_denom_pub).collect();
    let mut out = Vec::new();
    for g in &keys.denominations {
        let entries: Vec<(DenomKey, HashCode, [Timestamp; 3], bool)> = match &g.keys {
            DenominationGroupKeys::Rsa { denoms } => denoms
                .iter()
                .map(|d| {
                    let k = rsa::RsaPublicKey::decode(d.rsa_pub.as_bytes()).map_err(|e| {
                        WalletError::MalformedResponse(format!("a denomination key: {e}"))
                    })?;
                    let h = k.h_denom_pub(0);
                    Ok((
                        DenomKey::Rsa(k),
                        h,
                        [
                            d.stamp_start,
                            d.stamp_expire_withdraw,
                            d.stamp_expire_deposit,
                        ],
                        d.lost,
                    ))
                })
                .collect::<Result<_, WalletError>>()?,
            DenominationGroupKeys::Cs { denoms } => denoms
                .iter()
                .map(|d| {
                    let k = *d.cs_pub.as_bytes();
                    (
                        DenomKey::Cs(k),
                        cs::h_denom_pub(&k, 0),
                        [
                            d.stamp_start,
                            d.stamp_expire_withdraw,
                            d.stamp_expire_deposit,
                        ],
                        d.lost,
                    )
                })
                .collect(),
            // Age restriction is not supported by this wallet yet.
            DenominationGroupKeys::RsaAgeRestricted { .. }
            | DenominationGroupKeys::CsAgeRestricted { .. } => Vec::new(),
        };
        for (key, h, [start, expire_withdraw, expire_deposit], lost) in entries {
            if lost || revoked.contains(&h) {
                continue;
            }
            out.push(Denom {
                h_denom_pub: h,
                value: g.value,
                fee_withdraw: g.fee_withdraw,
                fee_deposit: g.fee_deposit,
                fee_refresh: g.fee_refresh,
                fee_refund: g.fee_refund,
                key,
                stamp_start: start,
                stamp_expire_withdraw: expire_withdraw,
                stamp_expire_deposit: expire_deposit,
            });
        }
    }
    Ok(out)
}

/// The coins chosen for a withdrawal.
#[derive(Clone, Debug)]
pub struct Selection {
    /// `(denomination, count)`, largest value first.
    pub coins: Vec<(Denom, u32)>,
    /// What the coins are worth.
    pub total_value: Amount,
    /// What the exchange charges for withdrawing them.
    pub total_fee: Amount,
}

impl Selection {
    /// Value and fees: what the withdrawal takes from the reserve.
    pub fn total_cost(&self) -> Amount {
        // Both sums were checked against the budget they came from.
        self.total_value
            .checked_add(&self.total_fee)
            .unwrap_or(self.total_value)
    }

    /// The number of coins.
    pub fn count(&self) -> u32 {
        self.coins.iter().map(|(_, n)| n).sum()
    }

    /// The denomination of every coin in order (index `i` is planchet `i`).
    pub fn planchet_denoms(&self) -> Vec<&Denom> {
        self.coins
            .iter()
            .flat_map(|(d, n)| std::iter::repeat_n(d, *n as usize))
            .collect()
    }
}

/// Chooses coins worth as much of `budget` as possible, each coin's withdraw fee paid from
/// `budget` too (see the module documentation). Only denominations withdrawable at `now` and
/// of `budget`'s currency count. An empty selection when not even the smallest coin fits.
pub fn select_withdrawal(budget: &Amount, denoms: &[Denom], now: Timestamp) -> Selection {
    let currency = *budget.currency();
    // Per value (in units), the cheapest denomination to withdraw, then the longest-lived.
    let mut best: BTreeMap<u128, &Denom> = BTreeMap::new();
    for d in denoms {
        if d.value.currency() != &currency || !d.withdrawable_at(now) || d.value.is_zero() {
            continue;
        }
        let slot = best.entry(d.value.to_units()).or_insert(d);
        let cheaper = d.fee_withdraw.to_units() < slot.fee_withdraw.to_units();
        let same_fee_longer = d.fee_withdraw.to_units() == slot.fee_withdraw.to_units()
            && d.stamp_expire_withdraw > slot.stamp_expire_withdraw;
        if cheaper || same_fee_longer {
            *slot = d;
        }
    }
    let mut left = budget.to_units();
    let mut value = 0u128;
    let mut fee = 0u128;
    let mut coins = Vec::new();
    for d in best.values().rev() {
        let cost = d.value.to_units() + d.fee_withdraw.to_units();
        let n = left / cost;
        if n == 0 {
            continue;
        }
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        let n = u128::from(n32);
        left -= n * cost;
        value += n * d.value.to_units();
        fee += n * d.fee_withdraw.to_units();
        coins.push(((*d).clone(), n32));
    }
    // Both sums are at most the budget, which is an amount.
    let amount = |units| Amount::from_units(&currency, units).unwrap_or(Amount::zero(&currency));
    Selection {
        coins,
        total_value: amount(value),
        total_fee: amount(fee),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chf(s: &str) -> Amount {
        format!("CHF:{s}").parse().unwrap()
    }

    fn denom(value: &str, fee: &str, seed: u8) -> Denom {
        Denom {
            h_denom_pub: HashCode::from_bytes([seed; 64]),
            value: chf(value),
            fee_withdraw: chf(fee),
            fee_deposit: chf("0"),
            fee_refresh: chf("0"),
            fee_refund: chf("0"),
            key: DenomKey::Cs([seed; 32]),
            stamp_start: Timestamp::from_sql_micros(0).unwrap(),
            stamp_expire_withdraw: Timestamp::from_sql_micros(2_000_000_000_000_000).unwrap(),
            stamp_expire_deposit: Timestamp::from_sql_micros(3_000_000_000_000_000).unwrap(),
        }
    }

    fn counts(s: &Selection) -> Vec<(String, u32)> {
        s.coins
            .iter()
            .map(|(d, n)| (d.value.to_string(), *n))
            .collect()
    }

    #[test]
    fn greedy_from_the_largest_value_without_fees() {
        let denoms = [denom("1", "0", 1), denom("5", "0", 2), denom("0.1", "0", 3)];
        let s = select_withdrawal(&chf("17.3"), &denoms, Timestamp::now());
        assert_eq!(
            counts(&s),
            [
                ("CHF:5".into(), 3),
                ("CHF:1".into(), 2),
                ("CHF:0.1".into(), 3)
            ]
        );
        assert_eq!((s.total_value, s.total_fee), (chf("17.3"), chf("0")));
    }

    #[test]
    fn fees_are_paid_from_the_budget() {
        // 20 with 5 + 0.01: three 5s cost 15.03; the rest 4.97 buys four 1s (4.04), 0.93 is left
        // for nine 0.1s (0.09 fee each: 0.1 + 0.01 = 0.11 → eight fit: 0.88), 0.05 stays.
        let denoms = [
            denom("5", "0.01", 1),
            denom("1", "0.01", 2),
            denom("0.1", "0.01", 3),
        ];
        let s = select_withdrawal(&chf("20"), &denoms, Timestamp::now());
        assert_eq!(
            counts(&s),
            [
                ("CHF:5".into(), 3),
                ("CHF:1".into(), 4),
                ("CHF:0.1".into(), 8)
            ]
        );
        assert_eq!(s.total_value, chf("19.8"));
        assert_eq!(s.total_fee, chf("0.15"));
        assert!(s.total_cost() <= chf("20"));
        assert_eq!(s.count(), 15);
        assert_eq!(s.planchet_denoms().len(), 15);
    }

    #[test]
    fn denominations_expiring_within_the_margin_are_not_lasting() {
        let now = Timestamp::from_sql_micros(1_000_000_000_000_000).unwrap();
        let mut soon = denom("5", "0", 1);
        soon.stamp_expire_deposit = now.saturating_add(RelativeTime::from_secs(3600));
        let later = denom("1", "0", 2);
        let day = RelativeTime::from_secs(24 * 3600);
        assert!(soon.expires_within(now, day));
        assert!(!soon.expires_within(now, RelativeTime::ZERO));
        let kept = lasting(&[soon, later], now, day);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].value, chf("1"));
    }

    #[test]
    fn the_cheapest_key_of_a_value_is_used() {
        let denoms = [denom("1", "0.05", 1), denom("1", "0.01", 2)];
        let s = select_withdrawal(&chf("3"), &denoms, Timestamp::now());
        assert_eq!(s.coins.len(), 1);
        assert_eq!(s.coins[0].0.h_denom_pub, HashCode::from_bytes([2; 64]));
        assert_eq!(s.coins[0].1, 2, "3 / 1.01 = 2 coins");
    }

    #[test]
    fn expired_foreign_and_unaffordable_denominations_are_skipped() {
        let mut expired = denom("10", "0", 1);
        expired.stamp_expire_withdraw = Timestamp::from_sql_micros(1).unwrap();
        let mut eur = denom("1", "0", 2);
        eur.value = "EUR:1".parse().unwrap();
        let denoms = [expired, eur, denom("2", "0.5", 3)];
        let s = select_withdrawal(&chf("12"), &denoms, Timestamp::now());
        assert_eq!(counts(&s), [("CHF:2".into(), 4)]);
        let nothing = select_withdrawal(&chf("2.4"), &denoms[2..], Timestamp::now());
        assert!(nothing.coins.is_empty());
        assert_eq!(nothing.total_cost(), chf("0"));
    }
}
