//! Settlement: which deposits the worker asks the exchange about (paid orders past their wire
//! deadline whose transfer is not known yet), what it learned (the wire transfer id, execution
//! time and the coin's contribution, with the transfer's total and wire fee), the order marked
//! `wired` once all its deposits are, and the transfers of an instance with what they paid per
//! order (migration 0005). A transfer row holds two facts, each absent until known (migration
//! 0011): the exchange's statement ([`ExchangeView`]: the worker's, or the one fetched when the
//! bank reported first) and the bank's confirmation ([`BankReport`], `POST /private/transfers`);
//! both are kept when they disagree.

use std::sync::Arc;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, EddsaPublicKey, HashCode, ShortHashCode, Timestamp};

use super::orders::Tristate;
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

/// What the exchange says about a transfer (`GET /transfers/$WTID`, or the worker's tracking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeView {
    /// The instance's account the exchange paid.
    pub payto_uri: String,
    pub execution_time: Timestamp,
    /// What it wired (after the wire fee).
    pub total: Amount,
    pub wire_fee: Amount,
}

/// What the merchant's bank (or an operator) reported arrived (`POST /private/transfers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankReport {
    pub payto_uri: String,
    pub credit: Amount,
}

/// A wire transfer of an exchange to the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRow {
    pub serial: i64,
    pub exchange_url: String,
    pub wtid: ShortHashCode,
    pub exchange: Option<ExchangeView>,
    pub report: Option<BankReport>,
    pub orders: Vec<TransferOrder>,
}

impl TransferRow {
    /// Whether the exchange's statement agrees with the bank's report: `None` without a
    /// statement; `true` for a statement not contradicted by any report (the worker checked
    /// its signatures).
    pub fn verified(&self) -> Option<bool> {
        let exchange = self.exchange.as_ref()?;
        Some(self.report.as_ref().is_none_or(|r| agrees(exchange, r)))
    }
}

/// The exchange's statement and the bank's report name the same amount and account.
pub fn agrees(exchange: &ExchangeView, report: &BankReport) -> bool {
    exchange.total == report.credit && exchange.payto_uri == report.payto_uri
}

/// The SQL of [`TransferRow::verified`] over a `transfers t` row, as 1/0/NULL (both engines).
pub(crate) const VERIFIED_SQL: &str = "CASE WHEN t.execution_time IS NULL THEN NULL \
     WHEN t.credit_val IS NULL THEN 1 \
     WHEN t.credit_val = t.total_val AND t.credit_frac = t.total_frac \
     AND t.credit_payto_uri = t.payto_uri THEN 1 ELSE 0 END";

/// What `POST /private/transfers` found when it recorded a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    /// The report is stored (now or by an identical earlier report), next to the exchange's
    /// statement if there is one.
    Recorded {
        serial: i64,
        exchange: Option<ExchangeView>,
    },
    /// Another report of the same transfer names another amount or account: nothing changed.
    Conflicting { previous: BankReport },
}

/// `GET /private/transfers` filters and page (`limit` ≠ 0: negative pages backwards from
/// `offset` by serial, positive forwards).
#[derive(Clone, Debug, Default)]
pub struct TransferFilter {
    pub payto_uri: Option<String>,
    pub before: Option<Timestamp>,
    pub after: Option<Timestamp>,
    pub confirmed: Tristate,
    pub verified: Tristate,
    pub expected: Tristate,
    pub limit: i64,
    pub offset: Option<i64>,
}

/// `DELETE /private/transfers/$TID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteTransfer {
    Deleted,
    Unknown,
    /// Orders were reconciled with it: it stays.
    Reconciled,
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

    /// One page of the instance's wire transfers, with what they paid per order.
    pub async fn transfers(
        &self,
        instance_serial: i64,
        filter: &TransferFilter,
    ) -> Result<Vec<TransferRow>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| {
                sqlite::settlement::transfers(conn, currency, instance_serial, filter)
            }),
            Database::Postgres(db) => {
                postgres::settlement::transfers(db, currency, instance_serial, filter).await
            }
        }
    }

    /// Records the bank's report of a transfer unless another report of it says otherwise;
    /// returns the exchange's statement of it, if known.
    pub async fn report_transfer(
        &self,
        instance_serial: i64,
        exchange_url: &str,
        wtid: &ShortHashCode,
        report: &BankReport,
    ) -> Result<ReportOutcome, StoreError> {
        let currency = self.currency;
        let args = Arc::new((exchange_url.to_owned(), *wtid, report.clone()));
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let a = args.clone();
                    db.write(move |tx| {
                        sqlite::settlement::report(tx, currency, instance_serial, &a.0, &a.1, &a.2)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| {
                    postgres::settlement::report(
                        db,
                        currency,
                        instance_serial,
                        &args.0,
                        &args.1,
                        &args.2,
                    )
                })
                .await
            }
        }
    }

    /// Stores the exchange's statement of a reported transfer (unless one is stored already).
    pub async fn record_exchange_view(
        &self,
        transfer_serial: i64,
        view: &ExchangeView,
    ) -> Result<(), StoreError> {
        let view = Arc::new(view.clone());
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let v = view.clone();
                    db.write(move |tx| sqlite::settlement::record_view(tx, transfer_serial, &v))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::settlement::record_view(db, transfer_serial, &view)).await
            }
        }
    }

    /// Deletes a transfer no order was reconciled with.
    pub async fn delete_transfer(
        &self,
        instance_serial: i64,
        transfer_serial: i64,
    ) -> Result<DeleteTransfer, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    db.write(move |tx| {
                        sqlite::settlement::delete(tx, instance_serial, transfer_serial)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::settlement::delete(db, instance_serial, transfer_serial)).await
            }
        }
    }
}
