//! Client of the Taler Wire Gateway API (docs.taler.net core/api-bank-wire), as the exchange
//! and the demo use it. It speaks to any gateway — the bank's per account, C2EC's, libeufin's —
//! given its base URL (`…/taler-wire-gateway/`) and credentials.
//!
//! Histories are normalised across protocol generations: v0 servers (the 2022 bank) put the
//! exchange's account in every row (`credit_account` of incoming, `debit_account` of outgoing
//! transactions), newer ones only once at the top of the page. Whichever the server sent, every
//! row this client returns carries it. An empty page (204) is an empty `Vec`.

use std::time::Duration;

use cardcash_api::wire_gateway::{
    AddIncomingRequest, AddIncomingResponse, IncomingBankTransaction, OutgoingBankTransaction,
    TransferList, TransferListStatus, TransferRequest, TransferResponse, TransferState,
    TransferStatus, WireConfig,
};
use cardcash_util::{BaseUrl, PaytoUri};
use serde::Deserialize;

use crate::error::ClientError;
use crate::http::{Auth, Endpoint, HttpClient, Request};

/// Paging and long polling of a history request (docs.taler.net api-bank-wire, "history").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryRequest {
    /// Page size; negative = newest first. `None` = the server's default (−20).
    pub limit: Option<i64>,
    /// Exclusive start row.
    pub offset: Option<u64>,
    /// How long the server may wait for a first new row (only meaningful with a positive
    /// limit). The HTTP request's own time limit grows accordingly.
    pub timeout: Option<Duration>,
}

impl HistoryRequest {
    /// The next `limit` rows after `offset`, waiting up to `timeout` for the first one.
    pub fn after(offset: Option<u64>, limit: i64, timeout: Option<Duration>) -> Self {
        Self {
            limit: Some(limit),
            offset,
            timeout,
        }
    }

    /// The newest `n` rows (`limit = -n`), at once.
    pub fn newest(n: u32) -> Self {
        Self {
            limit: Some(-i64::from(n)),
            ..Self::default()
        }
    }

    /// Adds the query parameters and the long-poll time limit to `request`, each under its
    /// current name and its legacy one (`delta`, `start`, `long_poll_ms`): Wire Gateways of
    /// before 2024 (GNU Taler's 2022 fakebank, which answers 400 without `delta`) know only
    /// those, and current ones take the current name when both come (as GNU Taler's C clients
    /// still send the legacy names, every server accepts them).
    pub(crate) fn apply<'a>(&self, request: Request<'a>) -> Request<'a> {
        let request = request
            .query_opt("limit", self.limit)
            .query_opt("delta", self.limit)
            .query_opt("offset", self.offset)
            .query_opt("start", self.offset);
        match self.timeout {
            Some(t) if !t.is_zero() => request
                .query("timeout_ms", t.as_millis())
                .query("long_poll_ms", t.as_millis())
                .long_poll(t),
            _ => request,
        }
    }
}

/// `GET /history/incoming` as any generation of server sends it.
#[derive(Deserialize)]
struct IncomingPage {
    #[serde(deserialize_with = "untyped_rows_are_reserves")]
    incoming_transactions: Vec<IncomingBankTransaction>,
    #[serde(default)]
    credit_account: Option<PaytoUri>,
}

/// `GET /history/outgoing` as any generation of server sends it.
#[derive(Deserialize)]
struct OutgoingPage {
    outgoing_transactions: Vec<OutgoingBankTransaction>,
    #[serde(default)]
    debit_account: Option<PaytoUri>,
}

/// Rows without a `type` are reserve credits: gateways of before 2023 (GNU Taler's 2022
/// fakebank, LibEuFin of then) knew no other incoming transfer and did not say.
fn untyped_rows_are_reserves<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<IncomingBankTransaction>, D::Error> {
    let rows: Vec<serde_json::Value> = Deserialize::deserialize(deserializer)?;
    rows.into_iter()
        .map(|mut row| {
            if let Some(fields) = row.as_object_mut() {
                fields
                    .entry("type")
                    .or_insert_with(|| serde_json::Value::from("RESERVE"));
            }
            serde_json::from_value(row).map_err(serde::de::Error::custom)
        })
        .collect()
}

fn row_credit_account(row: &mut IncomingBankTransaction) -> &mut Option<PaytoUri> {
    match row {
        IncomingBankTransaction::Reserve { credit_account, .. }
        | IncomingBankTransaction::KycAuth { credit_account, .. }
        | IncomingBankTransaction::Wad { credit_account, .. } => credit_account,
    }
}

/// Puts the page's account into every row that lacks it; `Err` names the first row that has
/// no account at all.
fn fill_accounts<R>(
    rows: &mut [R],
    top: Option<&PaytoUri>,
    mut slot: impl FnMut(&mut R) -> &mut Option<PaytoUri>,
) -> Result<(), usize> {
    for (i, row) in rows.iter_mut().enumerate() {
        let account = slot(row);
        if account.is_none() {
            *account = Some(top.ok_or(i)?.clone());
        }
    }
    Ok(())
}

