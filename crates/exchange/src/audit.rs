//! The money equations of the exchange, checked on a live database (`cardcash exchange audit`):
//!
//! 1. every credit is in a reserve's total: Σ reserves_in = Σ reserve totals;
//! 2. reserves in + recoups into reserves = balances + withdrawals (value + withdraw fee) +
//!    closings (the balances closed reserves had, closing fees included) — and per reserve;
//! 3. every coin's remaining value = its value − deposits − melts + (refunds − refund fees charged) −
//!    recoups (into its reserve, or into the coin it was refreshed from) + what coins refreshed
//!    from it recouped into it — and over all coins, where recoup-refreshes cancel out (a
//!    completing refund is charged less than the refund fee, never given more: see "Refunds
//!    never create money" in `crate::db`);
//! 4. what was wired to merchants + wire fees = the merchants' shares of the aggregated deposits
//!    (contribution − refunds − deposit fee, per coin), and deposits settled without a wire
//!    transfer owe nothing;
//! 5. incoming transfers that funded no reserve: bounced in = sent back + closing fees kept +
//!    pending (not sent back yet) — and per transfer, closing fee + sent back = amount once
//!    decided.
//!
//! 6. reserve closings: closed = sent back + closing fees kept (exchange revenue) + pending (not
//!    accepted by the Wire Gateway yet) — and per closing, closing fee + sent back = amount.
//!
//! 7. refreshes: every revealed melt covers its fresh coins (value + withdraw fee) and its melt
//!    fee — and in total (a melt not revealed yet has issued nothing).
//!
//! Every difference is reported, none repaired.

use cardcash_util::Amount;

use crate::db::{AuditSums, ExchangeStore};
use crate::error::ExchangeError;

/// The result of an audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub sums: AuditSums,
    /// One line per broken equation; empty when all hold.
    pub differences: Vec<String>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

fn add(a: &Amount, b: &Amount) -> Option<Amount> {
    a.checked_add(b).ok()
}

