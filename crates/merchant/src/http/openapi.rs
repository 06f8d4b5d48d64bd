//! `GET /openapi.json`: the route table as an OpenAPI 3.1 document (`crate::openapi`).

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::AppState;

pub async fn get_openapi(State(state): State<AppState>) -> Json<Value> {
    Json(crate::openapi::document(state.merchant.base_url().as_str()))
}
