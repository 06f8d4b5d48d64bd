//! Taler Wire Gateway API: how the exchange learns about incoming money (reserve credits) and
//! orders outgoing transfers (served by the bank per exchange account, and by c2ec).
//! Spec: docs.taler.net core/api-bank-wire (history types `RESERVE`, `KYCAUTH`, `WAD`; v3
//! transfer status listing `GET /transfers`, `GET /transfers/$ROW_ID`), libeufin 0.11
//! `common/.../TalerMessage.kt` (version `0:2:0`).
//!
//! Protocol generations we stay compatible with: v0 clients (the December 2022 exchange's
//! wirewatch) require the account inside every history row (`credit_account` in incoming,
//! `debit_account` in outgoing transactions); v1+ servers send it once at the top level. Our
//! servers send both, so the per-row fields are optional here (newer servers omit them).

use cardcash_util::{
    Amount, Base32Bytes, BaseUrl, Currency, EddsaPublicKey, HashCode, LibtoolVersion, PaytoUri,
    ShortHashCode, Timestamp,
};
use std::time::Duration;

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
        /// The exchange account credited (v0 clients need it in every row).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        credit_account: Option<PaytoUri>,
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
        #[serde(skip_serializing_if = "Option::is_none", default)]
        credit_account: Option<PaytoUri>,
        account_pub: EddsaPublicKey,
    },
    /// A wad transfer from another exchange.
    #[serde(rename = "WAD")]
    Wad {
        row_id: u64,
        date: Timestamp,
        amount: Amount,
        debit_account: PaytoUri,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        credit_account: Option<PaytoUri>,
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

    /// Sets the per-row `credit_account` (v0 compatibility) of every variant.
    pub fn set_credit_account(&mut self, account: &PaytoUri) {
        match self {
            Self::Reserve { credit_account, .. }
            | Self::KycAuth { credit_account, .. }
            | Self::Wad { credit_account, .. } => *credit_account = Some(account.clone()),
        }
    }
}

// History parameters, shared by every server of the history endpoints (the bank's Wire Gateway
// and Core Bank API, C2EC's Wire Gateway) and by their clients (docs.taler.net api-bank-wire;
// libeufin `common/.../params.kt`):
// - `limit` (legacy `delta`), default −20: how many rows; negative = newest first.
// - `offset` (legacy `start`): an exclusive row id; default "before everything" for positive
//   limits and "after everything" for negative ones.
// - `timeout_ms` (legacy `long_poll_ms`): how long to wait for a first row. Only meaningful with a
//   positive limit (new rows only ever appear at the end).
// New names win over legacy names when both are present. Pure parsing, no IO.

/// Default page size and direction.
pub const DEFAULT_HISTORY_LIMIT: i64 = -20;
/// Largest page we serve; larger requests are clamped (the client pages on).
pub const MAX_PAGE: i64 = 1024;
/// Longest long poll we hold a connection for; larger requests are clamped.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// The raw query string; every field is optional and numeric.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub long_poll_ms: Option<i64>,
}

/// Why history parameters were rejected (always a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryParamError {
    #[error("'limit' must not be zero")]
    ZeroLimit,
    #[error("'offset' must not be negative")]
    NegativeOffset,
    #[error("'timeout_ms' must not be negative")]
    NegativeTimeout,
}

impl HistoryParamError {
    /// The offending query parameter.
    pub fn parameter(&self) -> &'static str {
        match self {
            Self::ZeroLimit => "limit",
            Self::NegativeOffset => "offset",
            Self::NegativeTimeout => "timeout_ms",
        }
    }
}

/// Checked history parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryParams {
    /// Rows to return, at most [`MAX_PAGE`] in absolute value; negative = descending.
    pub limit: i64,
    /// Exclusive start row; `None` = from the beginning (ascending) or the end (descending).
    pub offset: Option<i64>,
    /// How long to wait when nothing matches (zero = answer at once).
    pub timeout: Duration,
}

