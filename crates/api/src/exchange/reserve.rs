//! Reserves: `GET /reserves/$RESERVE_PUB` (the balance, with long polling) and
//! `GET /reserves/$RESERVE_PUB/history` (the signed history request), protocol v23.
//!
//! Sources: the C exchange's `taler-exchange-httpd_reserves_get.c` and
//! `taler-exchange-httpd_reserves_history.c`; its client `exchange_api_reserves_history.c`.
//!
//! - `GET /reserves/$RESERVE_PUB?timeout_ms=N` answers [`ReserveSummaryResponse`] at once when
//!   the reserve exists; an unknown reserve is a 404 `EXCHANGE_GENERIC_RESERVE_UNKNOWN` once the
//!   long poll's window is over (the exchange waits up to `timeout_ms` for the first credit).
//! - `GET /reserves/$RESERVE_PUB/history?start=OFFSET` needs the header
//!   [`RESERVE_HISTORY_SIGNATURE_HEADER`] carrying the reserve's EdDSA signature (purpose 1208,
//!   wallet reserve history; body: `start` as a big-endian `u64`). A wrong signature is a 403
//!   `EXCHANGE_RESERVE_HISTORY_BAD_SIGNATURE`, an unknown reserve a 404. The answer lists the
//!   entries after offset `start`: 200 with [`ReserveHistoryResponse`], 204 when there are none;
//!   it carries `ETag: "<offset>"` and `Cache-Control: no-cache`, and an `If-None-Match` with
//!   the current offset is answered 304.
//!
//! Differences from our notes (taler-protocol.md §6 only shows v12's `{balance}`): the summary
//! also has `last_origin` (the payto URI of the latest credit, optional); the history request is
//! signed through a header, not a body; entries are tagged by `type` as below. Where the C
//! sources disagree with themselves we follow what the server writes: `OPEN` entries carry
//! `open_fee` (the C client reads `open_payment`, accepted as an alias) and `OPEN`/`CLOSE`
//! entries have no `amount` (the C client requires one on every entry).

use cardcash_util::{
    Amount, EddsaPublicKey, EddsaSignature, HashCode, PaytoUri, ShortHashCode, Timestamp,
};
use serde::{Deserialize, Serialize};

/// The header of `GET /reserves/$RESERVE_PUB/history` that carries the reserve's signature
/// (base32 EdDSA signature, purpose 1208 over the `start` offset).
pub const RESERVE_HISTORY_SIGNATURE_HEADER: &str = "Taler-Reserve-History-Signature";

/// `GET /reserves/$RESERVE_PUB`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveSummaryResponse {
    /// What is left in the reserve.
    pub balance: Amount,
    /// The account of the latest incoming transfer, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_origin: Option<PaytoUri>,
}

/// `GET /reserves/$RESERVE_PUB/history` (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveHistoryResponse {
    /// The reserve's current balance.
    pub balance: Amount,
    /// The entries after the requested offset, oldest first.
    pub history: Vec<ReserveHistoryEntry>,
}

