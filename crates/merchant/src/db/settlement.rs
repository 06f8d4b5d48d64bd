//! Settlement: which deposits the worker asks the exchange about (paid orders past their wire
//! deadline whose transfer is not known yet), what it learned (the wire transfer id, execution
//! time and the coin's contribution, with the transfer's total and wire fee), the order marked
//! `wired` once all its deposits are, and the transfers of an instance with what they paid per
//! order. Migration 0005.

use std::sync::Arc;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, EddsaPublicKey, HashCode, ShortHashCode, Timestamp};

use super::{MerchantStore, postgres, sqlite};

/// A deposit whose wire transfer the worker asks the exchange about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositToTrack {
    pub deposit_serial: i64,
    pub order_serial: i64,
    pub instance_serial: i64,
    pub order_id: String,
    /// The Ed25519 seed of the instance's key (it signs the question, purpose 1103).
    pub merchant_priv: [u8; 32],
    pub merchant_pub: EddsaPublicKey,
    pub h_contract_terms: HashCode,
    pub h_wire: HashCode,
    pub coin_pub: EddsaPublicKey,
    pub exchange_url: String,
    pub payto_uri: String,
}

/// What the exchange says paid a deposit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wired {
    pub wtid: ShortHashCode,
    pub execution_time: Timestamp,
    /// The coin's part of the transfer (deposit − deposit fee − refunds).
    pub coin_contribution: Amount,
    /// The transfer's total (after the wire fee) and its wire fee.
    pub total: Amount,
    pub wire_fee: Amount,
}

/// One order's part of a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferOrder {
    pub order_id: String,
    /// What the customer's coins paid for it (deposit fees included).
    pub deposit_total: Amount,
    pub deposit_fees: Amount,
    /// What the transfer carried for it (before the transfer's wire fee).
    pub wired: Amount,
}

/// A wire transfer of an exchange to the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRow {
    pub serial: i64,
    pub exchange_url: String,
    pub wtid: ShortHashCode,
    pub payto_uri: String,
    pub execution_time: Timestamp,
    pub total: Amount,
    pub wire_fee: Amount,
    pub orders: Vec<TransferOrder>,
}

/// A settled deposit's row for the transfer listing.
pub(crate) struct SettledDeposit {
    pub(crate) transfer_serial: i64,
    pub(crate) order_id: String,
    pub(crate) amount_with_fee: Amount,
    pub(crate) deposit_fee: Amount,
    pub(crate) wired: Amount,
}

/// Folds settled deposits into the orders of each transfer (in order of appearance).
pub(crate) fn attach_orders(
    transfers: &mut [TransferRow],
    deposits: Vec<SettledDeposit>,
) -> Result<(), StoreError> {
    let add = |a: &Amount, b: &Amount| {
        a.checked_add(b)
            .map_err(|e| super::corrupt(format!("transfer sums: {e}")))
    };
    for d in deposits {
        let Some(t) = transfers.iter_mut().find(|t| t.serial == d.transfer_serial) else {
            continue;
        };
        match t.orders.iter_mut().find(|o| o.order_id == d.order_id) {
            Some(o) => {
                o.deposit_total = add(&o.deposit_total, &d.amount_with_fee)?;
                o.deposit_fees = add(&o.deposit_fees, &d.deposit_fee)?;
                o.wired = add(&o.wired, &d.wired)?;
            }
            None => t.orders.push(TransferOrder {
                order_id: d.order_id,
                deposit_total: d.amount_with_fee,
                deposit_fees: d.deposit_fee,
                wired: d.wired,
            }),
        }
    }
    Ok(())
}

impl MerchantStore {
    /// Up to `limit` deposits of paid orders whose wire deadline and next check have passed
    /// at `now` and whose transfer is not known yet, the longest waiting first.
    pub async fn deposits_to_track(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<DepositToTrack>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::settlement::deposits_to_track(conn, now, limit))
            }
            Database::Postgres(db) => postgres::settlement::deposits_to_track(db, now, limit).await,
        }
    }

    /// When the next deposit is due to be asked about (`None`: none is waiting).
    pub async fn next_settlement_check(&self) -> Result<Option<Timestamp>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(sqlite::settlement::next_check),
            Database::Postgres(db) => postgres::settlement::next_check(db).await,
        }
    }

    /// Asks about the deposit again no earlier than `at`.
    pub async fn postpone_deposit(
        &self,
        deposit_serial: i64,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| db.write(move |tx| sqlite::settlement::postpone(tx, deposit_serial, at)))
                    .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::settlement::postpone(db, deposit_serial, at)).await
            }
        }
    }

    /// In one transaction: records the transfer that paid the deposit (and the transfer), and
    /// marks its order `wired` when none of its deposits waits any more (waking who waits on
    /// the order). Returns whether the order became wired.
    pub async fn settle_deposit(
        &self,
        deposit: &DepositToTrack,
        wired: &Wired,
    ) -> Result<bool, StoreError> {
        let args = Arc::new((deposit.clone(), wired.clone()));
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let a = args.clone();
                    db.write(move |tx| sqlite::settlement::settle(tx, &a.0, &a.1))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::settlement::settle(db, &args.0, &args.1)).await
            }
        }
    }

    /// The instance's wire transfers, newest first, with what they paid per order.
    pub async fn transfers(&self, instance_serial: i64) -> Result<Vec<TransferRow>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::settlement::transfers(conn, currency, instance_serial))
            }
            Database::Postgres(db) => {
                postgres::settlement::transfers(db, currency, instance_serial).await
            }
        }
    }
}