/// Checks the equations over `sums` (pure).
pub fn check(sums: AuditSums) -> AuditReport {
    let mut differences = Vec::new();
    if sums.reserves_in != sums.reserve_totals_in {
        differences.push(format!(
            "reserve credits {} differ from the reserves' totals {}",
            sums.reserves_in, sums.reserve_totals_in
        ));
    }
    let reserves_in = add(&sums.reserves_in, &sums.recoup.to_reserves);
    match add(&sums.reserve_balances, &sums.withdrawn_with_fee)
        .and_then(|a| add(&a, &sums.closing.closed))
    {
        Some(out) if Some(out) == reserves_in => {}
        out => differences.push(format!(
            "reserves in {} + recouped {} ≠ balances {} + withdrawn {} + closed {} (= {})",
            sums.reserves_in,
            sums.recoup.to_reserves,
            sums.reserve_balances,
            sums.withdrawn_with_fee,
            sums.closing.closed,
            out.map_or_else(|| "overflow".to_owned(), |a| a.to_string())
        )),
    }
    for reserve in &sums.reserves_off_balance {
        differences.push(format!(
            "reserve {reserve}: balance ≠ its credits + recoups − its withdrawals − its closings"
        ));
    }
    let coins_out = add(&sums.coin_remaining, &sums.deposits_with_fee)
        .and_then(|a| add(&a, &sums.recoup.to_reserves));
    let coins_in =
        add(&sums.coin_values, &sums.refunds).and_then(|a| a.checked_sub(&sums.refund_fees).ok());
    let coins_out = coins_out.and_then(|a| add(&a, &sums.refresh.melted));
    if coins_out.is_none() || coins_out != coins_in {
        differences.push(format!(
            "coins left {} + deposited {} + melted {} + recouped {} ≠ coin values {} + refunds {} − refund \
             fees {}",
            sums.coin_remaining,
            sums.deposits_with_fee,
            sums.refresh.melted,
            sums.recoup.to_reserves,
            sums.coin_values,
            sums.refunds,
            sums.refund_fees
        ));
    }
    for coin in &sums.coins_off_balance {
        differences.push(format!(
            "coin {coin}: remaining value ≠ value − deposits − melts + net refunds − recoups \
             ± recoup-refreshes"
        ));
    }
    // Refreshes: what the revealed melts took covers their fresh coins and melt fees.
    let r = &sums.refresh;
    let issued = add(&r.refreshed, &r.revealed_melt_fees);
    if issued.is_none_or(|issued| issued.to_units() > r.revealed_melted.to_units()) {
        differences.push(format!(
            "refreshes issued {} + melt fees {} > melted {}",
            r.refreshed, r.revealed_melt_fees, r.revealed_melted
        ));
    }
    for rc in &r.overspent {
        differences.push(format!(
            "refresh {rc}: fresh coins + melt fee exceed what was melted"
        ));
    }
    match add(&sums.wired, &sums.wire_fees) {
        Some(paid) if paid == sums.aggregated_shares => {}
        paid => differences.push(format!(
            "wired {} + wire fees {} (= {}) ≠ merchants' shares of the aggregated deposits {}",
            sums.wired,
            sums.wire_fees,
            paid.map_or_else(|| "overflow".to_owned(), |a| a.to_string()),
            sums.aggregated_shares
        )),
    }
    if !sums.settled_unwired_shares.is_zero() {
        differences.push(format!(
            "deposits settled without a wire transfer still owe their merchants {}",
            sums.settled_unwired_shares
        ));
    }
    let bounced_out =
        add(&sums.bounced_returned, &sums.bounce_fees).and_then(|a| add(&a, &sums.bounces_pending));
    match bounced_out {
        Some(out) if out == sums.bounced_in => {}
        out => differences.push(format!(
            "bounced in {} ≠ sent back {} + closing fees kept {} + pending {} (= {})",
            sums.bounced_in,
            sums.bounced_returned,
            sums.bounce_fees,
            sums.bounces_pending,
            out.map_or_else(|| "overflow".to_owned(), |a| a.to_string())
        )),
    }
    for (account, reference) in &sums.bounces_off_balance {
        differences.push(format!(
            "bounced transfer {reference} of {account}: closing fee + sent back ≠ its amount"
        ));
    }
    let closing = &sums.closing;
    match add(&closing.transferred, &closing.fees).and_then(|a| add(&a, &closing.pending)) {
        Some(out) if out == closing.closed => {}
        out => differences.push(format!(
            "closed {} ≠ sent back {} + closing fees {} + pending {} (= {})",
            closing.closed,
            closing.transferred,
            closing.fees,
            closing.pending,
            out.map_or_else(|| "overflow".to_owned(), |a| a.to_string())
        )),
    }
    for serial in &closing.off_balance {
        differences.push(format!(
            "reserve closing {serial}: closing fee + sent back ≠ the amount it took"
        ));
    }
    AuditReport { sums, differences }
}

