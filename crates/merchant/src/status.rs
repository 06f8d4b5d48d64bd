//! Order status as the merchant (`GET /private/orders/$ID`) and as the wallet or browser
//! (`GET /orders/$ID`) see it, the claim, and `/paid` (session re-binding).
//!
//! Spec: docs.taler.net core/merchant `get-private-orders-ORDER_ID`, `get-orders-ORDER_ID`,
//! `post-orders-ORDER_ID-claim`, `post-orders-ORDER_ID-paid`; design document 007 (our notes:
//! spec/merchant.md §2.4–2.6, §2.9, §3.5, §4.2, §4.3); behaviour checked against wallet-core's
//! `test-paywall-flow.ts` and `test-merchant-spec-public-orders.ts`.
//!
//! Sessions: an order counts as paid only for the session it was paid (or last re-bound by
//! `/paid`) under. Asked about with another session, a paid order is "claimed" (private) or
//! unpaid with a `taler://pay` URI for that session (public), so the customer's wallet proves
//! the earlier payment again with `/paid` instead of paying twice. Repurchase detection: an
//! unpaid order asked about with a session reports another order with the same fulfillment URL
//! paid in that session (`already_paid_order_id`); the HTML page then redirects to the
//! fulfillment URL.
//!
//! Long polls subscribe to the order's notifications (and the session's, for repurchases)
//! BEFORE reading, then wait on the notifier until the answer is what the client waits for or
//! the (capped) timeout passes; nothing polls the database.

use std::time::Duration;

use cardcash_api::merchant::status::{
    MerchantOrderStatusResponse, OrderStatusClaimed, OrderStatusPaidPrivate,
    OrderStatusUnpaidPrivate, PaidRefundStatusResponse, RefundDetails, StatusGotoResponse,
    TransactionWireTransfer,
};
use cardcash_api::merchant::{ClaimRequest, ClaimResponse, OrderStatusPaid, PaidRequest};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_crypto::purpose::{ContractSig, PaymentOk};
use cardcash_store::Subscription;
use cardcash_util::{Amount, BaseUrl, ErrorCode, HashCode, TalerUri, Timestamp};

use crate::claim::{ClaimRefusal, ClaimRequestView, token_matches};
use crate::db::instances::InstanceRow;
use crate::db::status::{
    ClaimOutcome, OrderStatusRow, PaidInSession, PaymentDetails, RebindOutcome, TOPIC_SESSION,
    session_key,
};
use crate::db::{TOPIC_ORDER, order_key};
use crate::error::MerchantError;
use crate::service::Merchant;

/// The longest a status request waits (a longer `timeout_ms` is shortened to this).
pub const MAX_STATUS_WAIT: Duration = Duration::from_secs(60);

/// A `GET /private/orders/$ID` request.
#[derive(Clone, Debug, Default)]
pub struct PrivateStatusQuery {
    /// The session asked about (empty = none).
    pub session_id: Option<String>,
    pub timeout: Duration,
    /// Whether refunded orders count for repurchase detection.
    pub allow_refunded_for_repurchase: bool,
}

/// A `GET /orders/$ID` request.
#[derive(Clone, Debug, Default)]
pub struct PublicStatusQuery {
    pub token: Option<String>,
    pub h_contract: Option<HashCode>,
    pub session_id: Option<String>,
    pub timeout: Duration,
    /// Wait for a refund above this amount.
    pub refund: Option<Amount>,
    /// Wait until the wallet picked up every granted refund.
    pub await_refund_obtained: bool,
    pub allow_refunded_for_repurchase: bool,
}

/// What the public status says; the handler renders it as JSON or HTML.
#[derive(Clone, Debug, PartialEq)]
pub enum PublicStatus {
    /// Not paid in this session: 402 with the `taler://pay` URI for it (HTML: the payment page,
    /// or 302 to the fulfillment URL if another order for it was paid in this session).
    Unpaid {
        row: Box<OrderStatusRow>,
        taler_pay_uri: String,
        already_paid: Option<PaidInSession>,
    },
    /// Paid in this session (or no session asked about): 200 with the refund state (HTML: 302 to
    /// the fulfillment URL). `goto`: paid in the asked session and shown the claim token, so a
    /// JSON client is sent to the fulfillment page (202).
    Paid {
        row: Box<OrderStatusRow>,
        status: OrderStatusPaid,
        goto: bool,
    },
    /// No credentials: 202 to the order's public reorder page.
    Reorder { public_reorder_url: String },
}

