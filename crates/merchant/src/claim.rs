//! `POST /orders/$ID/claim`: the rule that binds an order to one wallet's nonce (pure; the store
//! applies it on the locked row).
//!
//! Spec: docs.taler.net core/merchant `post-orders-ORDER_ID-claim` (spec/merchant.md §2.4).
//! - The claim token made at creation must be presented (compared in constant time). A missing
//!   or wrong one answers as an unknown order (404 `…CLAIM_NOT_FOUND`), as the C merchant does:
//!   whoever lacks the token learns nothing, not even that the order exists. So an order whose
//!   URI was seen by nobody but its customer cannot be stolen by guessing its id.
//! - The claim adds `"nonce"` to the stored contract terms and freezes them with their hash.
//! - The same nonce again is the same answer (a wallet retries with its nonce); another nonce is
//!   409 `…CLAIM_ALREADY_CLAIMED` (a second wallet).
//! - An unpaid order whose pay deadline passed is an expired offer: the C merchant's garbage
//!   collector deletes those, so it answers 404 `…CLAIM_NOT_FOUND`.

use cardcash_crypto::CryptoError;
use cardcash_util::{EddsaPublicKey, HashCode, Timestamp};
use serde_json::Value;

use crate::db::status::OrderStatusRow;

/// A claim as the rule sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequestView {
    pub nonce: EddsaPublicKey,
    /// The claim token as sent (base32), if any.
    pub token: Option<String>,
    pub now: Timestamp,
}

/// What the claim does.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimDecision {
    /// Already claimed with this nonce: answer with the stored contract terms.
    Replay {
        contract_terms: Value,
        h_contract_terms: HashCode,
    },
    /// Claim now: store these contract terms (with the nonce) and their hash.
    Claim {
        contract_terms: Value,
        h_contract_terms: HashCode,
    },
}

/// Why a claim is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimRefusal {
    /// No such order, or the claim token is missing or wrong.
    NotFound,
    /// Unpaid and past its pay deadline.
    Expired,
    /// Claimed by another nonce.
    AlreadyClaimed,
}

/// Whether `token` (base32 text) is the order's claim token; an order made without a token
/// takes only a claim without one.
pub fn token_matches(stored: Option<&[u8; 16]>, token: Option<&str>) -> bool {
    match (stored, token) {
        (None, None) => true,
        (Some(stored), Some(token)) => match cardcash_util::base32::decode_fixed::<16>(token) {
            Ok(given) => cardcash_http::auth::constant_time_eq(stored, &given),
            Err(_) => false,
        },
        (None, Some(token)) => token.is_empty(),
        (Some(_), None) => false,
    }
}

