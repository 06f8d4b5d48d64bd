//! Payments, aborts and refunds: what `/pay` needs of an order, its deposits, the one
//! transaction that marks it paid (deposits, paid flag and session, stock sold), refund grants
//! allocated over the deposited coins, and what the exchange answered when they were executed.

use std::sync::Arc;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{
    Amount, EddsaPublicKey, EddsaSignature, HashCode, ShortHashCode, Timestamp, WireSalt,
};

use super::{MerchantStore, postgres, sqlite};

/// An order as payments, aborts and refunds see it (with the account it is paid to).
#[derive(Clone, Debug, PartialEq)]
pub struct PayOrder {
    pub serial: i64,
    pub instance_serial: i64,
    pub order_id: String,
    /// The contract terms as stored (complete at creation; the claim adds the nonce).
    pub contract_terms: serde_json::Value,
    /// Set by the claim.
    pub h_contract_terms: Option<HashCode>,
    pub paid: bool,
    pub session_id: String,
    pub pay_deadline: Timestamp,
    pub refund_deadline: Timestamp,
    pub wire_transfer_deadline: Timestamp,
    pub amount: Amount,
    /// The total refund granted so far.
    pub refund_total: Amount,
    pub wired: bool,
    pub h_wire: HashCode,
    pub salt: WireSalt,
    pub payto_uri: String,
}

/// A coin deposited at an exchange for an order, with the exchange's confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDeposit {
    pub coin_pub: EddsaPublicKey,
    pub coin_sig: EddsaSignature,
    pub exchange_url: String,
    pub h_denom: HashCode,
    pub amount_with_fee: Amount,
    pub deposit_fee: Amount,
    pub refund_fee: Amount,
    pub exchange_pub: EddsaPublicKey,
    pub exchange_sig: EddsaSignature,
    pub exchange_timestamp: Timestamp,
}

/// A stored deposit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositRow {
    pub serial: i64,
    pub deposit: NewDeposit,
    /// The wire transfer that paid it, once the exchange said so.
    pub wtid: Option<ShortHashCode>,
    pub execution_time: Option<Timestamp>,
}

/// How a payment was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordPayment {
    /// The order is now paid (this call paid it).
    Paid,
    /// The order was paid with these very coins before (a replay that raced past the paid
    /// check).
    Replayed,
    /// Somebody paid the order first with other coins (or no paid mark was asked for); the
    /// deposits are stored all the same (the exchange has them: they count in settlement).
    AlreadyPaid,
    /// The pay deadline passed before the payment was recorded: the deposits are stored (an
    /// abort gives them back), the order stays unpaid and its stock is not sold.
    Expired,
}

/// The paid flag and the session of a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidMark {
    pub instance_serial: i64,
    pub order_id: String,
    pub session_id: String,
    pub paid_at: Timestamp,
}

/// One refund of one coin (`rtransaction_id` numbers the grants of an order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRow {
    pub serial: i64,
    pub rtransaction_id: u64,
    pub coin_pub: EddsaPublicKey,
    pub exchange_url: String,
    pub amount: Amount,
    pub reason: String,
    pub granted_at: Timestamp,
    pub outcome: RefundOutcome,
    pub obtained: bool,
}

/// What the exchange answered to a refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Not executed yet.
    Pending,
    /// The exchange confirmed it (purpose 1038).
    Confirmed {
        exchange_pub: EddsaPublicKey,
        exchange_sig: EddsaSignature,
    },
    /// The exchange refused it for good.
    Failed {
        status: u16,
        reply: Option<serde_json::Value>,
    },
}

/// The outcome of a refund grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantRefund {
    /// The total refund of the order is now `total` (new rows for the increase).
    Granted { total: Amount },
    /// The order's refund already is at least the requested total: nothing changed.
    Unchanged { total: Amount },
    /// The order is not paid.
    Unpaid,
    /// More than the order's price.
    ExceedsPayment { paid: Amount },
}

/// Splits `increase` (in units) over coins with `remaining` refundable units each, in order:
/// each coin gives what it has left until the increase is covered. `None` if they cannot.
pub(crate) fn allocate(increase: u128, remaining: &[u128]) -> Option<Vec<u128>> {
    let mut left = increase;
    let mut out = Vec::with_capacity(remaining.len());
    for r in remaining {
        let take = left.min(*r);
        out.push(take);
        left -= take;
    }
    (left == 0).then_some(out)
}