impl HistoryParams {
    /// Checks and normalises the raw query.
    pub fn parse(query: &HistoryQuery) -> Result<Self, HistoryParamError> {
        let limit = query.limit.or(query.delta).unwrap_or(DEFAULT_HISTORY_LIMIT);
        if limit == 0 {
            return Err(HistoryParamError::ZeroLimit);
        }
        let limit = limit.clamp(-MAX_PAGE, MAX_PAGE);
        let offset = query.offset.or(query.start);
        if offset.is_some_and(|o| o < 0) {
            return Err(HistoryParamError::NegativeOffset);
        }
        let timeout_ms = query.timeout_ms.or(query.long_poll_ms).unwrap_or(0);
        let timeout_ms =
            u64::try_from(timeout_ms).map_err(|_| HistoryParamError::NegativeTimeout)?;
        let timeout = Duration::from_millis(timeout_ms).min(MAX_TIMEOUT);
        Ok(Self {
            limit,
            offset,
            timeout,
        })
    }

    /// Whether rows come oldest first.
    pub fn ascending(&self) -> bool {
        self.limit > 0
    }

    /// Number of rows to fetch.
    pub fn count(&self) -> i64 {
        self.limit.abs()
    }

    /// The exclusive bound for the SQL query: rows `> start` (ascending) or `< start` (descending).
    pub fn start(&self) -> i64 {
        match (self.offset, self.ascending()) {
            (Some(offset), _) => offset,
            (None, true) => 0,
            (None, false) => i64::MAX,
        }
    }

    /// Whether an empty answer should wait for new rows: only for positive limits.
    pub fn long_polls(&self) -> bool {
        self.ascending() && !self.timeout.is_zero()
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
    /// The exchange account debited (v0 clients need it in every row).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub debit_account: Option<PaytoUri>,
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

/// The outcome of a transfer the exchange initiated (`GET /transfers`, v3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// In progress.
    Pending,
    /// Failed for now; it is retried and may still succeed.
    TransientFailure,
    /// Failed for good; it never appears in the outgoing history.
    PermanentFailure,
    /// Done; it appears in the outgoing history.
    Success,
}

impl TransferState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::TransientFailure => "transient_failure",
            Self::PermanentFailure => "permanent_failure",
            Self::Success => "success",
        }
    }
}

/// `GET /transfers` query: the shared paging parameters plus an optional status filter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransfersQuery {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<TransferState>,
}

impl TransfersQuery {
    /// The paging part, checked like a history request (no long polling: `timeout_ms` is not
    /// part of this endpoint).
    pub fn params(&self) -> Result<HistoryParams, HistoryParamError> {
        HistoryParams::parse(&HistoryQuery {
            limit: self.limit,
            offset: self.offset,
            ..HistoryQuery::default()
        })
    }
}

/// `GET /transfers` (200; no matching transfer is 204 without a body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferList {
    pub transfers: Vec<TransferListStatus>,
    /// The exchange account all transfers are debited from.
    pub debit_account: PaytoUri,
}

/// One transfer of [`TransferList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferListStatus {
    /// The `row_id` `POST /transfer` answered (not a history row id).
    pub row_id: u64,
    pub status: TransferState,
    pub amount: Amount,
    pub credit_account: PaytoUri,
    pub timestamp: Timestamp,
}