/// One entry of a reserve's history, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReserveHistoryEntry {
    /// An incoming wire transfer credited the reserve.
    Credit {
        /// The amount credited.
        amount: Amount,
        /// When the bank executed the transfer.
        timestamp: Timestamp,
        /// Who sent the money.
        sender_account_url: PaytoUri,
        /// The transfer's row in the exchange's wire import (its reference at the bank).
        wire_reference: u64,
    },
    /// A coin was withdrawn.
    Withdraw {
        /// The coin's value plus the withdraw fee.
        amount: Amount,
        /// The reserve's signature over the withdrawal (purpose 1200).
        reserve_sig: EddsaSignature,
        /// Hash of the coin envelope.
        h_coin_envelope: HashCode,
        /// Hash of the denomination's public key.
        h_denom_pub: HashCode,
        /// The withdraw fee charged.
        withdraw_fee: Amount,
    },
    /// A coin of a revoked denomination was paid back into the reserve.
    Recoup {
        /// The amount paid back.
        amount: Amount,
        /// The signing key of `exchange_sig`.
        exchange_pub: EddsaPublicKey,
        /// The exchange's confirmation (purpose 1039).
        exchange_sig: EddsaSignature,
        /// When the recoup happened.
        timestamp: Timestamp,
        /// The recouped coin.
        coin_pub: EddsaPublicKey,
    },
    /// The reserve was closed and its rest wired back.
    Closing {
        /// What the closing took from the reserve, the closing fee included (the C exchange's
        /// `reserves_close.amount`; wired back: `amount − closing_fee`).
        amount: Amount,
        /// Where the money went.
        receiver_account_details: PaytoUri,
        /// The wire transfer identifier.
        wtid: ShortHashCode,
        /// The signing key of `exchange_sig`.
        exchange_pub: EddsaPublicKey,
        /// The exchange's confirmation (purpose 1040).
        exchange_sig: EddsaSignature,
        /// When the reserve was closed.
        timestamp: Timestamp,
        /// The closing fee charged.
        closing_fee: Amount,
    },
    /// A purse was merged into the reserve (peer-to-peer payment).
    Merge {
        /// The purse's amount plus the purse fee.
        amount: Amount,
        /// The contract of the purse.
        h_contract_terms: HashCode,
        /// The merge key.
        merge_pub: EddsaPublicKey,
        /// Minimum age the coins needed.
        min_age: u32,
        /// Purse flags.
        flags: u32,
        /// The purse.
        purse_pub: EddsaPublicKey,
        /// The reserve's signature over the merge.
        reserve_sig: EddsaSignature,
        /// When it was merged.
        merge_timestamp: Timestamp,
        /// When the purse would have expired.
        purse_expiration: Timestamp,
        /// The purse fee charged.
        purse_fee: Amount,
        /// Whether the purse was fully merged.
        merged: bool,
    },
    /// A paid history request.
    History {
        /// The history fee charged.
        amount: Amount,
        /// The reserve's signature over the request.
        reserve_sig: EddsaSignature,
        /// When it was requested.
        request_timestamp: Timestamp,
    },
    /// A request to keep the reserve open longer.
    Open {
        /// Purses the reserve asked to be allowed.
        requested_min_purses: u32,
        /// The reserve's signature over the request.
        reserve_sig: EddsaSignature,
        /// When it was requested.
        request_timestamp: Timestamp,
        /// Until when the reserve stays open.
        requested_expiration: Timestamp,
        /// The fee charged from the reserve.
        #[serde(alias = "open_payment")]
        open_fee: Amount,
    },
    /// A request to close the reserve.
    Close {
        /// The reserve's signature over the request.
        reserve_sig: EddsaSignature,
        /// Hash of the account to wire the rest to (absent: the origin account).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        h_payto: Option<ShortHashCode>,
        /// When it was requested.
        request_timestamp: Timestamp,
    },
}