impl MerchantStore {
    /// The order `order_id` of the instance, with its account.
    pub async fn pay_order(
        &self,
        instance_serial: i64,
        order_id: &str,
    ) -> Result<Option<PayOrder>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| {
                sqlite::payments::pay_order(conn, currency, instance_serial, order_id)
            }),
            Database::Postgres(db) => {
                postgres::payments::pay_order(db, currency, instance_serial, order_id).await
            }
        }
    }

    /// The deposits of an order, in the order they were stored.
    pub async fn deposits(&self, order_serial: i64) -> Result<Vec<DepositRow>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::payments::deposits(conn, currency, order_serial))
            }
            Database::Postgres(db) => {
                postgres::payments::deposits(db, currency, order_serial).await
            }
        }
    }

    /// In one transaction: stores the confirmed `deposits` of the order (a coin already stored
    /// for it is kept as it is), and with `paid`, marks the order paid in that session (if it
    /// is unpaid and its pay deadline is not before `paid_at`), turns its inventory locks into
    /// sold stock (`inventory::sell_order_locks`) and wakes who waits on the order
    /// (`TOPIC_ORDER`) and, with a session, on the session (`status::TOPIC_SESSION`).
    pub async fn record_payment(
        &self,
        order_serial: i64,
        deposits: Vec<NewDeposit>,
        paid: Option<PaidMark>,
    ) -> Result<RecordPayment, StoreError> {
        let work = Arc::new((deposits, paid));
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let work = work.clone();
                    db.write(move |tx| {
                        sqlite::payments::record_payment(tx, order_serial, &work.0, work.1.as_ref())
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| {
                    postgres::payments::record_payment(db, order_serial, &work.0, work.1.as_ref())
                })
                .await
            }
        }
    }

    /// Raises the order's total refund to `target` (never above its price), allocating the
    /// increase over its deposited coins as new refund rows of a new `rtransaction_id`.
    pub async fn grant_refund(
        &self,
        order: &PayOrder,
        target: Amount,
        reason: &str,
        now: Timestamp,
    ) -> Result<GrantRefund, StoreError> {
        let currency = self.currency;
        let args = Arc::new((
            order.serial,
            order.instance_serial,
            order.order_id.clone(),
            order.amount,
            target,
            reason.to_owned(),
            now,
        ));
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let a = args.clone();
                    db.write(move |tx| {
                        sqlite::payments::grant_refund(
                            tx, currency, a.0, a.1, &a.2, a.3, a.4, &a.5, a.6,
                        )
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| {
                    let a = &args;
                    postgres::payments::grant_refund(
                        db, currency, a.0, a.1, &a.2, a.3, a.4, &a.5, a.6,
                    )
                })
                .await
            }
        }
    }

    /// The refunds of an order with the exchange of each coin, by grant and coin.
    pub async fn refunds(&self, order_serial: i64) -> Result<Vec<RefundRow>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::payments::refunds(conn, currency, order_serial))
            }
            Database::Postgres(db) => postgres::payments::refunds(db, currency, order_serial).await,
        }
    }

    /// Stores what the exchange answered to refunds (`(refund serial, outcome)`; a refund
    /// already answered keeps its answer) and, with `obtained`, marks every answered refund
    /// of the order picked up by the wallet; wakes who waits on the order.
    pub async fn store_refund_outcomes(
        &self,
        order: &PayOrder,
        outcomes: Vec<(i64, RefundOutcome)>,
        obtained: bool,
    ) -> Result<(), StoreError> {
        let args = Arc::new((
            order.serial,
            super::order_key(order.instance_serial, &order.order_id),
            outcomes,
        ));
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let a = args.clone();
                    db.write(move |tx| {
                        sqlite::payments::store_refund_outcomes(tx, a.0, &a.1, &a.2, obtained)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| {
                    postgres::payments::store_refund_outcomes(
                        db, args.0, &args.1, &args.2, obtained,
                    )
                })
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::allocate;

    #[test]
    fn refunds_take_the_coins_in_order() {
        assert_eq!(allocate(7, &[5, 2, 4]), Some(vec![5, 2, 0]));
        assert_eq!(allocate(3, &[0, 2, 4]), Some(vec![0, 2, 1]));
        assert_eq!(allocate(0, &[1]), Some(vec![0]));
        assert_eq!(allocate(8, &[5, 2]), None);
    }
}
