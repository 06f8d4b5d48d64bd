//! Spending coins, protocol v23: `POST /batch-deposit` (a merchant deposits the coins of one
//! payment), `POST /coins/$COIN_PUB/refund`, the conflict bodies of both, and
//! `GET /coins/$COIN_PUB/history` (a coin's signed history).
//!
//! Sources: the C exchange's `taler-exchange-httpd_batch-deposit.c`,
//! `taler-exchange-httpd_refund.c`, `taler-exchange-httpd_coins_get.c`,
//! `taler-exchange-httpd_db.c` (`TEH_make_coin_known`), `taler-exchange-httpd_responses.c`; its
//! client `exchange_api_batch_deposit.c`, `exchange_api_coins_history.c`.
//!
//! Answers of `/batch-deposit`: 200 [`BatchDepositResponse`] (one exchange signature, purpose
//! 1033, over the whole batch); 409 with one of
//! - [`CoinInsufficientFundsResponse`], `EXCHANGE_GENERIC_INSUFFICIENT_FUNDS`: a coin would be
//!   overspent (the first such coin);
//! - [`DepositConflictingContractResponse`], `EXCHANGE_DEPOSIT_CONFLICTING_CONTRACT`: the same
//!   contract was deposited with other wire details;
//! - [`CoinDenominationConflictResponse`], `EXCHANGE_GENERIC_COIN_CONFLICTING_DENOMINATION_KEY`:
//!   the coin is known under another denomination;
//! - [`CoinAgeCommitmentConflictResponse`], `EXCHANGE_GENERIC_COIN_CONFLICTING_AGE_HASH`;
//!
//! 410 [`super::withdraw::DenominationErrorResponse`] for an expired denomination, 404 for an
//! unknown one, 403 for a bad coin signature (`EXCHANGE_DEPOSIT_COIN_SIGNATURE_INVALID`) or
//! denomination signature (`EXCHANGE_DENOMINATION_SIGNATURE_INVALID`), 400 for a refund
//! deadline after the wire deadline or a wire deadline of "never".
//!
//! Refunds answer 200 [`RefundResponse`]; 409 [`CoinInsufficientFundsResponse`] with
//! `EXCHANGE_REFUND_CONFLICT_DEPOSIT_INSUFFICIENT` (more refunded than deposited) or
//! `EXCHANGE_REFUND_INCONSISTENT_AMOUNT` (same `rtransaction_id`, other amount); 404
//! `EXCHANGE_REFUND_DEPOSIT_NOT_FOUND`/`EXCHANGE_REFUND_COIN_NOT_FOUND`; 410
//! `EXCHANGE_REFUND_MERCHANT_ALREADY_PAID`; 403 `EXCHANGE_REFUND_MERCHANT_SIGNATURE_INVALID`.
//!
//! Differences from our notes (taler-protocol.md §6) and the issue:
//! - **The double-spending 409 carries no coin history in v23**: it is `{code, hint, coin_pub,
//!   h_denom_pub}`. A wallet that wants the proof asks `GET /coins/$COIN_PUB/history?start=N`
//!   with the header [`COIN_HISTORY_SIGNATURE_HEADER`] (the coin's signature over `start`, purpose
//!   "wallet coin history"); the answer is [`CoinHistoryResponse`] (200), 204 when nothing is
//!   newer than `start`, with `ETag`/`If-None-Match` like the reserve history.
//! - `merchant_sig` of a batch deposit is optional (since v22; checked only when present).
//!   `refund_deadline` is omitted when zero. The server reads the policy from `policy`; the C
//!   client writes `policy_details` (accepted here as an alias). Policies are an extension
//!   cardcash refuses.
//! - The response may carry `transaction_base_url` (the C client reads it; the v23 server does
//!   not write it).
//! - A `DEPOSIT` history entry's `wallet_data_hash` and `h_policy` are optional: the C client
//!   reads them, the v23 server does not write them (without `wallet_data_hash` a deposit made
//!   with one cannot be re-verified from the history).

