//! What the claim, the order status (private and public) and `/paid` read and write: an order
//! as its status needs it, its payment (deposits, refunds, wire transfers), the repurchase
//! lookup (an order paid in a session for the same fulfillment URL), the claim (nonce, hash and
//! final contract terms in one write) and the session re-binding of `/paid`.

use std::sync::Arc;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, EddsaPublicKey, HashCode, Timestamp};

use super::orders::OrderRow;
use super::{MerchantStore, TOPIC_ORDER, json, order_key, postgres, sqlite};
use crate::claim::{ClaimDecision, ClaimRefusal, ClaimRequestView};

/// Notification topic: an order was paid, or re-bound by `/paid`, under a session. Key:
/// [`session_key`]. Waiters on an unpaid order asked about with a session subscribe to it, so
/// that a repurchase (another order with the same fulfillment URL paid in that session) wakes
/// them.
pub const TOPIC_SESSION: &str = "order-session";

/// The notification key of a session of an instance (session ids are free text: hashed, so the
/// key has no spaces).
pub fn session_key(instance_serial: i64, session_id: &str) -> String {
    let h = cardcash_crypto::sha512(session_id.as_bytes());
    format!(
        "{instance_serial}/{}",
        cardcash_util::base32::encode(h.as_bytes().get(..20).unwrap_or_default())
    )
}

/// An order as the status, the claim and `/paid` see it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderStatusRow {
    pub serial: i64,
    pub order_id: String,
    /// The claim token made at creation (`create_token`), if any.
    pub claim_token: Option<[u8; 16]>,
    pub created_at: Timestamp,
    pub pay_deadline: Timestamp,
    pub refund_deadline: Timestamp,
    pub summary: String,
    pub amount: Amount,
    pub fulfillment_url: Option<String>,
    /// Before the claim: the order's contract terms without `nonce`; after: the final ones.
    pub contract_terms: serde_json::Value,
    pub nonce: Option<EddsaPublicKey>,
    pub h_contract_terms: Option<HashCode>,
    pub paid: bool,
    pub paid_at: Option<Timestamp>,
    /// The session the order was paid (or last re-bound by `/paid`) under; empty for none.
    pub session_id: String,
    /// Total refund granted.
    pub refund_amount: Amount,
    pub wired: bool,
}

impl OrderStatusRow {
    /// The status view of an order row (both engines decode the columns the two share once,
    /// as an [`OrderRow`]), with the columns only the status reads.
    pub(crate) fn new(
        order: OrderRow,
        nonce: Option<EddsaPublicKey>,
        paid_at: Option<Timestamp>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            contract_terms: json(&order.contract_terms)?,
            nonce,
            paid_at,
            refund_amount: order.refund,
            serial: order.serial,
            order_id: order.order_id,
            claim_token: order.claim_token,
            created_at: order.created_at,
            pay_deadline: order.pay_deadline,
            refund_deadline: order.refund_deadline,
            summary: order.summary,
            amount: order.amount,
            fulfillment_url: order.fulfillment_url,
            h_contract_terms: order.h_contract_terms,
            paid: order.paid,
            session_id: order.session_id,
            wired: order.wired,
        })
    }

    pub fn is_claimed(&self) -> bool {
        self.h_contract_terms.is_some()
    }
}

/// A coin deposited for an order, as the status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositSummary {
    pub exchange_url: String,
    pub amount_with_fee: Amount,
    pub deposit_fee: Amount,
    pub exchange_timestamp: Timestamp,
    /// The exchange's wire transfer, once known.
    pub wtid: Option<[u8; 32]>,
    pub execution_time: Option<Timestamp>,
}

/// A refund of one coin (grants are numbered by `rtransaction_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundSummary {
    pub rtransaction_id: i64,
    pub amount: Amount,
    pub reason: String,
    pub granted_at: Timestamp,
    /// The wallet picked it up.
    pub obtained: bool,
}

/// The payment of an order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentDetails {
    pub deposits: Vec<DepositSummary>,
    pub refunds: Vec<RefundSummary>,
}

/// An order paid in a session for some fulfillment URL (repurchase detection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidInSession {
    pub order_id: String,
    pub fulfillment_url: String,
}

/// What a claim did.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimOutcome {
    /// Claimed now, or claimed before with the same nonce: the final contract terms.
    Claimed {
        contract_terms: serde_json::Value,
        h_contract_terms: HashCode,
    },
    Refused(ClaimRefusal),
}

