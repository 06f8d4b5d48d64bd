//! The shop's HTTP side: the route table ([`router`]) and thin handlers that read cookies and
//! forms, make one call on [`crate::service::Storefront`] and render a page or a redirect.

pub mod admin;
pub mod cart;
pub mod router;
pub mod shop;
pub mod sonatas;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::cookie::Cookies;
use crate::service::Storefront;

/// What every handler gets.
#[derive(Clone, Debug)]
pub struct AppState {
    pub shop: Storefront,
}

/// The request's cookies.
pub fn cookies(headers: &HeaderMap) -> Cookies {
    Cookies::parse(
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// Adds `Set-Cookie` headers and forbids caching (the answer depends on the cookies).
pub fn append_cookies(response: &mut Response, set_cookies: &[String]) {
    let headers = response.headers_mut();
    for c in set_cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(SET_COOKIE, v);
        }
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
}

fn with_cookies(mut response: Response, set_cookies: &[String]) -> Response {
    append_cookies(&mut response, set_cookies);
    response
}

/// A 200 HTML page, setting `set_cookies`.
pub fn html(page: String, set_cookies: &[String]) -> Response {
    let response = (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page,
    )
        .into_response();
    with_cookies(response, set_cookies)
}

/// A 302 to `location` (design document 007 step 10 "redirect"), setting `set_cookies`.
pub fn redirect(location: &str, set_cookies: &[String]) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, v);
    }
    with_cookies(response, set_cookies)
}