use cardcash_util::{
    Amount, BaseUrl, EddsaPublicKey, EddsaSignature, HashCode, PaytoUri, ShortHashCode, Timestamp,
    WireSalt,
};
use serde::{Deserialize, Serialize};

use super::denom::{BlindingKeySecret, DenominationPublicKey, UnblindedSignature};
use crate::common::ErrorDetail;

/// The header of `GET /coins/$COIN_PUB/history` that carries the coin's signature over the
/// `start` offset.
pub const COIN_HISTORY_SIGNATURE_HEADER: &str = "Taler-Coin-History-Signature";

/// `POST /batch-deposit` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDepositRequest {
    /// The merchant's account; with `wire_salt` it gives `h_wire`.
    pub merchant_payto_uri: PaytoUri,
    /// The salt of `h_wire`.
    pub wire_salt: WireSalt,
    /// The merchant's public key.
    pub merchant_pub: EddsaPublicKey,
    /// The merchant's signature over the contract (purpose 1101); optional since v22.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub merchant_sig: Option<EddsaSignature>,
    /// Hash of the contract terms.
    pub h_contract_terms: HashCode,
    /// Hash over additional wallet inputs (zero in the coin signatures when absent).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wallet_data_hash: Option<HashCode>,
    /// The coins.
    pub coins: Vec<BatchDepositCoin>,
    /// A deposit policy (an extension; cardcash refuses deposits with one).
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        alias = "policy_details"
    )]
    pub policy: Option<serde_json::Map<String, serde_json::Value>>,
    /// The contract's timestamp.
    pub timestamp: Timestamp,
    /// Until when the merchant may refund (absent: no refunds).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refund_deadline: Option<Timestamp>,
    /// When the exchange must have wired the money.
    pub wire_transfer_deadline: Timestamp,
}

/// One coin of a batch deposit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDepositCoin {
    /// How much of the coin is spent, deposit fee included.
    pub contribution: Amount,
    /// The coin's denomination.
    pub denom_pub_hash: HashCode,
    /// The denomination's signature over the coin.
    pub ub_sig: UnblindedSignature,
    /// The coin.
    pub coin_pub: EddsaPublicKey,
    /// Hash of the coin's age commitment, for age-restricted coins.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub h_age_commitment: Option<ShortHashCode>,
    /// The coin's signature over the deposit (purpose 1201).
    pub coin_sig: EddsaSignature,
}

/// `POST /batch-deposit` response (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchDepositResponse {
    /// When the exchange accepted the deposit.
    pub exchange_timestamp: Timestamp,
    /// The signing key of `exchange_sig`.
    pub exchange_pub: EddsaPublicKey,
    /// The exchange's confirmation (purpose 1033, over all coin signatures of the batch).
    pub exchange_sig: EddsaSignature,
    /// Where the wallet may look the transaction up (not written by the v23 C exchange).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transaction_base_url: Option<BaseUrl>,
}

/// A 409 about one coin's balance: a deposit that would overspend it
/// (`EXCHANGE_GENERIC_INSUFFICIENT_FUNDS`), a refund above the deposit
/// (`EXCHANGE_REFUND_CONFLICT_DEPOSIT_INSUFFICIENT`, `EXCHANGE_REFUND_INCONSISTENT_AMOUNT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinInsufficientFundsResponse {
    /// The Taler error (`code`, `hint`).
    #[serde(flatten)]
    pub error: ErrorDetail,
    /// The coin.
    pub coin_pub: EddsaPublicKey,
    /// The coin's denomination.
    pub h_denom_pub: HashCode,
}

/// The 409 `EXCHANGE_DEPOSIT_CONFLICTING_CONTRACT`: the contract is already deposited with
/// other wire details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositConflictingContractResponse {
    /// The Taler error (`code`, `hint`).
    #[serde(flatten)]
    pub error: ErrorDetail,
    /// The wire hash the contract was deposited with.
    pub h_wire: HashCode,
}

