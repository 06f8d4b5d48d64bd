//! `GET /config` and `GET /keys` (docs.taler.net core/api-exchange "Terms of service, keys").

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cardcash_api::common::CurrencySpecification;
use cardcash_api::exchange::{EXCHANGE_PROTOCOL_VERSION, ExchangeConfigResponse};
use cardcash_http::TalerJson;
use cardcash_util::{ErrorCode, Timestamp};

use super::AppState;
use crate::error::ExchangeError;

/// `GET /config`.
pub async fn get_config(State(state): State<AppState>) -> Response {
    let config = state.exchange.config();
    let body = ExchangeConfigResponse {
        name: "taler-exchange".into(),
        version: EXCHANGE_PROTOCOL_VERSION
            .parse()
            .expect("the protocol version constant parses"),
        implementation: Some("urn:net:taler:specs:taler-exchange:cardcash".into()),
        currency: config.currency,
        currency_specification: CurrencySpecification::two_decimals(
            &config.currency,
            config.currency.as_str(),
        ),
        supported_kyc_requirements: Vec::new(),
        shopping_url: None,
        wallet_balance_limit_without_kyc: None,
    };
    TalerJson(body).into_response()
}

/// `GET /keys`: the pre-serialised snapshot, with `ETag`/`If-None-Match`, `Expires` and
/// `Cache-Control` set to the moment the snapshot stops being right (wallets cache `/keys`).
pub async fn get_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ExchangeError> {
    let mut snapshot = state.exchange.keys();
    if snapshot.expires <= Timestamp::now() {
        snapshot = state.exchange.refresh_keys().await?;
    }
    let Some(body) = snapshot.keys_body.clone() else {
        return Err(ExchangeError::refused(
            ErrorCode::ExchangeGenericKeysMissing,
            snapshot
                .not_ready
                .clone()
                .unwrap_or_else(|| "no keys yet".into()),
        ));
    };
    let now = Timestamp::now();
    let max_age = snapshot.expires.saturating_sub(now).as_secs().min(3600);
    let etag = HeaderValue::from_str(&snapshot.etag).ok();
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .zip(etag.as_ref())
        .is_some_and(|(given, ours)| given == ours);
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.to_vec(),
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Some(etag) = etag {
        h.insert(header::ETAG, etag);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("public,max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Some(expires) = now
        .saturating_add(cardcash_util::RelativeTime::from_secs(max_age))
        .to_system_time()
        && let Ok(v) = HeaderValue::from_str(&httpdate(expires))
    {
        h.insert(header::EXPIRES, v);
    }
    Ok(response)
}

/// An RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn httpdate(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {d:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        months[(month - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imf_fixdate() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(httpdate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_798_761_600);
        assert_eq!(httpdate(t), "Fri, 01 Jan 2027 00:00:00 GMT");
    }
}
