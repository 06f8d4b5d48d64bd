//! A coin's history: `GET /coins/$COIN_PUB/history` (the domain is [`crate::coin_history`]).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cardcash_api::exchange::COIN_HISTORY_SIGNATURE_HEADER;
use cardcash_http::TalerJson;
use cardcash_util::ErrorCode;

use super::AppState;
use super::path::CoinPub;
use crate::coin_history::{self, Page};
use crate::error::ExchangeError;

/// `GET /coins/$COIN_PUB/history[?start=N]` with the coin's signature over `start` in
/// `Taler-Coin-History-Signature`. As the C exchange: `start` is parsed first (400 26), then
/// the header (missing 400 25, malformed 400 26), then the signature (403 1251).
pub async fn get_history(
    State(state): State<AppState>,
    CoinPub(coin_pub): CoinPub,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ExchangeError> {
    // The first `start=…` counts (libmicrohttpd's lookup); a bare `start` has no value and
    // counts as absent there too. Values are plain numbers: no percent-decoding needed.
    let start = match query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("start="))
    {
        Some(value) => value
            .parse()
            .map_err(|_| ExchangeError::malformed("start"))?,
        None => 0,
    };
    let signature = headers
        .get(COIN_HISTORY_SIGNATURE_HEADER)
        .ok_or_else(|| {
            ExchangeError::refused(
                ErrorCode::GenericParameterMissing,
                format!("the {COIN_HISTORY_SIGNATURE_HEADER} header is missing"),
            )
        })?
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ExchangeError::malformed(COIN_HISTORY_SIGNATURE_HEADER))?;
    // A malformed If-None-Match counts as absent (the C exchange logs it and goes on).
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_etag);
    let history =
        coin_history::history(&state.exchange, coin_pub, start, &signature, if_none_match).await?;
    let mut response = match history.page {
        Page::NotModified => StatusCode::NOT_MODIFIED.into_response(),
        Page::Empty => StatusCode::NO_CONTENT.into_response(),
        Page::Entries(body) => TalerJson(body).into_response(),
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", history.etag)) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, public"),
    );
    Ok(response)
}

/// An ETag as this endpoint gives them out: a decimal number in double quotes.
fn parse_etag(value: &str) -> Option<u64> {
    let digits = value.strip_prefix('"')?.strip_suffix('"')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_etag;

    #[test]
    fn etags_are_quoted_numbers() {
        assert_eq!(parse_etag("\"0\""), Some(0));
        assert_eq!(parse_etag("\"4294967297\""), Some(4_294_967_297));
        assert_eq!(parse_etag(&format!("\"{}\"", u64::MAX)), Some(u64::MAX));
        for bad in [
            "5", "\"5", "5\"", "\"\"", "W/\"5\"", "\"+5\"", "\"-1\"", "\"5\" ", "*",
        ] {
            assert_eq!(parse_etag(bad), None, "{bad}");
        }
    }
}