/// A client of one Wire Gateway.
#[derive(Debug, Clone)]
pub struct WireGatewayClient {
    endpoint: Endpoint,
}

impl WireGatewayClient {
    /// A client of the gateway at `base` (`…/taler-wire-gateway/`) with its own pool.
    pub fn new(base: BaseUrl, auth: Auth) -> Result<Self, ClientError> {
        Ok(Self::with_http(HttpClient::new()?, base, auth))
    }

    /// Like [`Self::new`] on a shared pool.
    pub fn with_http(http: HttpClient, base: BaseUrl, auth: Auth) -> Self {
        Self::from_endpoint(Endpoint::new(http, "the Wire Gateway", base, auth))
    }

    /// A client over an endpoint built elsewhere (e.g. [`crate::BankClient::wire_gateway`]).
    pub fn from_endpoint(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    /// The same client, called `service` in error messages (`"C2EC's Wire Gateway"`).
    pub fn named(self, service: &str) -> Self {
        Self::from_endpoint(self.endpoint.named(service))
    }

    /// The gateway's base URL.
    pub fn base_url(&self) -> &BaseUrl {
        self.endpoint.base_url()
    }

    /// `GET /config` (unauthenticated).
    pub async fn config(&self) -> Result<WireConfig, ClientError> {
        self.endpoint
            .get(&["config"])
            .without_auth()
            .json_response()
            .await
    }

    /// `POST /transfer`: idempotent per `request_uid` (the same request again answers the same
    /// row; another request with the same `request_uid` is a 409).
    pub async fn transfer(&self, body: &TransferRequest) -> Result<TransferResponse, ClientError> {
        self.endpoint
            .post(&["transfer"])
            .json(body)
            .json_response()
            .await
    }

    /// `GET /transfers`: the transfers this exchange initiated and their outcome, optionally
    /// only those in `status`. Paging as in histories (no long polling).
    pub async fn transfers(
        &self,
        page: &HistoryRequest,
        status: Option<TransferState>,
    ) -> Result<Vec<TransferListStatus>, ClientError> {
        let request = self
            .endpoint
            .get(&["transfers"])
            .query_opt("limit", page.limit)
            .query_opt("offset", page.offset)
            .query_opt("status", status.map(TransferState::as_str));
        Ok(request
            .json_or_empty::<TransferList>()
            .await?
            .map(|list| list.transfers)
            .unwrap_or_default())
    }

    /// `GET /transfers/$ROW_ID`: one transfer's outcome (`row_id` as `POST /transfer`
    /// answered it).
    pub async fn transfer_status(&self, row_id: u64) -> Result<TransferStatus, ClientError> {
        self.endpoint
            .get(&["transfers", &row_id.to_string()])
            .json_response()
            .await
    }

    /// `GET /history/incoming`; every row carries the credited account.
    pub async fn incoming_history(
        &self,
        page: &HistoryRequest,
    ) -> Result<Vec<IncomingBankTransaction>, ClientError> {
        let response = page
            .apply(self.endpoint.get(&["history", "incoming"]))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        let mut page: IncomingPage = response.json()?;
        fill_accounts(
            &mut page.incoming_transactions,
            page.credit_account.as_ref(),
            row_credit_account,
        )
        .map_err(|i| {
            response.malformed(format!(
                "incoming transaction {i} has no credit_account, and the page names none"
            ))
        })?;
        Ok(page.incoming_transactions)
    }

    /// `GET /history/outgoing`; every row carries the debited account.
    pub async fn outgoing_history(
        &self,
        page: &HistoryRequest,
    ) -> Result<Vec<OutgoingBankTransaction>, ClientError> {
        let response = page
            .apply(self.endpoint.get(&["history", "outgoing"]))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        let mut page: OutgoingPage = response.json()?;
        fill_accounts(
            &mut page.outgoing_transactions,
            page.debit_account.as_ref(),
            |row| &mut row.debit_account,
        )
        .map_err(|i| {
            response.malformed(format!(
                "outgoing transaction {i} has no debit_account, and the page names none"
            ))
        })?;
        Ok(page.outgoing_transactions)
    }

    /// `POST /admin/add-incoming`: credits a reserve (a test and demo facility of the bank).
    pub async fn add_incoming(
        &self,
        body: &AddIncomingRequest,
    ) -> Result<AddIncomingResponse, ClientError> {
        self.endpoint
            .post(&["admin", "add-incoming"])
            .json(body)
            .json_response()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";

    fn incoming(text: &str) -> Result<Vec<IncomingBankTransaction>, usize> {
        let mut page: IncomingPage = serde_json::from_str(text).unwrap();
        fill_accounts(
            &mut page.incoming_transactions,
            page.credit_account.as_ref(),
            row_credit_account,
        )?;
        Ok(page.incoming_transactions)
    }

    fn credit(row: &IncomingBankTransaction) -> String {
        let mut row = row.clone();
        row_credit_account(&mut row).as_ref().unwrap().to_string()
    }

    #[test]
    fn accounts_once_at_the_top_reach_every_row() {
        let rows = incoming(&format!(
            r#"{{"incoming_transactions":[{{"type":"RESERVE","row_id":1,"date":{{"t_s":1}},
            "amount":"KUDOS:5","debit_account":"payto://x-taler-bank/b/alice","reserve_pub":"{KEY}"}}],
            "credit_account":"payto://x-taler-bank/b/exchange"}}"#
        ))
        .unwrap();
        assert_eq!(credit(&rows[0]), "payto://x-taler-bank/b/exchange");
    }

    #[test]
    fn accounts_per_row_are_accepted_without_a_top_level_one() {
        let rows = incoming(&format!(
            r#"{{"incoming_transactions":[{{"type":"RESERVE","row_id":1,"date":{{"t_s":1}},
            "amount":"KUDOS:5","debit_account":"payto://x-taler-bank/b/alice",
            "credit_account":"payto://x-taler-bank/b/exchange","reserve_pub":"{KEY}"}}]}}"#
        ))
        .unwrap();
        assert_eq!(credit(&rows[0]), "payto://x-taler-bank/b/exchange");
        // A row's own account wins over the page's.
        let rows = incoming(&format!(
            r#"{{"incoming_transactions":[{{"type":"RESERVE","row_id":1,"date":{{"t_s":1}},
            "amount":"KUDOS:5","debit_account":"payto://x-taler-bank/b/alice",
            "credit_account":"payto://x-taler-bank/b/row","reserve_pub":"{KEY}"}}],
            "credit_account":"payto://x-taler-bank/b/top"}}"#
        ))
        .unwrap();
        assert_eq!(credit(&rows[0]), "payto://x-taler-bank/b/row");
    }

    #[test]
    fn rows_of_2022_gateways_without_a_type_are_reserve_credits() {
        // GNU Taler's 2022 fakebank: no `type`, the account in every row.
        let rows = incoming(&format!(
            r#"{{"incoming_transactions":[{{"row_id":7,"date":{{"t_s":1}},"amount":"EUR:5.01",
            "credit_account":"payto://x-taler-bank/localhost/Exchange",
            "debit_account":"payto://x-taler-bank/localhost/42","reserve_pub":"{KEY}"}}]}}"#
        ))
        .unwrap();
        let IncomingBankTransaction::Reserve {
            row_id,
            reserve_pub,
            ..
        } = &rows[0]
        else {
            panic!("a reserve credit: {rows:?}")
        };
        assert_eq!((*row_id, reserve_pub.to_string()), (7, KEY.to_owned()));
        // A typed row of another kind stays what it says.
        let err = serde_json::from_str::<IncomingPage>(&format!(
            r#"{{"incoming_transactions":[{{"type":"KYCAUTH","row_id":7,"date":{{"t_s":1}},
            "amount":"EUR:5","debit_account":"payto://x-taler-bank/b/a","reserve_pub":"{KEY}"}}]}}"#
        ));
        assert!(err.is_err(), "a KYCAUTH row needs its account_pub");
    }

    #[test]
    fn a_row_without_any_account_is_named() {
        let err = incoming(&format!(
            r#"{{"incoming_transactions":[{{"type":"RESERVE","row_id":1,"date":{{"t_s":1}},
            "amount":"KUDOS:5","debit_account":"payto://x-taler-bank/b/alice","reserve_pub":"{KEY}"}}]}}"#
        ))
        .unwrap_err();
        assert_eq!(err, 0);
    }

    #[test]
    fn outgoing_rows_get_the_debit_account() {
        let mut page: OutgoingPage = serde_json::from_str(
            r#"{"outgoing_transactions":[{"row_id":3,"date":{"t_s":1},"amount":"KUDOS:2",
            "credit_account":"payto://x-taler-bank/b/merchant",
            "wtid":"YVZ49476F3D8Y07PPF4K7TYNV2H0F7P18HQA2CC0JHP8PNVAWMM0",
            "exchange_base_url":"https://exchange.example/"}],
            "debit_account":"payto://x-taler-bank/b/exchange"}"#,
        )
        .unwrap();
        fill_accounts(
            &mut page.outgoing_transactions,
            page.debit_account.as_ref(),
            |row| &mut row.debit_account,
        )
        .unwrap();
        assert_eq!(
            page.outgoing_transactions[0]
                .debit_account
                .as_ref()
                .unwrap()
                .to_string(),
            "payto://x-taler-bank/b/exchange"
        );
    }
}