/// What `/paid` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RebindOutcome {
    /// The order now counts as paid under the session; whether it was refunded.
    Rebound {
        refunded: bool,
    },
    NotFound,
    /// Not claimed, or claimed with another contract hash.
    HashMismatch,
    /// Claimed with this hash but not paid.
    Unpaid,
}

impl MerchantStore {
    /// The order `order_id` of an instance.
    pub async fn order_status(
        &self,
        instance_serial: i64,
        order_id: &str,
    ) -> Result<Option<OrderStatusRow>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| {
                sqlite::status::order_status(conn, currency, instance_serial, order_id)
            }),
            Database::Postgres(db) => {
                postgres::status::order_status(db, currency, instance_serial, order_id).await
            }
        }
    }

    /// The deposits and refunds of an order.
    pub async fn payment_details(&self, order_serial: i64) -> Result<PaymentDetails, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::status::payment_details(conn, currency, order_serial))
            }
            Database::Postgres(db) => {
                postgres::status::payment_details(db, currency, order_serial).await
            }
        }
    }

    /// The most recently paid order of an instance paid (or re-bound) under `session_id` for
    /// `fulfillment_url`; refunded orders count only if `allow_refunded`.
    pub async fn paid_in_session(
        &self,
        instance_serial: i64,
        session_id: &str,
        fulfillment_url: &str,
        allow_refunded: bool,
    ) -> Result<Option<PaidInSession>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| {
                sqlite::status::paid_in_session(
                    conn,
                    instance_serial,
                    session_id,
                    fulfillment_url,
                    allow_refunded,
                )
            }),
            Database::Postgres(db) => {
                postgres::status::paid_in_session(
                    db,
                    instance_serial,
                    session_id,
                    fulfillment_url,
                    allow_refunded,
                )
                .await
            }
        }
    }

    /// Claims an order for a wallet's nonce: [`crate::claim::decide`] on the locked row, and if
    /// it claims, nonce + hash + final contract terms in one write (waiters are notified).
    pub async fn claim_order(
        &self,
        instance_serial: i64,
        order_id: &str,
        request: ClaimRequestView,
    ) -> Result<ClaimOutcome, StoreError> {
        let currency = self.currency;
        let order_id: Arc<str> = Arc::from(order_id);
        let request = Arc::new(request);
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let order_id = order_id.clone();
                    let request = request.clone();
                    db.write(move |tx| {
                        sqlite::status::claim_order(
                            tx,
                            currency,
                            instance_serial,
                            &order_id,
                            &request,
                        )
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| {
                    postgres::status::claim_order(
                        db,
                        currency,
                        instance_serial,
                        &order_id,
                        &request,
                    )
                })
                .await
            }
        }
    }

    /// `/paid`: the order claimed with `h_contract_terms` and paid now counts as paid under
    /// `session_id` (waiters on the order and on the session are notified).
    pub async fn rebind_session(
        &self,
        instance_serial: i64,
        order_id: &str,
        h_contract_terms: &HashCode,
        session_id: &str,
    ) -> Result<RebindOutcome, StoreError> {
        let order_id: Arc<str> = Arc::from(order_id);
        let session_id: Arc<str> = Arc::from(session_id);
        let h = *h_contract_terms;
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let order_id = order_id.clone();
                    let session_id = session_id.clone();
                    db.write(move |tx| {
                        sqlite::status::rebind_session(
                            tx,
                            instance_serial,
                            &order_id,
                            &h,
                            &session_id,
                        )
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| {
                    postgres::status::rebind_session(
                        db,
                        instance_serial,
                        &order_id,
                        &h,
                        &session_id,
                    )
                })
                .await
            }
        }
    }
}

/// The claim's decision on a stored order (shared by both engines).
pub(crate) fn decide_claim(
    row: Option<&OrderStatusRow>,
    request: &ClaimRequestView,
) -> Result<Result<ClaimDecision, ClaimRefusal>, StoreError> {
    let Some(row) = row else {
        return Ok(Err(ClaimRefusal::NotFound));
    };
    crate::claim::decide(row, request).map_err(|e| super::corrupt(format!("contract terms: {e}")))
}

/// The keys to notify when an order changed (and its session, if it has one).
pub(crate) fn order_notifications(
    instance_serial: i64,
    order_id: &str,
    session_id: &str,
) -> Vec<(&'static str, String)> {
    let mut out = vec![(TOPIC_ORDER, order_key(instance_serial, order_id))];
    if !session_id.is_empty() {
        out.push((TOPIC_SESSION, session_key(instance_serial, session_id)));
    }
    out
}