/// How the order status URL authenticates its reader.
enum StatusCredential<'a> {
    Token(Option<&'a [u8; 16]>),
    Contract(&'a HashCode),
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// `taler://pay/{host}{/path}/{order_id}/{session_id}?c={token}` (`taler+http://` for an HTTP
/// backend; the session segment is empty without a session).
pub fn taler_pay_uri(
    instance_base: &BaseUrl,
    order_id: &str,
    session_id: Option<&str>,
    claim_token: Option<&[u8; 16]>,
) -> String {
    TalerUri::Pay {
        merchant_base: instance_base.clone(),
        order_id: order_id.to_owned(),
        session_id: non_empty(session_id).unwrap_or_default().to_owned(),
        claim_token: claim_token.map(|t| cardcash_util::base32::encode(t)),
        nonce: None,
    }
    .to_string()
}

/// `{base}orders/{id}?token=…&session_id=…` (unclaimed) or `…?h_contract=…&session_id=…`.
fn order_status_url(
    instance_base: &BaseUrl,
    order_id: &str,
    credential: StatusCredential<'_>,
    session_id: Option<&str>,
) -> String {
    let mut url = instance_base.as_url().clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().push("orders").push(order_id);
    }
    {
        let mut query = url.query_pairs_mut();
        match credential {
            StatusCredential::Token(Some(token)) => {
                query.append_pair("token", &cardcash_util::base32::encode(token));
            }
            StatusCredential::Token(None) => {}
            StatusCredential::Contract(h) => {
                query.append_pair("h_contract", &h.to_string());
            }
        }
        if let Some(session) = non_empty(session_id) {
            query.append_pair("session_id", session);
        }
    }
    // No empty `?` when nothing was appended.
    if url.query() == Some("") {
        url.set_query(None);
    }
    url.to_string()
}

/// Whether the order counts as paid for a request about `session_id`.
fn paid_in_this_session(row: &OrderStatusRow, session_id: Option<&str>) -> bool {
    row.paid && non_empty(session_id).is_none_or(|s| s == row.session_id)
}

/// The refund state a wallet sees (`GET /orders/$ID` 200).
fn wallet_refund_status(row: &OrderStatusRow, details: &PaymentDetails) -> OrderStatusPaid {
    let currency = row.amount.currency();
    let refund_taken = details
        .refunds
        .iter()
        .filter(|r| r.obtained)
        .try_fold(Amount::zero(currency), |sum, r| sum.checked_add(&r.amount))
        .unwrap_or_else(|_| Amount::max(currency));
    OrderStatusPaid {
        refunded: !row.refund_amount.is_zero(),
        refund_pending: details.refunds.iter().any(|r| !r.obtained),
        refund_amount: row.refund_amount,
        refund_taken,
    }
}

/// `GET /private/orders/$ID` for a paid order.
fn private_paid(
    row: &OrderStatusRow,
    details: &PaymentDetails,
    order_status_url: String,
) -> Result<OrderStatusPaidPrivate, MerchantError> {
    let currency = row.amount.currency();
    let overflow = |_| MerchantError::Internal("amount overflow in an order's deposits".into());
    let mut deposit_total = Amount::zero(currency);
    let mut last_payment = row.paid_at.unwrap_or(Timestamp::ZERO);
    let mut wire_details: Vec<TransactionWireTransfer> = Vec::new();
    for d in &details.deposits {
        let net = d
            .amount_with_fee
            .checked_sub(&d.deposit_fee)
            .unwrap_or_else(|_| Amount::zero(currency));
        deposit_total = deposit_total.checked_add(&net).map_err(overflow)?;
        last_payment = last_payment.max(d.exchange_timestamp);
        if let (Some(wtid), Some(execution_time)) = (&d.wtid, d.execution_time) {
            let wtid = cardcash_util::base32::encode(wtid);
            match wire_details
                .iter_mut()
                .find(|w| w.wtid == wtid && w.exchange_url == d.exchange_url)
            {
                Some(w) => w.amount = w.amount.checked_add(&net).map_err(overflow)?,
                None => wire_details.push(TransactionWireTransfer {
                    exchange_url: d.exchange_url.clone(),
                    wtid,
                    execution_time,
                    amount: net,
                    confirmed: false,
                }),
            }
        }
    }
    let mut refund_details: Vec<RefundDetails> = Vec::new();
    let mut last_grant: Option<i64> = None;
    for r in &details.refunds {
        match refund_details.last_mut() {
            Some(last) if last_grant == Some(r.rtransaction_id) => {
                last.amount = last.amount.checked_add(&r.amount).map_err(overflow)?;
                last.pending |= !r.obtained;
            }
            _ => refund_details.push(RefundDetails {
                reason: r.reason.clone(),
                pending: !r.obtained,
                timestamp: r.granted_at,
                amount: r.amount,
            }),
        }
        last_grant = Some(r.rtransaction_id);
    }
    Ok(OrderStatusPaidPrivate {
        refunded: !row.refund_amount.is_zero(),
        refund_pending: details.refunds.iter().any(|r| !r.obtained),
        wired: row.wired,
        deposit_total,
        exchange_code: 0,
        exchange_http_status: 0,
        refund_amount: row.refund_amount,
        contract_terms: row.contract_terms.clone(),
        last_payment,
        wire_details,
        wire_reports: Vec::new(),
        refund_details,
        order_status_url,
    })
}

/// Whether the public status is what a long-polling wallet waits for.
fn public_ready(status: &PublicStatus, query: &PublicStatusQuery) -> bool {
    match status {
        PublicStatus::Unpaid { already_paid, .. } => already_paid.is_some(),
        PublicStatus::Paid { status, .. } => {
            let refund_ok = query
                .refund
                .as_ref()
                .is_none_or(|min| status.refund_amount.to_units() > min.to_units());
            let obtained_ok = !query.await_refund_obtained || !status.refund_pending;
            refund_ok && obtained_ok
        }
        PublicStatus::Reorder { .. } => true,
    }
}

/// The order's notifications, and its session's (a repurchase in that session).
struct OrderWatch {
    order: Subscription,
    session: Option<Subscription>,
}

impl OrderWatch {
    fn new(
        merchant: &Merchant,
        instance_serial: i64,
        order_id: &str,
        session: Option<&str>,
    ) -> Self {
        let notifier = merchant.store().notifier();
        Self {
            order: notifier.subscribe(TOPIC_ORDER, &order_key(instance_serial, order_id)),
            session: non_empty(session)
                .map(|s| notifier.subscribe(TOPIC_SESSION, &session_key(instance_serial, s))),
        }
    }

    async fn wait(&mut self, timeout: Duration) -> bool {
        match &mut self.session {
            None => self.order.wait(timeout).await,
            Some(session) => tokio::select! {
                woke = self.order.wait(timeout) => woke,
                woke = session.wait(timeout) => woke,
            },
        }
    }
}

impl Merchant {
    /// `POST /orders/$ID/claim`.
    pub async fn claim_order(
        &self,
        instance: &InstanceRow,
        order_id: &str,
        request: ClaimRequest,
    ) -> Result<ClaimResponse, MerchantError> {
        let view = ClaimRequestView {
            nonce: request.nonce,
            token: request.token,
            now: Timestamp::now(),
        };
        match self
            .store()
            .claim_order(instance.serial, order_id, view)
            .await?
        {
            ClaimOutcome::Claimed {
                contract_terms,
                h_contract_terms,
            } => {
                let key = EddsaPrivateKey::from_bytes(&instance.merchant_priv);
                let sig = key.sign(&ContractSig { h_contract_terms });
                Ok(ClaimResponse {
                    contract_terms,
                    sig,
                })
            }
            ClaimOutcome::Refused(ClaimRefusal::NotFound) => Err(MerchantError::refused(
                ErrorCode::MerchantPostOrdersIdClaimNotFound,
                format!("no order {order_id:?} to claim with this claim token"),
            )),
            ClaimOutcome::Refused(ClaimRefusal::Expired) => Err(MerchantError::refused(
                ErrorCode::MerchantPostOrdersIdClaimNotFound,
                format!("the offer {order_id:?} expired"),
            )),
            ClaimOutcome::Refused(ClaimRefusal::AlreadyClaimed) => Err(MerchantError::refused(
                ErrorCode::MerchantPostOrdersIdClaimAlreadyClaimed,
                format!("order {order_id:?} was claimed by another wallet"),
            )),
        }
    }

    /// `POST /orders/$ID/paid`: the wallet shows the payment confirmation (1104) we gave it, and
    /// the order counts as paid under `session_id` from now on.
    pub async fn order_paid(
        &self,
        instance: &InstanceRow,
        order_id: &str,
        request: PaidRequest,
    ) -> Result<PaidRefundStatusResponse, MerchantError> {
        let message = PaymentOk {
            h_contract_terms: request.h_contract,
        };
        if cardcash_crypto::verify(&instance.merchant_pub, &request.sig, &message).is_err() {
            return Err(MerchantError::refused(
                ErrorCode::MerchantPostOrdersIdPaidCoinSignatureInvalid,
                "the payment signature is not ours over this contract hash",
            ));
        }
        match self
            .store()
            .rebind_session(
                instance.serial,
                order_id,
                &request.h_contract,
                &request.session_id,
            )
            .await?
        {
            RebindOutcome::Rebound { refunded } => Ok(PaidRefundStatusResponse {
                refunded,
                pos_confirmation: None,
            }),
            RebindOutcome::NotFound => Err(unknown_order(order_id)),
            RebindOutcome::HashMismatch => Err(MerchantError::refused(
                ErrorCode::MerchantPostOrdersIdPaidContractHashMismatch,
                format!("h_contract is not the contract hash of order {order_id:?}"),
            )),
            RebindOutcome::Unpaid => Err(MerchantError::refused_status(
                axum::http::StatusCode::CONFLICT,
                ErrorCode::GenericInternalInvariantFailure,
                format!("order {order_id:?} is not paid"),
            )),
        }
    }

    /// `GET /private/orders/$ID`, waiting up to `query.timeout` for the order to be paid in
    /// the asked session (or for a repurchase to be detected).
    pub async fn private_order_status(
        &self,
        instance: &InstanceRow,
        order_id: &str,
        query: &PrivateStatusQuery,
    ) -> Result<MerchantOrderStatusResponse, MerchantError> {
        let session = query.session_id.as_deref();
        let mut watch = OrderWatch::new(self, instance.serial, order_id, session);
        cardcash_http::wait_for_change(
            query.timeout.min(MAX_STATUS_WAIT),
            &mut watch,
            || self.private_status_now(instance, order_id, query),
            |status| match status {
                MerchantOrderStatusResponse::Paid(_) => true,
                MerchantOrderStatusResponse::Unpaid(u) => u.already_paid_order_id.is_some(),
                MerchantOrderStatusResponse::Claimed(_) => false,
            },
            |w, d| Box::pin(w.wait(d)),
        )
        .await
    }

    async fn private_status_now(
        &self,
        instance: &InstanceRow,
        order_id: &str,
        query: &PrivateStatusQuery,
    ) -> Result<MerchantOrderStatusResponse, MerchantError> {
        let session = non_empty(query.session_id.as_deref());
        let row = self
            .store()
            .order_status(instance.serial, order_id)
            .await?
            .ok_or_else(|| unknown_order(order_id))?;
        let base = self.instance_base_url(&instance.id);
        if paid_in_this_session(&row, session) {
            let details = self.store().payment_details(row.serial).await?;
            let url = match &row.h_contract_terms {
                Some(h) => {
                    order_status_url(&base, order_id, StatusCredential::Contract(h), session)
                }
                None => return Err(MerchantError::Internal("paid order without hash".into())),
            };
            return Ok(MerchantOrderStatusResponse::Paid(Box::new(private_paid(
                &row, &details, url,
            )?)));
        }
        if let Some(h) = &row.h_contract_terms {
            return Ok(MerchantOrderStatusResponse::Claimed(OrderStatusClaimed {
                order_status_url: order_status_url(
                    &base,
                    order_id,
                    StatusCredential::Contract(h),
                    session,
                ),
                contract_terms: row.contract_terms,
            }));
        }
        let already_paid = self
            .repurchase(instance, &row, session, query.allow_refunded_for_repurchase)
            .await?;
        Ok(MerchantOrderStatusResponse::Unpaid(
            OrderStatusUnpaidPrivate {
                taler_pay_uri: taler_pay_uri(&base, order_id, session, row.claim_token.as_ref()),
                creation_time: row.created_at,
                summary: row.summary.clone(),
                total_amount: Some(row.amount),
                already_paid_order_id: already_paid.as_ref().map(|p| p.order_id.clone()),
                already_paid_fulfillment_url: already_paid.map(|p| p.fulfillment_url),
                order_status_url: order_status_url(
                    &base,
                    order_id,
                    StatusCredential::Token(row.claim_token.as_ref()),
                    session,
                ),
            },
        ))
    }

    /// Another order of the instance for the same fulfillment URL paid in `session`.
    async fn repurchase(
        &self,
        instance: &InstanceRow,
        row: &OrderStatusRow,
        session: Option<&str>,
        allow_refunded: bool,
    ) -> Result<Option<PaidInSession>, MerchantError> {
        match (non_empty(session), row.fulfillment_url.as_deref()) {
            (Some(session), Some(url)) => Ok(self
                .store()
                .paid_in_session(instance.serial, session, url, allow_refunded)
                .await?
                .filter(|p| p.order_id != row.order_id)),
            _ => Ok(None),
        }
    }

    /// `GET /orders/$ID`, waiting up to `query.timeout` for a payment in the asked session, a
    /// repurchase, or the refund asked for.
    pub async fn public_order_status(
        &self,
        instance: &InstanceRow,
        order_id: &str,
        query: &PublicStatusQuery,
    ) -> Result<PublicStatus, MerchantError> {
        let mut watch =
            OrderWatch::new(self, instance.serial, order_id, query.session_id.as_deref());
        cardcash_http::wait_for_change(
            query.timeout.min(MAX_STATUS_WAIT),
            &mut watch,
            || self.public_status_now(instance, order_id, query),
            |status| public_ready(status, query),
            |w, d| Box::pin(w.wait(d)),
        )
        .await
    }

    async fn public_status_now(
        &self,
        instance: &InstanceRow,
        order_id: &str,
        query: &PublicStatusQuery,
    ) -> Result<PublicStatus, MerchantError> {
        let session = non_empty(query.session_id.as_deref());
        let row = self
            .store()
            .order_status(instance.serial, order_id)
            .await?
            .ok_or_else(|| unknown_order(order_id))?;
        if let Some(h) = &query.h_contract
            && row.h_contract_terms.as_ref() != Some(h)
        {
            return Err(MerchantError::refused(
                ErrorCode::MerchantGetOrdersIdInvalidContractHash,
                "h_contract is not the hash of this order's contract",
            ));
        }
        let token = query.token.as_deref();
        if token.is_some()
            && (row.claim_token.is_none() || !token_matches(row.claim_token.as_ref(), token))
        {
            return Err(MerchantError::refused(
                ErrorCode::MerchantGetOrdersIdInvalidToken,
                "wrong claim token for this order",
            ));
        }
        // An order made without a claim token is authenticated by its id alone.
        let authenticated =
            query.h_contract.is_some() || token.is_some() || row.claim_token.is_none();
        if !authenticated {
            return match row
                .contract_terms
                .get("public_reorder_url")
                .and_then(|v| v.as_str())
            {
                Some(url) => Ok(PublicStatus::Reorder {
                    public_reorder_url: url.to_owned(),
                }),
                None => Err(MerchantError::refused(
                    ErrorCode::MerchantGetOrdersIdInvalidToken,
                    "the order's status needs its claim token or contract hash",
                )),
            };
        }
        if paid_in_this_session(&row, session) {
            let details = self.store().payment_details(row.serial).await?;
            let status = wallet_refund_status(&row, &details);
            let goto = token.is_some() && session.is_some() && row.fulfillment_url.is_some();
            return Ok(PublicStatus::Paid {
                row: Box::new(row),
                status,
                goto,
            });
        }
        let already_paid = self
            .repurchase(instance, &row, session, query.allow_refunded_for_repurchase)
            .await?;
        let base = self.instance_base_url(&instance.id);
        Ok(PublicStatus::Unpaid {
            taler_pay_uri: taler_pay_uri(&base, order_id, session, row.claim_token.as_ref()),
            row: Box::new(row),
            already_paid,
        })
    }
}

/// The 202 body of [`PublicStatus::Paid`] with `goto`.
pub fn goto_fulfillment(row: &OrderStatusRow) -> StatusGotoResponse {
    StatusGotoResponse {
        public_reorder_url: row
            .contract_terms
            .get("public_reorder_url")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        fulfillment_url: row.fulfillment_url.clone(),
    }
}

fn unknown_order(order_id: &str) -> MerchantError {
    MerchantError::refused(
        ErrorCode::MerchantGenericOrderUnknown,
        format!("no order {order_id:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> BaseUrl {
        BaseUrl::parse(s).unwrap()
    }

    #[test]
    fn pay_uris_carry_session_and_claim_token() {
        let token = [1u8; 16];
        let t = cardcash_util::base32::encode(&token);
        assert_eq!(
            taler_pay_uri(
                &base("https://shop.example/instances/pianos/"),
                "o-1",
                Some("s1"),
                Some(&token)
            ),
            format!("taler://pay/shop.example/instances/pianos/o-1/s1?c={t}")
        );
        assert_eq!(
            taler_pay_uri(&base("http://127.0.0.1:8080/"), "o-1", None, None),
            "taler+http://pay/127.0.0.1:8080/o-1/"
        );
        assert_eq!(
            taler_pay_uri(&base("http://127.0.0.1:8080/"), "o-1", Some(""), None),
            "taler+http://pay/127.0.0.1:8080/o-1/"
        );
        // What we emit, a wallet parses back.
        let uri: TalerUri = taler_pay_uri(
            &base("https://shop.example/"),
            "o-1",
            Some("a b"),
            Some(&token),
        )
        .parse()
        .unwrap();
        let TalerUri::Pay {
            session_id,
            claim_token,
            ..
        } = uri
        else {
            panic!("pay URI");
        };
        assert_eq!(session_id, "a b");
        assert_eq!(claim_token, Some(t));
    }

    #[test]
    fn order_status_urls_name_their_credential_and_session() {
        let token = [2u8; 16];
        let t = cardcash_util::base32::encode(&token);
        let b = base("https://shop.example/instances/pianos/");
        assert_eq!(
            order_status_url(
                &b,
                "o-1",
                StatusCredential::Token(Some(&token)),
                Some("s 1")
            ),
            format!("https://shop.example/instances/pianos/orders/o-1?token={t}&session_id=s+1")
        );
        assert_eq!(
            order_status_url(&b, "o-1", StatusCredential::Token(None), None),
            "https://shop.example/instances/pianos/orders/o-1"
        );
        let h = HashCode::from_slice(&[3u8; 64]).unwrap();
        assert_eq!(
            order_status_url(&b, "o-1", StatusCredential::Contract(&h), Some("s1")),
            format!(
                "https://shop.example/instances/pianos/orders/o-1?h_contract={h}&session_id=s1"
            )
        );
    }
}
