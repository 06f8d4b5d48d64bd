//! The exchange's routes that both of our exchange clients call: the v23 client
//! ([`crate::exchange`]) and the legacy face's ([`crate::exchange_legacy`]). The paths kept their
//! shape from protocol v12 to v23 while the bodies did not, so every call here is generic over
//! its request and answer types and each face names its own wire types. Private to the crate:
//! the faces are the interface.

use std::time::Duration;

use cardcash_util::{EddsaPublicKey, HashCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ClientError;
use crate::exchange::KEYS_MAX_RESPONSE_BYTES;
use crate::http::{Endpoint, Request};

/// `GET /keys`, read with [`KEYS_MAX_RESPONSE_BYTES`] as the bound.
pub(crate) async fn keys<T: DeserializeOwned>(endpoint: &Endpoint) -> Result<T, ClientError> {
    endpoint
        .get(&["keys"])
        .max_response_bytes(KEYS_MAX_RESPONSE_BYTES)
        .json_response()
        .await
}

/// `GET /reserves/$RESERVE_PUB[?timeout_ms=…]`, waiting up to `timeout` for the reserve to
/// appear (`Duration::ZERO`: answer at once).
pub(crate) async fn reserve<T: DeserializeOwned>(
    endpoint: &Endpoint,
    reserve_pub: &EddsaPublicKey,
    timeout: Duration,
) -> Result<T, ClientError> {
    let request = endpoint.get(&["reserves", &reserve_pub.to_string()]);
    long_poll(request, timeout).json_response().await
}

/// `POST /reserves/$RESERVE_PUB/$ACTION` (`withdraw`, `batch-withdraw`).
pub(crate) async fn post_reserve<B: Serialize, T: DeserializeOwned>(
    endpoint: &Endpoint,
    reserve_pub: &EddsaPublicKey,
    action: &str,
    body: &B,
) -> Result<T, ClientError> {
    post(
        endpoint,
        &["reserves", &reserve_pub.to_string(), action],
        body,
    )
    .await
}

/// `POST /coins/$COIN_PUB/$ACTION` (`deposit`, `melt`, `refund`, `recoup`, …).
pub(crate) async fn post_coin<B: Serialize, T: DeserializeOwned>(
    endpoint: &Endpoint,
    coin_pub: &EddsaPublicKey,
    action: &str,
    body: &B,
) -> Result<T, ClientError> {
    post(endpoint, &["coins", &coin_pub.to_string(), action], body).await
}

/// `POST /refreshes/$RC/reveal`.
pub(crate) async fn reveal<B: Serialize, T: DeserializeOwned>(
    endpoint: &Endpoint,
    rc: &HashCode,
    body: &B,
) -> Result<T, ClientError> {
    post(endpoint, &["refreshes", &rc.to_string(), "reveal"], body).await
}

/// `GET /coins/$COIN_PUB/link`.
pub(crate) async fn link<T: DeserializeOwned>(
    endpoint: &Endpoint,
    coin_pub: &EddsaPublicKey,
) -> Result<T, ClientError> {
    endpoint
        .get(&["coins", &coin_pub.to_string(), "link"])
        .json_response()
        .await
}

/// `POST` of a JSON body to `segments`, a JSON answer.
pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
    endpoint: &Endpoint,
    segments: &[&str],
    body: &B,
) -> Result<T, ClientError> {
    endpoint.post(segments).json(body).json_response().await
}

/// Adds the long-poll window `timeout_ms` and the matching time limit, unless `timeout` is zero.
pub(crate) fn long_poll(request: Request<'_>, timeout: Duration) -> Request<'_> {
    if timeout.is_zero() {
        request
    } else {
        request
            .query("timeout_ms", timeout.as_millis())
            .long_poll(timeout)
    }
}
