//! Extractor for `/api/…` requests: outage switch, Wallee MAC authentication, space check
//! (docs/CARDPROC-API.md "Authentication"). Runs before the query and body extractors, so an
//! unauthenticated request learns nothing about its parameters.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::CardprocError;
use crate::service::{ApiUser, Cardproc, MacInput};
use cardcash_api::cardproc::mac;

/// The raw value of query parameter `name` (Wallee's parameters are plain numbers, so no
/// percent-decoding is needed; anything else fails to parse later).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            _ => None,
        })
}

impl FromRequestParts<Arc<Cardproc>> for ApiUser {
    type Rejection = CardprocError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Cardproc>,
    ) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let input = MacInput {
            version: header(mac::HEADER_VERSION),
            user_id: header(mac::HEADER_USER_ID),
            timestamp: header(mac::HEADER_TIMESTAMP),
            value: header(mac::HEADER_VALUE),
            method: parts.method.as_str(),
            path_and_query: parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
            space_id: query_param(parts.uri.query(), "spaceId"),
        };
        state.authenticate(input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_query_parameters() {
        assert_eq!(query_param(Some("spaceId=1&id=42"), "spaceId"), Some("1"));
        assert_eq!(query_param(Some("spaceId=1&id=42"), "id"), Some("42"));
        assert_eq!(query_param(Some("xspaceId=1"), "spaceId"), None);
        assert_eq!(query_param(None, "spaceId"), None);
    }
}
