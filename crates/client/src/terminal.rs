//! Client of C2EC's Terminal API (docs.taler.net core/api-terminal, protocol v0; our notes
//! spec/c2ec.md §1.2), as the payment terminal uses it.
//!
//! Every request carries the terminal's HTTP Basic credentials. The status request is a long
//! poll: the server holds it for up to `timeout_ms` waiting for a change away from `old_state`,
//! so its time limit is the poll window plus a margin, or the client would give up just before
//! the server answers.

use std::time::Duration;

use cardcash_api::bank_integration::{BankWithdrawalOperationStatus, WithdrawalStatus};
use cardcash_api::terminal::{
    TerminalConfig, TerminalWithdrawalConfirmationRequest, TerminalWithdrawalSetup,
    TerminalWithdrawalSetupResponse,
};
use cardcash_util::{Amount, BaseUrl};

use crate::error::ClientError;
use crate::http::{Auth, Endpoint, HttpClient};

/// The amount of a new withdrawal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupAmount {
    /// A fixed amount the wallet cannot change (what a terminal that knows the amount sends).
    Fixed(Amount),
    /// A suggestion; the wallet picks the amount when it registers.
    Suggested(Amount),
}

impl SetupAmount {
    /// The amount, fixed or suggested.
    pub fn amount(&self) -> &Amount {
        match self {
            Self::Fixed(a) | Self::Suggested(a) => a,
        }
    }
}

/// A terminal's client of C2EC's Terminal API.
#[derive(Debug, Clone)]
pub struct C2ecTerminalClient {
    endpoint: Endpoint,
    terminal_id: String,
}

impl C2ecTerminalClient {
    /// A client of the Terminal API at `c2ec_terminal_base` (e.g.
    /// `https://c2ec.example/terminal/`), authenticating as `terminal_id` (the Basic user name,
    /// `T-1`) with `secret`, with its own pool.
    pub fn new(
        c2ec_terminal_base: BaseUrl,
        terminal_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Result<Self, ClientError> {
        Ok(Self::with_http(
            HttpClient::new()?,
            c2ec_terminal_base,
            terminal_id,
            secret,
        ))
    }

    /// Like [`Self::new`] on a shared pool.
    pub fn with_http(
        http: HttpClient,
        c2ec_terminal_base: BaseUrl,
        terminal_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        let terminal_id = terminal_id.into();
        let auth = Auth::basic(terminal_id.clone(), secret);
        Self {
            endpoint: Endpoint::new(http, "C2EC", c2ec_terminal_base, auth),
            terminal_id,
        }
    }

    /// The terminal's user name at C2EC.
    pub fn terminal_id(&self) -> &str {
        &self.terminal_id
    }

    /// The Terminal API base URL.
    pub fn base_url(&self) -> &BaseUrl {
        self.endpoint.base_url()
    }

    /// The `taler://withdraw` URI of `wopid` when C2EC's setup answer does not carry one (the
    /// field is our extension): C2EC serves the bank-integration API at
    /// `{c2ec}/taler-integration/` beside the Terminal API at `{c2ec}/terminal/`, and the URI
    /// names that base without its scheme (`taler+http://` for plain HTTP; Taler URI spec).
    pub fn withdraw_uri(&self, wopid: &str) -> String {
        let base = self.endpoint.base_url();
        let with_host = base.host_and_path();
        let root = with_host.strip_suffix("terminal/").unwrap_or(with_host);
        let scheme = if base.is_http() {
            "taler+http"
        } else {
            "taler"
        };
        format!("{scheme}://withdraw/{root}taler-integration/{wopid}")
    }

    /// `GET /config`: provider, currency and the exchange's withdrawal fees.
    pub async fn config(&self) -> Result<TerminalConfig, ClientError> {
        self.endpoint.get(&["config"]).json_response().await
    }

    /// `POST /withdrawals`: sets up a withdrawal. Idempotent on `request_uid`: repeating the
    /// same request returns the same WOPID.
    pub async fn setup_withdrawal(
        &self,
        request_uid: &str,
        amount: SetupAmount,
    ) -> Result<TerminalWithdrawalSetupResponse, ClientError> {
        let (amount, suggested_amount) = match amount {
            SetupAmount::Fixed(a) => (Some(a), None),
            SetupAmount::Suggested(a) => (None, Some(a)),
        };
        self.setup(&TerminalWithdrawalSetup {
            request_uid: request_uid.to_owned(),
            amount,
            suggested_amount,
            provider_transaction_id: None,
            terminal_fees: None,
            user_uuid: None,
            lock: None,
        })
        .await
    }

    /// `POST /withdrawals` with every field of the request under the caller's control.
    pub async fn setup(
        &self,
        request: &TerminalWithdrawalSetup,
    ) -> Result<TerminalWithdrawalSetupResponse, ClientError> {
        self.endpoint
            .post(&["withdrawals"])
            .json(request)
            .json_response()
            .await
    }

    /// `GET /withdrawals/{wopid}?old_state=…&timeout_ms=…`: the operation's status, waiting up
    /// to `timeout` for it to differ from `old_state` (`Duration::ZERO`: answer at once).
    pub async fn status(
        &self,
        wopid: &str,
        old_state: Option<WithdrawalStatus>,
        timeout: Duration,
    ) -> Result<BankWithdrawalOperationStatus, ClientError> {
        let mut request = self
            .endpoint
            .get(&["withdrawals", wopid])
            .query_opt("old_state", old_state.map(WithdrawalStatus::as_str));
        if !timeout.is_zero() {
            request = request
                .query("timeout_ms", timeout.as_millis())
                .long_poll(timeout);
        }
        request.json_response().await
    }

    /// `POST /withdrawals/{wopid}/check`: reports the card transaction. C2EC verifies it with
    /// the card processor asynchronously; the result shows up in [`Self::status`].
    pub async fn check(
        &self,
        wopid: &str,
        provider_transaction_id: &str,
    ) -> Result<(), ClientError> {
        self.check_with(
            wopid,
            &TerminalWithdrawalConfirmationRequest {
                provider_transaction_id: provider_transaction_id.to_owned(),
                terminal_fees: None,
                user_uuid: None,
                lock: None,
            },
        )
        .await
    }

    /// `POST /withdrawals/{wopid}/check` with every field under the caller's control.
    pub async fn check_with(
        &self,
        wopid: &str,
        request: &TerminalWithdrawalConfirmationRequest,
    ) -> Result<(), ClientError> {
        self.endpoint
            .post(&["withdrawals", wopid, "check"])
            .json(request)
            .no_content()
            .await
    }

    /// `POST /withdrawals/{wopid}/abort`: aborts the withdrawal (a no-op if already aborted;
    /// 409 once confirmed).
    pub async fn abort(&self, wopid: &str) -> Result<(), ClientError> {
        self.endpoint
            .post(&["withdrawals", wopid, "abort"])
            .no_content()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> C2ecTerminalClient {
        C2ecTerminalClient::new(BaseUrl::parse(base).unwrap(), "T-1", "s3cret").unwrap()
    }

    #[test]
    fn withdraw_uri_fallback_points_at_the_integration_api() {
        assert_eq!(
            client("http://127.0.0.1:8082/terminal/").withdraw_uri("W1"),
            "taler+http://withdraw/127.0.0.1:8082/taler-integration/W1"
        );
        assert_eq!(
            client("https://pay.example/c2ec/terminal/").withdraw_uri("W1"),
            "taler://withdraw/pay.example/c2ec/taler-integration/W1"
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let debug = format!("{:?}", client("http://c2ec.example/terminal/"));
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("T-1"));
    }
}