/// Reads the sums from `store` (one snapshot) and checks them.
pub async fn audit(store: &ExchangeStore) -> Result<AuditReport, ExchangeError> {
    Ok(check(store.audit_sums().await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Amount {
        format!("KUDOS:{s}").parse().unwrap()
    }

    fn balanced() -> AuditSums {
        AuditSums {
            reserves_in: k("10"),
            reserve_balances: k("2.97"),
            withdrawn_with_fee: k("7.03"),
            withdraw_fees: k("0.03"),
            reserve_totals_in: k("10"),
            deposits_with_fee: k("7"),
            deposit_fees: k("0.02"),
            refunds: k("1"),
            refund_fees: k("0.01"),
            wired: k("5.96"),
            wire_fees: k("0.01"),
            aggregated_shares: k("5.97"),
            settled_unwired_shares: k("0"),
            coin_remaining: k("0.99"),
            coin_values: k("7"),
            bounced_in: k("3"),
            bounced_returned: k("1.99"),
            bounce_fees: k("0.02"),
            bounces_pending: k("0.99"),
            bounces_off_balance: Vec::new(),
            reserves_off_balance: Vec::new(),
            coins_off_balance: Vec::new(),
            refresh: crate::db::RefreshSums::zero(&"KUDOS".parse().unwrap()),
            recoup: crate::db::RecoupSums {
                to_reserves: k("0"),
                to_coins: k("0"),
            },
            closing: crate::db::ClosingSums::zero(&"KUDOS".parse().unwrap()),
        }
    }

    #[test]
    fn melts_are_spends_and_cover_their_fresh_coins() {
        // 0.5 of a coin melted into 0.47 of fresh coins + 0.03 melt fee: the coins' side counts
        // the melt like a deposit.
        let mut s = balanced();
        s.coin_values = k("7.5");
        s.refresh.melted = k("0.5");
        s.refresh.revealed_melted = k("0.5");
        s.refresh.refreshed = k("0.47");
        s.refresh.revealed_melt_fees = k("0.03");
        assert!(check(s.clone()).is_clean(), "{:?}", check(s).differences);
        // Melted without taking it from a coin.
        let mut t = s.clone();
        t.coin_values = k("7");
        let report = check(t);
        assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
        assert!(report.differences[0].starts_with("coins left"));
        // More issued than melted, in total and for one refresh.
        let mut t = s;
        t.refresh.refreshed = k("0.48");
        t.refresh.overspent = vec![cardcash_util::HashCode::from_bytes([1; 64])];
        let report = check(t);
        assert_eq!(report.differences.len(), 2, "{:?}", report.differences);
        assert!(report.differences[0].starts_with("refreshes issued"));
    }

    #[test]
    fn balanced_books_are_clean() {
        assert!(check(balanced()).is_clean());
    }

    #[test]
    fn every_broken_equation_is_reported() {
        let mut s = balanced();
        s.reserve_balances = k("3");
        s.wired = k("6");
        s.coins_off_balance = vec![cardcash_util::EddsaPublicKey::from_bytes([1; 32])];
        s.coin_remaining = k("1.04");
        s.settled_unwired_shares = k("0.01");
        let report = check(s);
        assert_eq!(report.differences.len(), 5, "{:?}", report.differences);
    }

    #[test]
    fn bounces_must_be_sent_back_kept_or_pending() {
        let mut s = balanced();
        // Sent back twice: the sum no longer balances.
        s.bounced_returned = k("3.98");
        let report = check(s);
        assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
        assert!(report.differences[0].starts_with("bounced in"));
        let mut s = balanced();
        s.bounces_off_balance = vec![("exchange-account-1".into(), 7)];
        let report = check(s);
        assert_eq!(
            report.differences,
            vec![
                "bounced transfer 7 of exchange-account-1: closing fee + sent back ≠ its amount"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn recoups_move_coin_value_into_reserves() {
        // 0.6 left of a coin recouped into its reserve: reserves 10 in + 0.6 recouped = 3.57
        // left + 7.03 withdrawn; coins 0.99 left + 7 deposited + 0.6 recouped = 7.6 of value
        // + 1 refunded − 0.01 refund fees.
        let mut s = balanced();
        s.recoup.to_reserves = k("0.6");
        s.reserve_balances = k("3.57");
        s.withdrawn_with_fee = k("7.03");
        s.deposits_with_fee = k("7");
        s.coin_values = k("7.6");
        assert!(check(s.clone()).is_clean(), "{:?}", check(s).differences);
        // Credited to the reserve but not taken from a coin: both sides show it.
        let mut t = s.clone();
        t.coin_values = k("7");
        let report = check(t);
        assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
        assert!(report.differences[0].starts_with("coins left"));
        let mut t = s;
        t.reserve_balances = k("2.97");
        let report = check(t);
        assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
        assert!(report.differences[0].starts_with("reserves in"));
    }

    #[test]
    fn closings_take_reserve_balances_back_to_their_origin() {
        // A reserve of 10 had 2.97 left and was closed: 2.96 sent back, 0.01 closing fee.
        let mut s = balanced();
        s.reserve_balances = k("0");
        s.closing.closed = k("2.97");
        s.closing.fees = k("0.01");
        s.closing.transferred = k("2.96");
        assert!(check(s.clone()).is_clean(), "{:?}", check(s).differences);
        // Not yet accepted by the gateway: pending.
        let mut t = s.clone();
        t.closing.transferred = k("0");
        t.closing.pending = k("2.96");
        assert!(check(t).is_clean());
        // Sent back twice, or taken from the reserve without a closing: both are caught.
        let mut t = s.clone();
        t.closing.transferred = k("5.92");
        let report = check(t);
        assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
        assert!(report.differences[0].starts_with("closed"));
        let mut t = s.clone();
        t.closing.closed = k("0");
        t.closing.fees = k("0");
        t.closing.transferred = k("0");
        let report = check(t);
        assert_eq!(report.differences.len(), 1, "{:?}", report.differences);
        assert!(report.differences[0].starts_with("reserves in"));
        let mut t = s;
        t.closing.off_balance = vec![3];
        assert_eq!(
            check(t).differences,
            vec!["reserve closing 3: closing fee + sent back ≠ the amount it took".to_owned()]
        );
    }
}
