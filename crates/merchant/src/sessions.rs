//! `GET /sessions/$SESSION_ID?fulfillment_url=…`: which order a session paid for a fulfillment
//! URL, for shops and in-browser scripts that know only the session they handed out (protocol
//! v25; docs.taler.net core/merchant/get-sessions-SESSION_ID). Public: it reveals no more than
//! an order id the customer's own session paid.
//!
//! Long polling (`timeout_ms`) waits for a payment in the session: `/pay` and `/paid` notify
//! the session's topic ([`TOPIC_SESSION`]), subscribed to before the first read so a payment
//! between the read and the wait is not missed.

use std::time::Duration;

use cardcash_util::ErrorCode;
use tokio::time::Instant;

use crate::db::instances::InstanceRow;
use crate::db::sessions::SessionOrder;
use crate::db::status::{TOPIC_SESSION, session_key};
use crate::error::MerchantError;
use crate::service::Merchant;

/// `GET /sessions/$SESSION_ID`: the order paid in the session (`paid`), else the newest one
/// created for it, waiting up to `timeout` for a payment; unknown: 404.
pub async fn session_status(
    merchant: &Merchant,
    instance: &InstanceRow,
    session_id: &str,
    fulfillment_url: &str,
    timeout: Duration,
) -> Result<SessionOrder, MerchantError> {
    let store = merchant.store();
    let deadline = Instant::now() + timeout;
    let mut subscription = (!timeout.is_zero()).then(|| {
        store
            .notifier()
            .subscribe(TOPIC_SESSION, &session_key(instance.serial, session_id))
    });
    loop {
        let found = store
            .session_order(instance.serial, session_id, fulfillment_url)
            .await?;
        let left = deadline.saturating_duration_since(Instant::now());
        match (found, subscription.as_mut()) {
            (Some(order), _) if order.paid => return Ok(order),
            // Woken or timed out: read again (after the deadline, that read is the answer).
            (_, Some(sub)) if !left.is_zero() => {
                sub.wait(left).await;
            }
            (found, _) => return answer(found, session_id),
        }
    }
}

fn answer(found: Option<SessionOrder>, session_id: &str) -> Result<SessionOrder, MerchantError> {
    found.ok_or_else(|| {
        MerchantError::refused(
            ErrorCode::MerchantGenericOrderUnknown,
            format!("no order of session {session_id:?} for this fulfillment URL"),
        )
    })
}
