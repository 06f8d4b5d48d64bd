//! C2EC's HTTP surface: the route table ([`router`]), thin handlers per API, authentication.

pub mod auth;
pub mod integration;
pub mod router;
pub mod terminal;
pub mod wire;

use std::sync::{Arc, OnceLock};

use cardcash_http::{LongPoll, TalerError};
use cardcash_util::{BaseUrl, ErrorCode};

use crate::config::WireGatewayAuth;
use crate::error::C2ecError;
use crate::service::C2ec;
use crate::state::Status;
use cardcash_util::Wopid;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub c2ec: C2ec,
    pub terminal_auth: auth::TerminalAuthenticator,
    pub wire_auth: Arc<WireGatewayAuth>,
    pub admin_token: Option<Arc<str>>,
    /// Set right after the listener is bound (the port is only known then).
    pub base_url: Arc<OnceLock<BaseUrl>>,
    pub exchange_base_url: Option<BaseUrl>,
    pub withdrawal_fees: cardcash_util::Amount,
    /// Payto target types of the exchange account (bank-integration `wire_types`).
    pub wire_types: Vec<String>,
}

impl AppState {
    pub fn base_url(&self) -> Result<&BaseUrl, C2ecError> {
        self.base_url
            .get()
            .ok_or_else(|| C2ecError::Internal("base URL not set".into()))
    }

    /// `taler://withdraw/<host>/<path>/taler-integration/<WOPID>` (`taler+http://` for an
    /// http base URL), without trailing slash: the wallet's only entry point.
    pub fn withdraw_uri(&self, wopid: &Wopid) -> Result<String, C2ecError> {
        let base = self.base_url()?;
        let scheme = if base.is_http() {
            "taler+http"
        } else {
            "taler"
        };
        Ok(format!(
            "{scheme}://withdraw/{}taler-integration/{wopid}",
            base.host_and_path()
        ))
    }
}

/// Parses the `{wopid}` path segment: malformed → 400, so probing garbage never hits the DB.
pub fn parse_wopid(raw: &str) -> Result<Wopid, C2ecError> {
    raw.parse().map_err(|_| {
        C2ecError::bad_request(
            ErrorCode::GenericParameterMalformed,
            "malformed withdrawal operation id",
        )
    })
}

/// `old_state` (default `pending`) and the long-poll timeout (`timeout_ms`, legacy
/// `long_poll_ms`) of a status request.
pub fn status_params(query: Option<&str>) -> Result<(Status, LongPoll), C2ecError> {
    let query = query.unwrap_or("");
    let poll = LongPoll::from_query(query).map_err(|e: TalerError| C2ecError::from(e))?;
    let mut old = Status::Pending;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "old_state" {
            old = v.parse().map_err(|_| {
                C2ecError::bad_request(
                    ErrorCode::GenericParameterMalformed,
                    "old_state must be pending, selected, aborted or confirmed",
                )
            })?;
        }
    }
    Ok((old, poll))
}