/// The 409 `EXCHANGE_GENERIC_COIN_CONFLICTING_DENOMINATION_KEY`: the coin is known under
/// another denomination, which is shown with its signature as proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinDenominationConflictResponse {
    /// The Taler error (`code`, `hint`).
    #[serde(flatten)]
    pub error: ErrorDetail,
    /// The coin.
    pub coin_pub: EddsaPublicKey,
    /// The denomination the exchange knows the coin under.
    pub prev_denom_pub: DenominationPublicKey,
    /// That denomination's signature over the coin.
    pub prev_denom_sig: UnblindedSignature,
}

/// The 409 `EXCHANGE_GENERIC_COIN_CONFLICTING_AGE_HASH`: the coin is known with another age
/// commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinAgeCommitmentConflictResponse {
    /// The Taler error (`code`, `hint`).
    #[serde(flatten)]
    pub error: ErrorDetail,
    /// The coin.
    pub coin_pub: EddsaPublicKey,
    /// The coin's denomination.
    pub h_denom_pub: HashCode,
    /// The age commitment hash the exchange knows (absent when it knows none).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expected_age_commitment_hash: Option<ShortHashCode>,
    /// Which kind of mismatch.
    pub conflict_detail: String,
}

/// `POST /coins/$COIN_PUB/refund` body (sent by the merchant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// How much of the coin's deposit to give back (refund fee included).
    pub refund_amount: Amount,
    /// The contract the coin was deposited for.
    pub h_contract_terms: HashCode,
    /// The merchant.
    pub merchant_pub: EddsaPublicKey,
    /// The merchant's id of this refund; the same id with the same amount is a replay.
    pub rtransaction_id: u64,
    /// The merchant's signature (purpose 1102).
    pub merchant_sig: EddsaSignature,
}

/// `POST /coins/$COIN_PUB/refund` response (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundResponse {
    /// The exchange's confirmation (purpose 1038).
    pub exchange_sig: EddsaSignature,
    /// The signing key of `exchange_sig`.
    pub exchange_pub: EddsaPublicKey,
}

/// `GET /coins/$COIN_PUB/history` (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinHistoryResponse {
    /// The coin's denomination.
    pub h_denom_pub: HashCode,
    /// What is left of the coin.
    pub balance: Amount,
    /// The transactions after the requested offset.
    pub history: Vec<CoinHistoryEntry>,
}