/// The claim rule on the stored order.
pub fn decide(
    row: &OrderStatusRow,
    request: &ClaimRequestView,
) -> Result<Result<ClaimDecision, ClaimRefusal>, CryptoError> {
    let expired = !row.paid && row.pay_deadline <= request.now;
    if let (Some(nonce), Some(h)) = (&row.nonce, &row.h_contract_terms) {
        if *nonce != request.nonce {
            return Ok(Err(ClaimRefusal::AlreadyClaimed));
        }
        if expired {
            return Ok(Err(ClaimRefusal::Expired));
        }
        return Ok(Ok(ClaimDecision::Replay {
            contract_terms: row.contract_terms.clone(),
            h_contract_terms: *h,
        }));
    }
    if !token_matches(row.claim_token.as_ref(), request.token.as_deref()) {
        return Ok(Err(ClaimRefusal::NotFound));
    }
    if expired {
        return Ok(Err(ClaimRefusal::Expired));
    }
    let mut contract_terms = row.contract_terms.clone();
    let Value::Object(map) = &mut contract_terms else {
        return Err(CryptoError::Json(
            "stored contract terms are not an object".into(),
        ));
    };
    map.insert("nonce".to_owned(), Value::String(request.nonce.to_string()));
    let h_contract_terms = cardcash_crypto::h_contract_terms(&contract_terms)?;
    Ok(Ok(ClaimDecision::Claim {
        contract_terms,
        h_contract_terms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_util::Amount;
    use serde_json::json;

    fn order(claim_token: Option<[u8; 16]>) -> OrderStatusRow {
        OrderStatusRow {
            serial: 1,
            order_id: "o1".into(),
            claim_token,
            created_at: Timestamp::from_secs(1_000),
            pay_deadline: Timestamp::from_secs(2_000),
            refund_deadline: Timestamp::from_secs(3_000),
            summary: "Sonatas".into(),
            amount: "KUDOS:5".parse::<Amount>().unwrap(),
            fulfillment_url: Some("https://shop.example/sonatas".into()),
            contract_terms: json!({"order_id": "o1", "amount": "KUDOS:5", "summary": "Sonatas"}),
            nonce: None,
            h_contract_terms: None,
            paid: false,
            paid_at: None,
            session_id: String::new(),
            refund_amount: "KUDOS:0".parse::<Amount>().unwrap(),
            wired: false,
        }
    }

    fn nonce(b: u8) -> EddsaPublicKey {
        EddsaPublicKey::from_slice(&[b; 32]).unwrap()
    }

    fn request(n: u8, token: Option<&str>, now: u64) -> ClaimRequestView {
        ClaimRequestView {
            nonce: nonce(n),
            token: token.map(str::to_owned),
            now: Timestamp::from_secs(now),
        }
    }

    #[test]
    fn a_claim_adds_the_nonce_and_hashes_the_result() {
        let token = [7u8; 16];
        let text = cardcash_util::base32::encode(&token);
        let row = order(Some(token));
        let Ok(ClaimDecision::Claim {
            contract_terms,
            h_contract_terms,
        }) = decide(&row, &request(1, Some(&text), 1_500)).unwrap()
        else {
            panic!("claims");
        };
        assert_eq!(contract_terms["nonce"], nonce(1).to_string());
        assert_eq!(contract_terms["summary"], "Sonatas");
        assert_eq!(
            h_contract_terms,
            cardcash_crypto::h_contract_terms(&contract_terms).unwrap()
        );
    }

    #[test]
    fn without_the_right_token_the_order_is_not_found() {
        let row = order(Some([7u8; 16]));
        let wrong = cardcash_util::base32::encode(&[8u8; 16]);
        for token in [None, Some(wrong.as_str()), Some("not base32!"), Some("")] {
            assert_eq!(
                decide(&row, &request(1, token, 1_500)).unwrap(),
                Err(ClaimRefusal::NotFound),
                "{token:?}"
            );
        }
        // An order made without a token takes claims without one only.
        let open = order(None);
        assert!(decide(&open, &request(1, None, 1_500)).unwrap().is_ok());
        assert_eq!(
            decide(&open, &request(1, Some(&wrong), 1_500)).unwrap(),
            Err(ClaimRefusal::NotFound)
        );
    }

    #[test]
    fn claimed_orders_answer_their_nonce_only() {
        let mut row = order(Some([7u8; 16]));
        row.nonce = Some(nonce(1));
        row.h_contract_terms = Some(HashCode::from_slice(&[3u8; 64]).unwrap());
        assert!(matches!(
            decide(&row, &request(1, None, 1_500)).unwrap(),
            Ok(ClaimDecision::Replay { .. })
        ));
        assert_eq!(
            decide(&row, &request(2, None, 1_500)).unwrap(),
            Err(ClaimRefusal::AlreadyClaimed)
        );
    }

    #[test]
    fn expired_unpaid_offers_are_refused() {
        let token = [7u8; 16];
        let text = cardcash_util::base32::encode(&token);
        let row = order(Some(token));
        assert_eq!(
            decide(&row, &request(1, Some(&text), 2_000)).unwrap(),
            Err(ClaimRefusal::Expired)
        );
    }
}
