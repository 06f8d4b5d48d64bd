//! Taler Wire Gateway API: how the exchange learns about incoming money (reserve credits) and
//! orders outgoing transfers (served by the bank per exchange account, and by c2ec).
//! Spec: docs.taler.net core/api-bank-wire (history types `RESERVE`, `KYCAUTH`, `WAD`),
//! libeufin 0.11 `common/.../TalerMessage.kt` (version `0:2:0`).

use cardcash_util::{
    Amount, Base32Bytes, BaseUrl, Currency, EddsaPublicKey, HashCode, LibtoolVersion, PaytoUri,
    ShortHashCode, Timestamp,
};
use serde::{Deserialize, Serialize};

/// `name` of the Wire Gateway API's `/config`.
pub const API_NAME: &str = "taler-wire-gateway";

/// `GET /config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireConfig {
    pub name: String,
    pub version: LibtoolVersion,
    pub currency: Currency,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub implementation: Option<String>,
}

/// `POST /transfer` body; idempotent per `request_uid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    pub request_uid: HashCode,
    pub amount: Amount,
    pub exchange_base_url: BaseUrl,
    /// Wire transfer identifier, the subject of the outgoing transfer.
    pub wtid: ShortHashCode,
    pub credit_account: PaytoUri,
}

/// `POST /transfer` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferResponse {
    pub timestamp: Timestamp,
    pub row_id: u64,
}

/// `GET /history/incoming` (200; an empty history is 204 without a body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingHistory {
    pub incoming_transactions: Vec<IncomingBankTransaction>,
    /// The exchange account all transactions were credited to.
    pub credit_account: PaytoUri,
}

/// One incoming transaction, discriminated by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum IncomingBankTransaction {
    /// A reserve credit: the subject carried a reserve public key.
    #[serde(rename = "RESERVE")]
    Reserve {
        row_id: u64,
        date: Timestamp,
        amount: Amount,
        /// Fee the bank charged for the credit (newer protocol versions).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        credit_fee: Option<Amount>,
        debit_account: PaytoUri,
        reserve_pub: EddsaPublicKey,
    },
    /// A KYC authentication transfer: the subject carried an account public key.
    #[serde(rename = "KYCAUTH")]
    KycAuth {
        row_id: u64,
        date: Timestamp,
        amount: Amount,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        credit_fee: Option<Amount>,
        debit_account: PaytoUri,
        account_pub: EddsaPublicKey,
    },
    /// A wad transfer from another exchange.
    #[serde(rename = "WAD")]
    Wad {
        row_id: u64,
        date: Timestamp,
        amount: Amount,
        debit_account: PaytoUri,
        origin_exchange_url: BaseUrl,
        /// 24-byte wad identifier.
        wad_id: Base32Bytes,
    },
}

impl IncomingBankTransaction {
    pub fn row_id(&self) -> u64 {
        match self {
            Self::Reserve { row_id, .. }
            | Self::KycAuth { row_id, .. }
            | Self::Wad { row_id, .. } => *row_id,
        }
    }
}

/// Query of `GET /history/incoming` and `/history/outgoing`: `limit`/`offset` (v2) or the
/// deprecated `delta`/`start`. The long-poll parameters are read by `cardcash_http::LongPoll`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HistoryQuery {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start: Option<u64>,
}

/// Default page size and direction: the 20 newest rows.
pub const DEFAULT_HISTORY_LIMIT: i64 = -20;

impl HistoryQuery {
    /// Rows to return: positive ascending, negative descending by `row_id`; never zero.
    pub fn limit(&self) -> i64 {
        match self.limit.or(self.delta) {
            Some(0) | None => DEFAULT_HISTORY_LIMIT,
            Some(n) => n,
        }
    }

    /// Exclusive starting `row_id`, if given.
    pub fn offset(&self) -> Option<u64> {
        self.offset.or(self.start)
    }
}

/// `GET /history/outgoing` (200; an empty history is 204 without a body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingHistory {
    pub outgoing_transactions: Vec<OutgoingBankTransaction>,
    /// The exchange account all transfers were debited from.
    pub debit_account: PaytoUri,
}

/// One transfer made by the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingBankTransaction {
    pub row_id: u64,
    pub date: Timestamp,
    pub amount: Amount,
    pub credit_account: PaytoUri,
    pub wtid: ShortHashCode,
    pub exchange_base_url: BaseUrl,
}

/// `POST /admin/add-incoming` body (testing: credit a reserve from `debit_account`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddIncomingRequest {
    pub amount: Amount,
    pub reserve_pub: EddsaPublicKey,
    pub debit_account: PaytoUri,
}

