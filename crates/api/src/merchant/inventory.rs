//! Products and locks (`/private/products`, `…/lock`): the private inventory API.
//!
//! Spec: /work/shared/spec/merchant.md §2.10 (docs.taler.net core/merchant/post-private-products,
//! post-private-products-PRODUCT_ID-lock). Accepted beyond the current protocol, as the
//! merchant guide (seed 003) writes them: `_forgettable` (today's `$forgettable`) as a list of
//! field names, and `next_restock` as a plain date `"2021-04-22"` (midnight UTC).

use cardcash_util::{Amount, RelativeTime, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One tax of a product (`{name, tax}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tax {
    pub name: String,
    pub tax: Amount,
}

/// `POST /private/products` body (`ProductAddDetail`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProductAddDetail {
    pub product_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_i18n: Option<Value>,
    pub unit: String,
    /// Price per unit.
    pub price: Amount,
    /// Base64 data URL, or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxes: Option<Vec<Tax>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<u64>>,
    /// −1 = unlimited.
    pub total_stock: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Value>,
    #[serde(
        default,
        deserialize_with = "restock",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Timestamp>")]
    pub next_restock: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_age: Option<u32>,
    /// Fields a contract may forget: `{"image": true}` or (guide) `["image"]`.
    #[serde(
        rename = "$forgettable",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forgettable: Option<Value>,
    /// The merchant guide's spelling of `$forgettable`.
    #[serde(
        rename = "_forgettable",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forgettable_legacy: Option<Value>,
}

/// `PATCH /private/products/$ID` body (`ProductPatchDetail`): the whole product again, without
/// its id; `total_lost` is cumulative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProductPatchDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_i18n: Option<Value>,
    pub unit: String,
    pub price: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxes: Option<Vec<Tax>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<u64>>,
    pub total_stock: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_lost: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Value>,
    #[serde(
        default,
        deserialize_with = "restock",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Timestamp>")]
    pub next_restock: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_age: Option<u32>,
    #[serde(
        rename = "$forgettable",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forgettable: Option<Value>,
    #[serde(
        rename = "_forgettable",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forgettable_legacy: Option<Value>,
}

/// `GET /private/products/$ID` answer (`ProductDetail`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProductDetail {
    pub product_id: String,
    pub product_name: String,
    pub description: String,
    pub description_i18n: Value,
    pub unit: String,
    pub price: Amount,
    pub image: String,
    pub taxes: Vec<Tax>,
    pub categories: Vec<u64>,
    pub total_stock: i64,
    pub total_sold: i64,
    pub total_lost: i64,
    /// What can be locked or ordered now (−1 = unlimited); our extra.
    pub total_available: i64,
    pub address: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_restock: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_age: Option<u32>,
    /// The names of the product's forgettable fields.
    #[serde(default)]
    pub forgettable: Vec<String>,
}

/// One entry of `GET /private/products`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InventoryEntry {
    pub product_id: String,
    pub product_serial: i64,
}

/// `GET /private/products` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InventorySummaryResponse {
    pub products: Vec<InventoryEntry>,
}

/// `POST /private/products/$ID/lock` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LockRequest {
    pub lock_uuid: String,
    pub duration: RelativeTime,
    /// 0 unlocks; absent = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
}

/// The 410 answer when stock is short (an order or a lock), with the error code and hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OutOfStockResponse {
    pub product_id: String,
    pub requested_quantity: u64,
    pub available_quantity: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restock_expected: Option<Timestamp>,
}

/// `next_restock` as `{t_s}` or as the merchant guide's plain date `"YYYY-MM-DD"` (UTC).
fn restock<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Time(Timestamp),
        Date(String),
    }
    match Option::<Either>::deserialize(d)? {
        None => Ok(None),
        Some(Either::Time(t)) => Ok(Some(t)),
        Some(Either::Date(s)) => parse_date(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not a date YYYY-MM-DD: {s:?}"))),
    }
}

/// Midnight UTC of a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<Timestamp> {
    let mut parts = s.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if s.len() != 10 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || y < 1970 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    u64::try_from(days)
        .ok()
        .map(|days| Timestamp::from_secs(days * 86_400))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_piano_parses_with_its_plain_restock_date() {
        let p: ProductAddDetail = serde_json::from_str(
            r#"{"product_id":"p001","description":"piano","unit":"unit","image":"",
            "price":"KUDOS:20000.0","taxes":[],"total_stock":3,"next_restock":"2021-04-22",
            "_forgettable":["image"]}"#,
        )
        .unwrap();
        // 2021-04-22T00:00:00Z
        assert_eq!(p.next_restock, Some(Timestamp::from_secs(1_619_049_600)));
        assert_eq!(p.forgettable_legacy, Some(serde_json::json!(["image"])));
        let p: ProductAddDetail = serde_json::from_str(
            r#"{"product_id":"p001","description":"piano","unit":"unit",
            "price":"KUDOS:1","total_stock":3,"next_restock":{"t_s":5}}"#,
        )
        .unwrap();
        assert_eq!(p.next_restock, Some(Timestamp::from_secs(5)));
        assert!(parse_date("2021-02-29").is_none());
        assert_eq!(parse_date("1970-01-01"), Some(Timestamp::from_secs(0)));
        assert_eq!(
            parse_date("2000-03-01"),
            Some(Timestamp::from_secs(951_868_800))
        );
    }
}