/// One transaction of a coin, tagged by `"type"`.
#[expect(
    clippy::large_enum_variant,
    reason = "a wire type built and read once per history entry; boxing would only obscure it"
)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING-KEBAB-CASE")]
pub enum CoinHistoryEntry {
    /// The coin was deposited.
    Deposit {
        /// The coin's contribution, deposit fee included.
        amount: Amount,
        /// The deposit fee.
        deposit_fee: Amount,
        /// The contract's timestamp.
        timestamp: Timestamp,
        /// Until when the merchant may refund (absent: no refunds).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        refund_deadline: Option<Timestamp>,
        /// The merchant.
        merchant_pub: EddsaPublicKey,
        /// The contract.
        h_contract_terms: HashCode,
        /// The merchant's wire hash.
        h_wire: HashCode,
        /// Hash of the coin's age commitment, for age-restricted coins.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        h_age_commitment: Option<ShortHashCode>,
        /// The wallet data hash the coin signed, if any (not written by the v23 C exchange).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        wallet_data_hash: Option<HashCode>,
        /// The policy hash the coin signed, if any (not written by the v23 C exchange).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        h_policy: Option<HashCode>,
        /// The coin's signature (purpose 1201).
        coin_sig: EddsaSignature,
    },
    /// The coin was melted (refresh).
    Melt {
        /// The melted amount, melt fee included.
        amount: Amount,
        /// The melt fee.
        melt_fee: Amount,
        /// The refresh commitment.
        rc: HashCode,
        /// Hash of the coin's age commitment, for age-restricted coins.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        h_age_commitment: Option<ShortHashCode>,
        /// The coin's signature (purpose 1202).
        coin_sig: EddsaSignature,
    },
    /// A deposit of the coin was refunded.
    Refund {
        /// The amount given back to the coin (refund minus refund fee).
        amount: Amount,
        /// The refund fee.
        refund_fee: Amount,
        /// The contract.
        h_contract_terms: HashCode,
        /// The merchant.
        merchant_pub: EddsaPublicKey,
        /// The merchant's refund id.
        rtransaction_id: u64,
        /// The merchant's signature (purpose 1102).
        merchant_sig: EddsaSignature,
    },
    /// The coin was recouped into its reserve.
    Recoup {
        /// The amount recouped.
        amount: Amount,
        /// The exchange's confirmation (purpose 1039).
        exchange_sig: EddsaSignature,
        /// The signing key of `exchange_sig`.
        exchange_pub: EddsaPublicKey,
        /// The reserve credited.
        reserve_pub: EddsaPublicKey,
        /// The coin's signature (purpose 1203).
        coin_sig: EddsaSignature,
        /// The coin's blinding key secret.
        coin_blind: BlindingKeySecret,
        /// When it was recouped.
        timestamp: Timestamp,
    },
    /// This coin received the value of a recouped fresh coin it was refreshed into.
    OldCoinRecoup {
        /// The amount received.
        amount: Amount,
        /// The exchange's confirmation (purpose 1041).
        exchange_sig: EddsaSignature,
        /// The signing key of `exchange_sig`.
        exchange_pub: EddsaPublicKey,
        /// The recouped fresh coin.
        coin_pub: EddsaPublicKey,
        /// When it happened.
        timestamp: Timestamp,
    },
    /// This fresh coin was recouped into the coin it was refreshed from.
    RecoupRefresh {
        /// The amount recouped.
        amount: Amount,
        /// The exchange's confirmation (purpose 1041).
        exchange_sig: EddsaSignature,
        /// The signing key of `exchange_sig`.
        exchange_pub: EddsaPublicKey,
        /// The old coin credited.
        old_coin_pub: EddsaPublicKey,
        /// The coin's signature (purpose 1206).
        coin_sig: EddsaSignature,
        /// The coin's blinding key secret.
        coin_blind: BlindingKeySecret,
        /// When it happened.
        timestamp: Timestamp,
    },
    /// The coin was deposited into a purse.
    PurseDeposit {
        /// The coin's contribution.
        amount: Amount,
        /// The exchange holding the purse.
        exchange_base_url: BaseUrl,
        /// Hash of the coin's age commitment, for age-restricted coins.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        h_age_commitment: Option<ShortHashCode>,
        /// The purse.
        purse_pub: EddsaPublicKey,
        /// Whether the purse expired and the deposit was refunded.
        refunded: bool,
        /// The coin's signature (purpose 1211).
        coin_sig: EddsaSignature,
    },
    /// A purse deposit was refunded.
    PurseRefund {
        /// The amount given back (refund minus fee).
        amount: Amount,
        /// The refund fee.
        refund_fee: Amount,
        /// The exchange's confirmation.
        exchange_sig: EddsaSignature,
        /// The signing key of `exchange_sig`.
        exchange_pub: EddsaPublicKey,
        /// The purse.
        purse_pub: EddsaPublicKey,
    },
    /// The coin paid for keeping a reserve open.
    ReserveOpenDeposit {
        /// The coin's contribution.
        coin_contribution: Amount,
        /// The reserve's signature over the open request.
        reserve_sig: EddsaSignature,
        /// The coin's signature.
        coin_sig: EddsaSignature,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_support::{HASH, PUB, SHORT, SIG, assert_round_trip, b32};
    use cardcash_util::ErrorCode;

    fn coin(ub_sig: &str, extra: &str) -> String {
        format!(
            r#"{{"contribution":"KUDOS:1","denom_pub_hash":"{HASH}","ub_sig":{ub_sig},
            "coin_pub":"{PUB}"{extra},"coin_sig":"{SIG}"}}"#
        )
    }

    /// A batch deposit as the C merchant (`exchange_api_batch_deposit.c`) writes it, one RSA
    /// and one CS coin.
    fn batch_deposit_json() -> String {
        let rsa = coin(
            &format!(r#"{{"cipher":"RSA","rsa_signature":"{}"}}"#, b32(&[8; 256])),
            "",
        );
        let cs = coin(
            &format!(
                r#"{{"cipher":"CS","cs_signature_r":"{}","cs_signature_s":"{}"}}"#,
                b32(&[1; 32]),
                b32(&[2; 32])
            ),
            &format!(r#","h_age_commitment":"{SHORT}""#),
        );
        format!(
            r#"{{"merchant_payto_uri":"payto://x-taler-bank/bank.example/shop?receiver-name=Shop",
            "wire_salt":"000G40R40M30E209185GR38E1W","h_contract_terms":"{HASH}",
            "coins":[{rsa},{cs}],"wallet_data_hash":"{HASH}","timestamp":{{"t_s":1700000000}},
            "merchant_pub":"{PUB}","merchant_sig":"{SIG}","refund_deadline":{{"t_s":1700003600}},
            "wire_transfer_deadline":{{"t_s":1700086400}}}}"#
        )
    }

    #[test]
    fn batch_deposit_round_trips() {
        let req: BatchDepositRequest = assert_round_trip(&batch_deposit_json());
        assert_eq!(req.coins.len(), 2);
        assert!(matches!(req.coins[1].ub_sig, UnblindedSignature::Cs { .. }));
        assert!(req.coins[1].h_age_commitment.is_some() && req.coins[0].h_age_commitment.is_none());
        // merchant_sig, wallet_data_hash and refund_deadline are optional
        let mut v: serde_json::Value = serde_json::from_str(&batch_deposit_json()).unwrap();
        for optional in ["merchant_sig", "wallet_data_hash", "refund_deadline"] {
            v.as_object_mut().unwrap().remove(optional).unwrap();
        }
        let req: BatchDepositRequest = serde_json::from_value(v.clone()).unwrap();
        assert!(req.merchant_sig.is_none() && req.refund_deadline.is_none());
        // the C client's name of the policy
        v.as_object_mut().unwrap().insert(
            "policy_details".into(),
            serde_json::json!({"type": "escrow"}),
        );
        let req: BatchDepositRequest = serde_json::from_value(v).unwrap();
        assert!(req.policy.is_some());
        let resp: BatchDepositResponse = assert_round_trip(&format!(
            r#"{{"exchange_timestamp":{{"t_s":1700000001}},"exchange_pub":"{PUB}","exchange_sig":"{SIG}"}}"#
        ));
        assert!(resp.transaction_base_url.is_none());
    }

    #[test]
    fn conflict_bodies() {
        let code = ErrorCode::ExchangeGenericInsufficientFunds.code();
        let spent: CoinInsufficientFundsResponse = assert_round_trip(&format!(
            r#"{{"hint":"insufficient funds","code":{code},"coin_pub":"{PUB}","h_denom_pub":"{HASH}"}}"#
        ));
        assert_eq!(
            spent.error.error_code(),
            Some(ErrorCode::ExchangeGenericInsufficientFunds)
        );
        let _: DepositConflictingContractResponse = assert_round_trip(&format!(
            r#"{{"h_wire":"{HASH}","hint":"conflicting contract","code":{}}}"#,
            ErrorCode::ExchangeDepositConflictingContract.code()
        ));
        let denom: CoinDenominationConflictResponse = assert_round_trip(&format!(
            r#"{{"hint":"conflicting denomination","code":{},"coin_pub":"{PUB}",
            "prev_denom_pub":{{"cipher":"RSA","age_mask":0,"rsa_pub":"{}"}},
            "prev_denom_sig":{{"cipher":"RSA","rsa_signature":"{}"}}}}"#,
            ErrorCode::ExchangeGenericCoinConflictingDenominationKey.code(),
            b32(&[1, 0, 0, 3, 0xc5, 1, 0, 1]),
            b32(&[8; 256])
        ));
        assert!(matches!(
            denom.prev_denom_pub,
            DenominationPublicKey::Rsa { .. }
        ));
        let age: CoinAgeCommitmentConflictResponse = assert_round_trip(&format!(
            r#"{{"hint":"age","code":{},"coin_pub":"{PUB}","h_denom_pub":"{HASH}",
            "conflict_detail":"expected NULL age commitment hash"}}"#,
            ErrorCode::ExchangeGenericCoinConflictingAgeHash.code()
        ));
        assert!(age.expected_age_commitment_hash.is_none());
    }

    #[test]
    fn refund_round_trips() {
        let req: RefundRequest = assert_round_trip(&format!(
            r#"{{"refund_amount":"KUDOS:0.5","h_contract_terms":"{HASH}","merchant_pub":"{PUB}",
            "rtransaction_id":18446744073709551615,"merchant_sig":"{SIG}"}}"#
        ));
        assert_eq!(req.rtransaction_id, u64::MAX);
        let _: RefundResponse = assert_round_trip(&format!(
            r#"{{"exchange_sig":"{SIG}","exchange_pub":"{PUB}"}}"#
        ));
    }

    /// A coin history in the shape `compile_transaction_history` writes, every entry type.
    #[test]
    fn coin_history_round_trips_with_every_entry_type() {
        let blind = b32(&[7; 32]);
        let text = format!(
            r#"{{"h_denom_pub":"{HASH}","balance":"KUDOS:0.2","history":[
            {{"type":"DEPOSIT","amount":"KUDOS:1","deposit_fee":"KUDOS:0.01","timestamp":{{"t_s":1}},
              "refund_deadline":{{"t_s":2}},"merchant_pub":"{PUB}","h_contract_terms":"{HASH}",
              "h_wire":"{HASH}","coin_sig":"{SIG}"}},
            {{"type":"MELT","amount":"KUDOS:1","melt_fee":"KUDOS:0.01","rc":"{HASH}","coin_sig":"{SIG}"}},
            {{"type":"REFUND","amount":"KUDOS:0.49","refund_fee":"KUDOS:0.01","h_contract_terms":"{HASH}",
              "merchant_pub":"{PUB}","rtransaction_id":1,"merchant_sig":"{SIG}"}},
            {{"type":"RECOUP","amount":"KUDOS:1","exchange_sig":"{SIG}","exchange_pub":"{PUB}",
              "reserve_pub":"{PUB}","coin_sig":"{SIG}","coin_blind":"{blind}","timestamp":{{"t_s":3}}}},
            {{"type":"OLD-COIN-RECOUP","amount":"KUDOS:1","exchange_sig":"{SIG}","exchange_pub":"{PUB}",
              "coin_pub":"{PUB}","timestamp":{{"t_s":4}}}},
            {{"type":"RECOUP-REFRESH","amount":"KUDOS:1","exchange_sig":"{SIG}","exchange_pub":"{PUB}",
              "old_coin_pub":"{PUB}","coin_sig":"{SIG}","coin_blind":"{blind}","timestamp":{{"t_s":5}}}},
            {{"type":"PURSE-DEPOSIT","amount":"KUDOS:1","exchange_base_url":"https://exchange.example/",
              "h_age_commitment":"{SHORT}","purse_pub":"{PUB}","refunded":false,"coin_sig":"{SIG}"}},
            {{"type":"PURSE-REFUND","amount":"KUDOS:1","refund_fee":"KUDOS:0","exchange_sig":"{SIG}",
              "exchange_pub":"{PUB}","purse_pub":"{PUB}"}},
            {{"type":"RESERVE-OPEN-DEPOSIT","coin_contribution":"KUDOS:0.1","reserve_sig":"{SIG}",
              "coin_sig":"{SIG}"}}]}}"#
        );
        let h: CoinHistoryResponse = assert_round_trip(&text);
        assert_eq!(h.history.len(), 9);
        assert!(matches!(
            &h.history[3],
            CoinHistoryEntry::Recoup { coin_blind, .. } if *coin_blind == BlindingKeySecret::from_bytes([7; 32])
        ));
        assert!(matches!(
            h.history[8],
            CoinHistoryEntry::ReserveOpenDeposit { .. }
        ));
    }
}