/// `POST /admin/add-incoming` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddIncomingResponse {
    pub timestamp: Timestamp,
    pub row_id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(text: &str) -> T {
        let parsed: T = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
        parsed
    }

    const KEY: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";
    const WTID: &str = "YVZ49476F3D8Y07PPF4K7TYNV2H0F7P18HQA2CC0JHP8PNVAWMM0";
    const UID: &str = "P70XSM4H5JSEFBCAEV98371MDM1SSNWKRJ59SMZAQW6G3JE2T552M3SH9N8PJ8Z0YJ7W8ZTEJKS50VPK0FRWYEND33P4P4M8DJZKJ4R";

    #[test]
    fn config_libeufin_and_unknown_fields() {
        let c: WireConfig =
            round_trip(r#"{"name":"taler-wire-gateway","version":"0:2:0","currency":"KUDOS"}"#);
        assert_eq!(c.name, API_NAME);
        let newer: WireConfig = serde_json::from_str(
            r#"{"name":"taler-wire-gateway","version":"4:0:0","currency":"CHF",
            "implementation":"urn:net:taler:specs:taler-wire-gateway:libeufin-bank",
            "support_account_check":false}"#,
        )
        .unwrap();
        assert!(newer.implementation.is_some());
    }

    #[test]
    fn transfer_request_round_trip() {
        let text = format!(
            r#"{{"request_uid":"{UID}","amount":"KUDOS:10.5",
            "exchange_base_url":"https://exchange.demo.taler.net/","wtid":"{WTID}",
            "credit_account":"payto://x-taler-bank/bank.demo.taler.net/merchant"}}"#
        );
        let t: TransferRequest = round_trip(&text);
        assert_eq!(t.request_uid.to_string(), UID);
        assert_eq!(t.amount.to_string(), "KUDOS:10.5");
        // a 32-byte value where a 64-byte request_uid belongs is rejected
        let short = text.replace(UID, KEY);
        assert!(serde_json::from_str::<TransferRequest>(&short).is_err());
        let r: TransferResponse = round_trip(r#"{"timestamp":{"t_s":1700000000},"row_id":42}"#);
        assert_eq!(r.row_id, 42);
    }

    #[test]
    fn incoming_history_libeufin() {
        let text = format!(
            r#"{{"incoming_transactions":[{{"type":"RESERVE","row_id":7,"date":{{"t_s":1715000000}},
            "amount":"KUDOS:5","debit_account":"payto://iban/DE89370400440532013000?receiver-name=Alice",
            "reserve_pub":"{KEY}"}}],
            "credit_account":"payto://iban/CH9300762011623852957?receiver-name=Exchange"}}"#
        );
        let h: IncomingHistory = round_trip(&text);
        assert_eq!(h.incoming_transactions.len(), 1);
        assert_eq!(h.incoming_transactions[0].row_id(), 7);
        match &h.incoming_transactions[0] {
            IncomingBankTransaction::Reserve {
                reserve_pub,
                credit_fee,
                ..
            } => {
                assert_eq!(reserve_pub.to_string(), KEY);
                assert_eq!(*credit_fee, None);
            }
            other => panic!("wrong variant {other:?}"),
        }
    }

    #[test]
    fn incoming_kycauth_and_wad() {
        let kyc = format!(
            r#"{{"type":"KYCAUTH","row_id":8,"date":{{"t_s":1715000001}},"amount":"KUDOS:0.01",
            "credit_fee":"KUDOS:0","debit_account":"payto://iban/DE89370400440532013000","account_pub":"{KEY}"}}"#
        );
        let t: IncomingBankTransaction = round_trip(&kyc);
        assert!(matches!(
            t,
            IncomingBankTransaction::KycAuth { row_id: 8, .. }
        ));
        let wad = r#"{"type":"WAD","row_id":9,"date":{"t_s":1715000002},"amount":"KUDOS:1",
            "debit_account":"payto://iban/DE89370400440532013000",
            "origin_exchange_url":"https://other.example/","wad_id":"000G40R40M30E209185GR38E1W8124GK2GAHC5R"}"#;
        let t: IncomingBankTransaction = round_trip(wad);
        assert_eq!(t.row_id(), 9);
        let unknown = r#"{"type":"LOTTERY","row_id":1}"#;
        assert!(serde_json::from_str::<IncomingBankTransaction>(unknown).is_err());
    }

    #[test]
    fn history_query_prefers_new_names() {
        let q: HistoryQuery = serde_json::from_str(r#"{"delta":5,"start":9}"#).unwrap();
        assert_eq!((q.limit(), q.offset()), (5, Some(9)));
        let q: HistoryQuery =
            serde_json::from_str(r#"{"limit":-3,"delta":5,"offset":2,"start":9}"#).unwrap();
        assert_eq!((q.limit(), q.offset()), (-3, Some(2)));
        let q = HistoryQuery::default();
        assert_eq!((q.limit(), q.offset()), (DEFAULT_HISTORY_LIMIT, None));
    }

    #[test]
    fn outgoing_history_and_add_incoming() {
        let text = format!(
            r#"{{"outgoing_transactions":[{{"row_id":3,"date":{{"t_s":1715000100}},"amount":"KUDOS:2",
            "credit_account":"payto://x-taler-bank/bank.demo.taler.net/merchant","wtid":"{WTID}",
            "exchange_base_url":"https://exchange.demo.taler.net/"}}],
            "debit_account":"payto://x-taler-bank/bank.demo.taler.net/exchange"}}"#
        );
        let h: OutgoingHistory = round_trip(&text);
        assert_eq!(h.outgoing_transactions[0].wtid.to_string(), WTID);
        let add = format!(
            r#"{{"amount":"KUDOS:20","reserve_pub":"{KEY}","debit_account":"payto://x-taler-bank/bank.demo.taler.net/alice"}}"#
        );
        let _: AddIncomingRequest = round_trip(&add);
        let _: AddIncomingResponse = round_trip(r#"{"timestamp":{"t_s":1715000200},"row_id":11}"#);
    }
}
