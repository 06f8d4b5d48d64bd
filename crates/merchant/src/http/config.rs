//! `GET /config`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;

/// The protocol version we implement (libtool `current:revision:age`).
pub const VERSION: &str = "24:0:0";

pub async fn get_config(State(state): State<AppState>) -> Json<Value> {
    let config = state.merchant.config();
    let currency = config.currency.to_string();
    Json(json!({
        "name": "taler-merchant",
        "version": VERSION,
        "implementation": "urn:net:cardcash:merchant",
        "currency": currency,
        "currencies": {
            currency.clone(): {
                "name": currency,
                "currency": currency,
                "num_fractional_input_digits": 2,
                "num_fractional_normal_digits": 2,
                "num_fractional_trailing_zero_digits": 2,
                "alt_unit_names": {"0": currency},
            }
        },
        "exchanges": config.exchanges.iter().map(|e| json!({
            "base_url": e.base_url,
            "currency": e.currency.to_string(),
            "master_pub": e.master_pub,
        })).collect::<Vec<Value>>(),
        "have_self_provisioning": false,
        "have_donau": false,
    }))
}