impl ReserveHistoryEntry {
    /// The entry's amount, for the entries that move money in or out with one (`None` for
    /// open and close requests, whose fee is elsewhere or charged later).
    pub fn amount(&self) -> Option<&Amount> {
        match self {
            Self::Credit { amount, .. }
            | Self::Withdraw { amount, .. }
            | Self::Recoup { amount, .. }
            | Self::Closing { amount, .. }
            | Self::Merge { amount, .. }
            | Self::History { amount, .. } => Some(amount),
            Self::Open { .. } | Self::Close { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_support::{HASH, PUB, SHORT, SIG, assert_round_trip};

    #[test]
    fn summary_with_and_without_origin() {
        let s: ReserveSummaryResponse = assert_round_trip(
            r#"{"last_origin":"payto://x-taler-bank/bank.example/alice?receiver-name=Alice","balance":"KUDOS:4.97"}"#,
        );
        assert_eq!(s.balance.to_string(), "KUDOS:4.97");
        assert_eq!(
            s.last_origin.unwrap().receiver_name(),
            Some("Alice"),
            "the payto parameters are kept"
        );
        let s: ReserveSummaryResponse = assert_round_trip(r#"{"balance":"KUDOS:0"}"#);
        assert!(s.last_origin.is_none());
    }

    /// A history in the shape `compile_reserve_history` writes: every entry type it knows.
    fn history_json() -> String {
        format!(
            r#"{{"balance":"KUDOS:3.98","history":[
            {{"type":"CREDIT","timestamp":{{"t_s":1700000000}},
              "sender_account_url":"payto://iban/DE89370400440532013000?receiver-name=Alice",
              "wire_reference":42,"amount":"KUDOS:5"}},
            {{"type":"WITHDRAW","reserve_sig":"{SIG}","h_coin_envelope":"{HASH}","h_denom_pub":"{HASH}",
              "withdraw_fee":"KUDOS:0.01","amount":"KUDOS:1.01"}},
            {{"type":"RECOUP","exchange_pub":"{PUB}","exchange_sig":"{SIG}",
              "timestamp":{{"t_s":1700000100}},"amount":"KUDOS:1","coin_pub":"{PUB}"}},
            {{"type":"CLOSING","receiver_account_details":"payto://iban/DE89370400440532013000",
              "wtid":"{SHORT}","exchange_pub":"{PUB}","exchange_sig":"{SIG}",
              "timestamp":{{"t_s":1700000200}},"amount":"KUDOS:0.99","closing_fee":"KUDOS:0.01"}},
            {{"type":"MERGE","h_contract_terms":"{HASH}","merge_pub":"{PUB}","min_age":0,"flags":0,
              "purse_pub":"{PUB}","reserve_sig":"{SIG}","merge_timestamp":{{"t_s":1700000300}},
              "purse_expiration":{{"t_s":1700086400}},"purse_fee":"KUDOS:0","amount":"KUDOS:2",
              "merged":true}},
            {{"type":"HISTORY","reserve_sig":"{SIG}","request_timestamp":{{"t_s":1700000400}},
              "amount":"KUDOS:0"}},
            {{"type":"OPEN","requested_min_purses":2,"reserve_sig":"{SIG}",
              "request_timestamp":{{"t_s":1700000500}},"requested_expiration":{{"t_s":1800000000}},
              "open_fee":"KUDOS:0.1"}},
            {{"type":"CLOSE","reserve_sig":"{SIG}","h_payto":"{SHORT}",
              "request_timestamp":{{"t_s":1700000600}}}}]}}"#
        )
    }

    #[test]
    fn history_sample_round_trips_with_every_entry_type() {
        let h: ReserveHistoryResponse = assert_round_trip(&history_json());
        assert_eq!(h.history.len(), 8);
        assert!(matches!(
            &h.history[0],
            ReserveHistoryEntry::Credit { wire_reference: 42, amount, .. } if amount.to_string() == "KUDOS:5"
        ));
        assert_eq!(
            h.history[1].amount().map(ToString::to_string).as_deref(),
            Some("KUDOS:1.01")
        );
        assert_eq!(h.history[6].amount(), None);
    }

    #[test]
    fn history_entry_variants_as_the_c_client_writes_them() {
        // the C client's name for the open fee
        let open = format!(
            r#"{{"type":"OPEN","requested_min_purses":2,"reserve_sig":"{SIG}",
              "request_timestamp":{{"t_s":1}},"requested_expiration":{{"t_s":2}},
              "open_payment":"KUDOS:0.1","amount":"KUDOS:0.1"}}"#
        );
        let entry: ReserveHistoryEntry = serde_json::from_str(&open).unwrap();
        assert!(
            matches!(entry, ReserveHistoryEntry::Open { open_fee, .. } if open_fee.to_string() == "KUDOS:0.1")
        );
        // a close request to the origin account has no h_payto
        let close =
            format!(r#"{{"type":"CLOSE","reserve_sig":"{SIG}","request_timestamp":{{"t_s":1}}}}"#);
        let entry: ReserveHistoryEntry = assert_round_trip(&close);
        assert!(matches!(
            entry,
            ReserveHistoryEntry::Close { h_payto: None, .. }
        ));
        // unknown entry types are refused
        assert!(
            serde_json::from_str::<ReserveHistoryEntry>(r#"{"type":"GIFT","amount":"KUDOS:1"}"#)
                .is_err()
        );
    }
}
