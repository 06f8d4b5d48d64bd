//! The catalogue and the stylesheet.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{AppState, cookies, html};
use crate::page::{self, CatalogueView, Notice};

/// The `notice` query parameter of the pages a form redirects to.
#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

impl NoticeQuery {
    pub fn notice(&self) -> Option<Notice> {
        self.notice.as_deref().and_then(Notice::from_query)
    }
}

/// `GET /`.
pub async fn get_catalogue(
    State(state): State<AppState>,
    Query(query): Query<NoticeQuery>,
    headers: HeaderMap,
) -> Response {
    let shop = &state.shop;
    let cart = shop.cart(&cookies(&headers)).map_or(0, |c| c.quantity);
    let view = CatalogueView {
        piano_price: shop.config().piano_price,
        piano_available: shop.piano_available().await,
        sonatas_price: shop.config().sonatas_price,
        cart,
        notice: query.notice(),
    };
    html(page::catalogue(&view), &[])
}

/// `GET /style.css`.
pub async fn get_style() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        page::STYLE,
    )
        .into_response()
}