/// `GET /transfers/$ROW_ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferStatus {
    pub status: TransferState,
    /// Why it failed, or how it progresses.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status_msg: Option<String>,
    pub amount: Amount,
    pub exchange_base_url: BaseUrl,
    pub wtid: ShortHashCode,
    pub credit_account: PaytoUri,
    pub timestamp: Timestamp,
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

    fn parse(q: HistoryQuery) -> Result<HistoryParams, HistoryParamError> {
        HistoryParams::parse(&q)
    }

    #[test]
    fn defaults_are_newest_twenty() {
        let p = parse(HistoryQuery::default()).unwrap();
        assert_eq!(p.limit, -20);
        assert!(!p.ascending());
        assert_eq!(p.start(), i64::MAX);
        assert_eq!(p.count(), 20);
        assert!(!p.long_polls());
    }

    #[test]
    fn new_names_win_over_legacy_names() {
        let p = parse(HistoryQuery {
            limit: Some(5),
            delta: Some(-7),
            offset: Some(10),
            start: Some(99),
            timeout_ms: Some(1500),
            long_poll_ms: Some(3),
        })
        .unwrap();
        assert_eq!((p.limit, p.start()), (5, 10));
        assert_eq!(p.timeout, Duration::from_millis(1500));
        assert!(p.long_polls());
    }

    #[test]
    fn legacy_names_alone_work() {
        let p = parse(HistoryQuery {
            delta: Some(3),
            start: Some(4),
            long_poll_ms: Some(20),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((p.limit, p.start()), (3, 4));
        assert_eq!(p.timeout, Duration::from_millis(20));
    }

    #[test]
    fn rejects_bad_values() {
        let zero = HistoryQuery {
            limit: Some(0),
            ..Default::default()
        };
        assert_eq!(parse(zero), Err(HistoryParamError::ZeroLimit));
        let neg = HistoryQuery {
            offset: Some(-1),
            ..Default::default()
        };
        assert_eq!(parse(neg), Err(HistoryParamError::NegativeOffset));
        let neg = HistoryQuery {
            timeout_ms: Some(-1),
            ..Default::default()
        };
        assert_eq!(parse(neg), Err(HistoryParamError::NegativeTimeout));
    }

    #[test]
    fn clamps_huge_values() {
        let p = parse(HistoryQuery {
            limit: Some(-1_000_000),
            timeout_ms: Some(i64::MAX),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.limit, -MAX_PAGE);
        assert_eq!(p.timeout, MAX_TIMEOUT);
        // Descending never long polls: old rows cannot appear later.
        assert!(!p.long_polls());
    }

    #[test]
    fn v0_per_row_accounts_are_optional_and_kept() {
        // The 2022 exchange's wirewatch reads `credit_account` in every incoming row.
        let v0 = format!(
            r#"{{"incoming_transactions":[{{"type":"RESERVE","row_id":1,"date":{{"t_s":1}},
            "amount":"KUDOS:5","debit_account":"payto://x-taler-bank/b/alice",
            "credit_account":"payto://x-taler-bank/b/exchange","reserve_pub":"{KEY}"}}],
            "credit_account":"payto://x-taler-bank/b/exchange"}}"#
        );
        let h: IncomingHistory = round_trip(&v0);
        let mut row = h.incoming_transactions[0].clone();
        match &row {
            IncomingBankTransaction::Reserve { credit_account, .. } => {
                assert_eq!(credit_account.as_ref(), Some(&h.credit_account));
            }
            other => panic!("wrong variant {other:?}"),
        }
        let other: PaytoUri = "payto://x-taler-bank/b/other".parse().unwrap();
        row.set_credit_account(&other);
        assert_eq!(
            serde_json::to_value(&row).unwrap()["credit_account"],
            "payto://x-taler-bank/b/other"
        );
        let out = format!(
            r#"{{"outgoing_transactions":[{{"row_id":3,"date":{{"t_s":1}},"amount":"KUDOS:2",
            "debit_account":"payto://x-taler-bank/b/exchange",
            "credit_account":"payto://x-taler-bank/b/merchant","wtid":"{WTID}",
            "exchange_base_url":"https://exchange.example/"}}],
            "debit_account":"payto://x-taler-bank/b/exchange"}}"#
        );
        let h: OutgoingHistory = round_trip(&out);
        assert_eq!(
            h.outgoing_transactions[0].debit_account.as_ref(),
            Some(&h.debit_account)
        );
    }

    #[test]
    fn transfer_status_libeufin() {
        let list = r#"{"transfers":[{"row_id":4,"status":"transient_failure","amount":"KUDOS:1",
            "credit_account":"payto://x-taler-bank/b/merchant","timestamp":{"t_s":1715000000}}],
            "debit_account":"payto://x-taler-bank/b/exchange"}"#;
        let l: TransferList = round_trip(list);
        assert_eq!(l.transfers[0].status, TransferState::TransientFailure);
        let one = format!(
            r#"{{"status":"permanent_failure","status_msg":"card refund refused",
            "amount":"KUDOS:1","exchange_base_url":"https://exchange.example/","wtid":"{WTID}",
            "credit_account":"payto://x-taler-bank/b/merchant","timestamp":{{"t_s":1715000000}}}}"#
        );
        let t: TransferStatus = round_trip(&one);
        assert_eq!(t.status, TransferState::PermanentFailure);
        for s in [
            TransferState::Pending,
            TransferState::TransientFailure,
            TransferState::PermanentFailure,
            TransferState::Success,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(serde_json::from_str::<TransferState>(r#""refunded""#).is_err());
        let q = TransfersQuery {
            limit: Some(0),
            ..TransfersQuery::default()
        };
        assert_eq!(q.params(), Err(HistoryParamError::ZeroLimit));
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
