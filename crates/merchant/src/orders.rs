//! Orders on the private side: creating them (the complete contract terms but the wallet's
//! nonce), listing, deleting and forgetting fields of them.
//!
//! Spec: /work/shared/spec/merchant.md §2.2 (POST /private/orders), §2.3 (contract terms),
//! §3.1 (deadlines), §3.3 (fees), §1.5 (listing, delete), §2.8 (forget). What we accept beyond
//! today's protocol, from the merchant guide (seed 003): `fulfillment_URI` as an alias of
//! `fulfillment_url`; `_forgettable` (a list of names) as `$forgettable`; `max_wire_fee` and
//! `wire_fee_amortization` (see [`max_fee`]). Our extra: an `Idempotency-Key` for orders
//! without `order_id`.
//!
//! This module never writes SQL and never signs: the claim (H3) adds the nonce, hashes the
//! terms with `cardcash_crypto::contract::h_contract_terms` and signs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cardcash_api::merchant::orders::{
    ForgetRequest, OrderHistory, OrderHistoryEntry, PostOrderRequest, PostOrderResponse,
};
use cardcash_crypto::contract;
use cardcash_util::{Amount, ErrorCode, RelativeTime, Timestamp, base32};
use serde_json::{Map, Value, json};

use crate::contract::{
    ContractError, check_paths, forget, normalize_legacy_forgettable, salt_forgettable,
};
use crate::db::TOPIC_ORDER;
use crate::db::instances::{AccountRow, InstanceRow};
use crate::db::inventory::{OutOfStock, ProductRow};
use crate::db::orders::{CreateOrder, DeleteOrder, NewOrder, OrderFilter, OrderRow, Tristate};
use crate::error::MerchantError;
use crate::service::Merchant;

/// Largest page of `GET /private/orders`.
pub const MAX_PAGE: i64 = 200;
/// Default page: the newest 20.
pub const DEFAULT_LIMIT: i64 = -20;
/// Longest order id or idempotency key we store.
const MAX_ID_LEN: usize = 128;

/// Contract fields an order may not declare forgettable (the contract needs them).
const REQUIRED_FIELDS: &[&str] = &[
    "summary",
    "order_id",
    "amount",
    "max_fee",
    "timestamp",
    "refund_deadline",
    "pay_deadline",
    "wire_transfer_deadline",
    "merchant_pub",
    "merchant_base_url",
    "merchant",
    "h_wire",
    "wire_method",
    "exchanges",
    "auditors",
    "products",
    "nonce",
    "version",
];

/// Fields the backend sets itself; an order's values for them are replaced.
const BACKEND_FIELDS: &[&str] = &[
    "merchant_pub",
    "merchant_base_url",
    "merchant",
    "h_wire",
    "wire_method",
    "exchanges",
    "auditors",
    "nonce",
    // folded into max_fee (see `max_fee`)
    "max_wire_fee",
    "wire_fee_amortization",
];

fn parse_error(hint: impl Into<String>) -> MerchantError {
    MerchantError::refused(ErrorCode::MerchantPrivatePostOrdersProposalParseError, hint)
}

fn out_of_stock(short: &OutOfStock) -> MerchantError {
    let mut body = json!({
        "product_id": short.product_id,
        "requested_quantity": short.requested,
        "available_quantity": short.available,
    });
    if let Some(t) = short.restock_expected {
        body["restock_expected"] = json!(t);
    }
    MerchantError::refused_with(
        ErrorCode::MerchantPrivatePostProductsLockInsufficientStocks,
        format!("not enough of product {:?} in stock", short.product_id),
        body,
    )
}

/// The 410 answer of a lock or an order that finds stock short.
pub fn out_of_stock_error(short: &OutOfStock) -> MerchantError {
    out_of_stock(short)
}

fn random<const N: usize>() -> Result<[u8; N], MerchantError> {
    cardcash_crypto::random_bytes::<N>()
        .map_err(|e| MerchantError::Internal(format!("randomness: {e}")))
}

/// An order id the backend makes: `YYYY.DDD-` (UTC day of the year, for humans sorting
/// them) and 80 random bits in base32, e.g. `2026.340-0Q3M8Z7X1KDHYW2C`.
fn generate_order_id(now: Timestamp) -> Result<String, MerchantError> {
    let days = i64::try_from(now.as_secs() / 86_400).unwrap_or(0);
    let (year, day_of_year) = year_and_day(days);
    let r: [u8; 10] = random()?;
    Ok(format!("{year}.{day_of_year:03}-{}", base32::encode(&r)))
}

/// (year, day of the year 1..=366) of a day count since 1970-01-01.
fn year_and_day(days: i64) -> (i64, i64) {
    // H. Hinnant's civil_from_days, then the day within the year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_march = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_march + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let jan1 = cardcash_api::merchant::inventory::days_from_civil(year, 1, 1);
    (year, days - jan1 + 1)
}

/// Whether an order id (or idempotency key) is acceptable: what fits in a URL path segment
/// and a `taler://pay` URI unescaped.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':'))
}

fn take<T: serde::de::DeserializeOwned>(
    order: &Map<String, Value>,
    field: &str,
) -> Result<Option<T>, MerchantError> {
    match order.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| parse_error(format!("order field {field:?}: {e}"))),
    }
}

fn same_currency(m: &Merchant, what: &str, a: &Amount) -> Result<(), MerchantError> {
    if a.currency() != m.store().currency() {
        return Err(MerchantError::refused_status(
            axum::http::StatusCode::CONFLICT,
            ErrorCode::GenericCurrencyMismatch,
            format!(
                "{what} is in {}, this backend takes {}",
                a.currency().as_str(),
                m.store().currency().as_str()
            ),
        ));
    }
    Ok(())
}

/// The contract's `max_fee`: what the merchant pays of the customer's fees.
///
/// Today's protocol has one budget, `max_fee` (default: the instance's
/// `default_max_deposit_fee`, else zero); the wire fee is the merchant's own cost. The guide's
/// older model split it into deposit fees (`max_fee`) and the wire fee the merchant covers
/// (`max_wire_fee`), shared among `wire_fee_amortization` payments. We keep the merchant's
/// total willingness: `max_fee + max_wire_fee / wire_fee_amortization` (rounded down to the
/// smallest unit), so a shop that said "I pay up to 5 of wire fee over 1 order" still covers
/// that much of the customer's fees. Neither old field goes into the contract.
fn max_fee(
    m: &Merchant,
    instance: &InstanceRow,
    order: &Map<String, Value>,
) -> Result<Amount, MerchantError> {
    let currency = m.store().currency();
    let deposit: Amount = match take::<Amount>(order, "max_fee")? {
        Some(a) => a,
        None => instance
            .default_max_deposit_fee
            .unwrap_or_else(|| Amount::zero(currency)),
    };
    same_currency(m, "max_fee", &deposit)?;
    let wire: Option<Amount> = match take::<Amount>(order, "max_wire_fee")? {
        Some(a) => Some(a),
        None => instance.default_max_wire_fee,
    };
    let Some(wire) = wire else {
        return Ok(deposit);
    };
    same_currency(m, "max_wire_fee", &wire)?;
    let amortization = match take::<u64>(order, "wire_fee_amortization")? {
        Some(0) => return Err(parse_error("wire_fee_amortization must be at least 1")),
        Some(n) => n,
        None => u64::from(instance.default_wire_fee_amortization.max(1)),
    };
    let share = Amount::from_units(currency, wire.to_units() / u128::from(amortization))
        .map_err(|e| parse_error(format!("max_wire_fee: {e}")))?;
    deposit
        .checked_add(&share)
        .map_err(|e| parse_error(format!("max_fee: {e}")))
}

/// The active account to be paid to: the first (oldest) one, or the first whose wire method
/// is `payment_target`, or the one whose payto URI it is.
fn choose_account<'a>(
    accounts: &'a [AccountRow],
    payment_target: Option<&str>,
) -> Option<(&'a AccountRow, String)> {
    accounts.iter().filter(|a| a.active).find_map(|a| {
        let method = wire_method(&a.payto_uri)?;
        match payment_target {
            Some(t) if t.starts_with("payto://") && t != a.payto_uri => None,
            Some(t) if !t.starts_with("payto://") && !t.eq_ignore_ascii_case(&method) => None,
            _ => Some((a, method)),
        }
    })
}

/// The payto target type (`iban`, `x-taler-bank`) of a payto URI.
fn wire_method(payto: &str) -> Option<String> {
    let rest = payto
        .get(..8)?
        .eq_ignore_ascii_case("payto://")
        .then(|| &payto[8..])?;
    let method = rest.split(['/', '?']).next()?;
    (!method.is_empty()).then(|| method.to_ascii_lowercase())
}

/// The contract's `merchant` object.
fn merchant_info(instance: &InstanceRow) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(instance.name));
    for (key, value) in [
        ("email", &instance.email),
        ("website", &instance.website),
        ("logo", &instance.logo),
    ] {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    for (key, value) in [
        ("address", &instance.address),
        ("jurisdiction", &instance.jurisdiction),
    ] {
        if value.as_object().is_some_and(|o| !o.is_empty()) {
            m.insert(key.into(), value.clone());
        }
    }
    Value::Object(m)
}

/// The contract's line of an inventory product (`quantity` units).
fn inventory_line(product: &ProductRow, quantity: u64) -> Result<Value, MerchantError> {
    let total = product
        .price
        .checked_mul(quantity)
        .map_err(|e| parse_error(format!("price of {quantity} × {}: {e}", product.product_id)))?;
    let mut line = Map::new();
    line.insert("product_id".into(), json!(product.product_id));
    if let Some(name) = &product.product_name {
        line.insert("product_name".into(), json!(name));
    }
    line.insert("description".into(), json!(product.description));
    if product
        .description_i18n
        .as_object()
        .is_some_and(|o| !o.is_empty())
    {
        line.insert("description_i18n".into(), product.description_i18n.clone());
    }
    line.insert("quantity".into(), json!(quantity));
    line.insert("unit".into(), json!(product.unit));
    line.insert("price".into(), json!(total));
    if let Some(taxes) = product.taxes.as_array().filter(|t| !t.is_empty()) {
        let scaled = taxes
            .iter()
            .map(|t| {
                let tax: Amount = serde_json::from_value(t["tax"].clone())
                    .map_err(|e| MerchantError::Internal(format!("stored tax: {e}")))?;
                let tax = tax
                    .checked_mul(quantity)
                    .map_err(|e| parse_error(format!("tax: {e}")))?;
                Ok(json!({"name": t["name"], "tax": tax}))
            })
            .collect::<Result<Vec<Value>, MerchantError>>()?;
        line.insert("taxes".into(), Value::Array(scaled));
    }
    if !product.image.is_empty() {
        line.insert("image".into(), json!(product.image));
    }
    if let Some(age) = product.minimum_age {
        line.insert("minimum_age".into(), json!(age));
    }
    // The product's forgettable fields stay forgettable in every contract that lists it.
    let forgettable: Map<String, Value> = product
        .forgettable
        .iter()
        .filter(|f| line.contains_key(f.as_str()))
        .map(|f| (f.clone(), Value::Bool(true)))
        .collect();
    if !forgettable.is_empty() {
        line.insert("$forgettable".into(), Value::Object(forgettable));
    }
    Ok(Value::Object(line))
}

/// `POST /private/orders`: the order's contract terms (all but the nonce) stored with its
/// inventory locks in one transaction.
pub async fn create_order(
    m: &Merchant,
    instance: &InstanceRow,
    body: Value,
    idempotency_key: Option<String>,
) -> Result<PostOrderResponse, MerchantError> {
    // The request as sent identifies a replay (canonical: key order and spacing do not count).
    let canonical = contract::canonical_json_any_keys(&body)
        .map_err(|e| parse_error(format!("request: {e}")))?;
    let h_post_data = cardcash_crypto::sha512(canonical.as_bytes());
    let request: PostOrderRequest = serde_json::from_value(body).map_err(|e| {
        MerchantError::refused(
            ErrorCode::GenericJsonInvalid,
            format!("malformed order request: {e}"),
        )
    })?;
    if let Some(key) = &idempotency_key
        && !valid_id(key)
    {
        return Err(MerchantError::malformed("Idempotency-Key"));
    }
    let Value::Object(mut order) = request.order else {
        return Err(parse_error("`order` must be an object"));
    };
    let now = Timestamp::now();
    // An order id given is the idempotency key itself; the header counts only without one.
    let idempotency_key = idempotency_key.filter(|_| !order.contains_key("order_id"));

    // The guide's spellings.
    if let Some(uri) = order.remove("fulfillment_URI") {
        match order.get("fulfillment_url") {
            Some(url) if *url != uri => {
                return Err(parse_error(
                    "fulfillment_URI and fulfillment_url differ (they are the same field)",
                ));
            }
            _ => {
                order.insert("fulfillment_url".into(), uri);
            }
        }
    }
    let mut order_value = Value::Object(order);
    normalize_legacy_forgettable(&mut order_value).map_err(|e| parse_error(e.to_string()))?;
    let Value::Object(mut order) = order_value else {
        return Err(parse_error("`order` must be an object"));
    };

    match take::<u64>(&order, "version")? {
        None | Some(0) => {}
        Some(v) => {
            return Err(MerchantError::refused(
                ErrorCode::GenericVersionMalformed,
                format!("contract version {v} is not supported (only 0)"),
            ));
        }
    }
    let summary: String = take(&order, "summary")?.ok_or_else(|| {
        MerchantError::refused(ErrorCode::GenericParameterMissing, "order.summary")
    })?;
    let amount: Amount = take(&order, "amount")?.ok_or_else(|| {
        MerchantError::refused(ErrorCode::GenericParameterMissing, "order.amount")
    })?;
    same_currency(m, "amount", &amount)?;
    let max_fee = max_fee(m, instance, &order)?;

    // Deadlines (whole seconds, as the wire carries them).
    let timestamp = take::<Timestamp>(&order, "timestamp")?
        .unwrap_or(now)
        .round_down_to_secs();
    let pay_deadline = match take::<Timestamp>(&order, "pay_deadline")? {
        Some(t) => t.round_down_to_secs(),
        None => now
            .saturating_add(instance.default_pay_delay)
            .round_down_to_secs(),
    };
    if pay_deadline <= now {
        return Err(MerchantError::refused_status(
            axum::http::StatusCode::BAD_REQUEST,
            ErrorCode::MerchantPrivatePostOrdersPayDeadlineInPast,
            "the pay deadline is in the past",
        ));
    }
    let refund_deadline = match (
        take::<Timestamp>(&order, "refund_deadline")?,
        request.refund_delay,
    ) {
        (Some(t), _) => {
            let t = t.round_down_to_secs();
            if t < now && t != timestamp {
                return Err(MerchantError::refused_status(
                    axum::http::StatusCode::BAD_REQUEST,
                    ErrorCode::MerchantPrivatePostOrdersRefundDeadlineInPast,
                    "the refund deadline is in the past",
                ));
            }
            t
        }
        (None, Some(delay)) => now.saturating_add(delay).round_down_to_secs(),
        (None, None) => now
            .saturating_add(instance.default_refund_delay)
            .round_down_to_secs(),
    };
    let wire_transfer_deadline = match take::<Timestamp>(&order, "wire_transfer_deadline")? {
        Some(t) => t.round_down_to_secs(),
        None => refund_deadline
            .saturating_add(instance.default_wire_transfer_delay)
            .round_down_to_secs(),
    };
    if wire_transfer_deadline.is_never() {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePostOrdersWireDeadlineIsNever,
            "the wire transfer deadline cannot be never",
        ));
    }
    if wire_transfer_deadline < refund_deadline {
        return Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePostOrdersRefundAfterWireDeadline,
            "the refund deadline is after the wire transfer deadline",
        ));
    }
    if let Some(delivery) = take::<Timestamp>(&order, "delivery_date")? {
        if delivery < now {
            return Err(MerchantError::refused(
                ErrorCode::MerchantPrivatePostOrdersDeliveryDateInPast,
                "the delivery date is in the past",
            ));
        }
        order.insert("delivery_date".into(), json!(delivery.round_down_to_secs()));
    }
    if let Some(auto_refund) = take::<RelativeTime>(&order, "auto_refund")? {
        order.insert("auto_refund".into(), json!(auto_refund));
    }
    let _: Option<u32> = take(&order, "minimum_age")?;
    for field in [
        "fulfillment_url",
        "fulfillment_message",
        "public_reorder_url",
    ] {
        let _: Option<String> = take(&order, field)?;
    }

    // Order id and the fulfillment URL's `${ORDER_ID}`.
    let order_id = match take::<String>(&order, "order_id")? {
        Some(id) if valid_id(&id) => id,
        Some(_) => {
            return Err(parse_error(
                "order_id: 1–128 characters of [A-Za-z0-9-_.~:]",
            ));
        }
        None => generate_order_id(now)?,
    };
    let fulfillment_url = match order.get("fulfillment_url").and_then(Value::as_str) {
        Some(url) => {
            let url = url.replace("${ORDER_ID}", &order_id);
            order.insert("fulfillment_url".into(), json!(url));
            Some(url)
        }
        None => None,
    };

    // Products: the order's own lines, then those taken from the inventory.
    let mut products: Vec<Value> = match order.remove("products") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(parse_error("order.products must be a list")),
    };
    for (i, p) in products.iter().enumerate() {
        if !p.get("description").is_some_and(Value::is_string) {
            return Err(parse_error(format!(
                "order.products[{i}] needs a description"
            )));
        }
        if let Some(price) = p.get("price") {
            let price: Amount = serde_json::from_value(price.clone())
                .map_err(|e| parse_error(format!("order.products[{i}].price: {e}")))?;
            same_currency(m, "a product price", &price)?;
        }
    }
    let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
    for item in request.inventory_products.iter().flatten() {
        if item.quantity == 0 {
            return Err(parse_error(format!(
                "inventory product {:?} with quantity 0",
                item.product_id
            )));
        }
        let q = wanted.entry(item.product_id.clone()).or_default();
        *q = q
            .checked_add(item.quantity)
            .ok_or_else(|| parse_error("quantity overflow"))?;
    }
    let mut locks: Vec<(i64, u64)> = Vec::new();
    for (product_id, quantity) in &wanted {
        let (product, _) = m
            .store()
            .product(instance.serial, product_id, now)
            .await?
            .ok_or_else(|| {
                MerchantError::refused(
                    ErrorCode::MerchantGenericProductUnknown,
                    format!("no product {product_id:?}"),
                )
            })?;
        products.push(inventory_line(&product, *quantity)?);
        locks.push((product.serial, *quantity));
    }
    locks.sort_unstable();
    let lock_uuids = request.lock_uuids.unwrap_or_default();
    if lock_uuids
        .iter()
        .any(|u| u.is_empty() || u.len() > MAX_ID_LEN)
    {
        return Err(MerchantError::malformed("lock_uuids"));
    }

    // The account paid to.
    let accounts = m.store().accounts(instance.serial).await?;
    let (account, wire_method) = choose_account(&accounts, request.payment_target.as_deref())
        .ok_or_else(|| {
            MerchantError::refused(
                ErrorCode::MerchantPrivatePostOrdersInstanceConfigurationLacksWire,
                match &request.payment_target {
                    Some(t) => format!("instance {:?} has no active {t} account", instance.id),
                    None => format!("instance {:?} has no active bank account", instance.id),
                },
            )
        })?;

    // The contract terms: the order's fields (less what the backend decides) and ours.
    for field in BACKEND_FIELDS {
        order.remove(*field);
    }
    let exchanges: Vec<Value> = m
        .config()
        .exchanges
        .iter()
        .filter(|e| &e.currency == m.store().currency())
        .map(|e| json!({"url": e.base_url, "priority": 1024, "master_pub": e.master_pub}))
        .collect();
    let mut terms = order;
    terms.insert("summary".into(), json!(summary));
    terms.insert("order_id".into(), json!(order_id));
    terms.insert("amount".into(), json!(amount));
    terms.insert("max_fee".into(), json!(max_fee));
    terms.insert("products".into(), Value::Array(products));
    terms.insert("timestamp".into(), json!(timestamp));
    terms.insert("pay_deadline".into(), json!(pay_deadline));
    terms.insert("refund_deadline".into(), json!(refund_deadline));
    terms.insert(
        "wire_transfer_deadline".into(),
        json!(wire_transfer_deadline),
    );
    terms.insert("merchant_pub".into(), json!(instance.merchant_pub));
    terms.insert(
        "merchant_base_url".into(),
        json!(m.instance_base_url(&instance.id)),
    );
    terms.insert("merchant".into(), merchant_info(instance));
    terms.insert("h_wire".into(), json!(account.h_wire));
    terms.insert("wire_method".into(), json!(wire_method));
    terms.insert("exchanges".into(), Value::Array(exchanges));
    terms.insert("auditors".into(), json!([]));
    let mut terms = Value::Object(terms);
    let mut salt_error = None;
    let mut salt = || match random::<32>() {
        Ok(bytes) => base32::encode(&bytes),
        Err(e) => {
            salt_error = Some(e);
            String::from("0")
        }
    };
    salt_forgettable(&mut terms, REQUIRED_FIELDS, &mut salt)
        .map_err(|e| parse_error(e.to_string()))?;
    if let Some(e) = salt_error {
        return Err(e);
    }
    // What a wallet will check and hash must already pass here.
    contract::validate_forgettable(&terms)
        .and_then(|()| contract::h_contract_terms(&terms).map(|_| ()))
        .map_err(|e| parse_error(format!("contract terms: {e}")))?;

    let claim_token = if request.create_token.unwrap_or(true) {
        Some(random::<16>()?)
    } else {
        None
    };
    let new = NewOrder {
        instance_serial: instance.serial,
        order_id: order_id.clone(),
        claim_token,
        h_post_data,
        idempotency_key,
        created_at: now,
        pay_deadline,
        refund_deadline,
        wire_transfer_deadline,
        summary,
        amount,
        fulfillment_url,
        account_serial: account.serial,
        contract_terms: terms.to_string(),
        session_id: request.session_id.unwrap_or_default(),
        locks,
        lock_uuids,
    };
    match m.store().create_order(new).await? {
        CreateOrder::Created { .. } => Ok(PostOrderResponse {
            order_id,
            token: claim_token.map(|t| base32::encode(&t)),
        }),
        CreateOrder::Replay {
            order_id,
            claim_token,
        } => Ok(PostOrderResponse {
            order_id,
            token: claim_token.map(|t| base32::encode(&t)),
        }),
        CreateOrder::Conflict { order_id } => Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePostOrdersAlreadyExists,
            format!("order {order_id:?} exists with a different request"),
        )),
        CreateOrder::OutOfStock(short) => Err(out_of_stock(&short)),
    }
}

/// `GET /private/orders` query.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    pub paid: Option<String>,
    pub refunded: Option<String>,
    pub wired: Option<String>,
    pub date_s: Option<u64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub session_id: Option<String>,
    pub fulfillment_url: Option<String>,
    /// With a positive `limit`: wait up to this long for a new order when there is none yet.
    pub timeout_ms: Option<u64>,
    /// Deprecated names of `limit` and `offset` (BTCPay's plugin still sends `delta`).
    pub delta: Option<i64>,
    pub start: Option<i64>,
}

/// A `yes`/`no`/`all` query parameter (any case; absent is `all`).
pub(crate) fn tristate(name: &str, v: Option<&str>) -> Result<Tristate, MerchantError> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("all") => Ok(Tristate::All),
        Some("yes") => Ok(Tristate::Yes),
        Some("no") => Ok(Tristate::No),
        Some(_) => Err(MerchantError::malformed(name)),
    }
}

/// `GET /private/orders`: one bounded page, by row serial (the cursor is `row_id`).
pub async fn list_orders(
    m: &Merchant,
    instance: &InstanceRow,
    q: &ListQuery,
) -> Result<OrderHistory, MerchantError> {
    let limit = q.limit.or(q.delta).unwrap_or(DEFAULT_LIMIT);
    if limit == 0 {
        return Ok(OrderHistory { orders: Vec::new() });
    }
    let limit = limit.clamp(-MAX_PAGE, MAX_PAGE);
    let offset = q.offset.or(q.start);
    if offset.is_some_and(|o| o < 0) {
        return Err(MerchantError::malformed("offset"));
    }
    let filter = OrderFilter {
        paid: tristate("paid", q.paid.as_deref())?,
        refunded: tristate("refunded", q.refunded.as_deref())?,
        wired: tristate("wired", q.wired.as_deref())?,
        date: q.date_s.map(Timestamp::from_secs),
        session_id: q.session_id.clone(),
        fulfillment_url: q.fulfillment_url.clone(),
        limit,
        offset,
    };
    // Long polling for new orders (ascending pages only): subscribe before reading.
    let wait = q
        .timeout_ms
        .filter(|_| limit > 0)
        .map(|ms| Duration::from_millis(ms).min(cardcash_http::longpoll::MAX_LONG_POLL));
    let mut subscription = wait.map(|_| m.store().notifier().subscribe_topic(TOPIC_ORDER));
    let deadline = Instant::now() + wait.unwrap_or_default();
    loop {
        let rows = m.store().orders(instance.serial, &filter).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let waiting = match &mut subscription {
            Some(sub) if rows.is_empty() && !left.is_zero() => sub.wait(left).await,
            _ => false,
        };
        if !waiting {
            let now = Timestamp::now();
            return Ok(OrderHistory {
                orders: rows.iter().map(|r| history_entry(r, now)).collect(),
            });
        }
    }
}

fn history_entry(r: &OrderRow, now: Timestamp) -> OrderHistoryEntry {
    OrderHistoryEntry {
        order_id: r.order_id.clone(),
        row_id: r.serial,
        timestamp: r.created_at,
        amount: r.amount,
        summary: r.summary.clone(),
        refundable: r.paid && !r.wired && now < r.refund_deadline && r.refund < r.amount,
        paid: r.paid,
    }
}

/// `DELETE /private/orders/$ID[?force=YES]`.
pub async fn delete_order(
    m: &Merchant,
    instance: &InstanceRow,
    order_id: &str,
    force: bool,
) -> Result<(), MerchantError> {
    match m
        .store()
        .delete_order(instance.serial, order_id, force)
        .await?
    {
        DeleteOrder::Deleted => Ok(()),
        DeleteOrder::Unknown => Err(unknown_order(order_id)),
        DeleteOrder::Claimed => Err(MerchantError::refused(
            ErrorCode::MerchantPrivateDeleteOrdersAwaitingPayment,
            format!("order {order_id:?} is claimed and may still be paid (?force=YES deletes it)"),
        )),
        DeleteOrder::Paid => Err(MerchantError::refused(
            ErrorCode::MerchantPrivateDeleteOrdersAlreadyPaid,
            format!("order {order_id:?} was paid: it is kept"),
        )),
    }
}

fn unknown_order(order_id: &str) -> MerchantError {
    MerchantError::refused(
        ErrorCode::MerchantGenericOrderUnknown,
        format!("no order {order_id:?}"),
    )
}

/// What `PATCH …/forget` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgot {
    /// Something was forgotten (200).
    Changed,
    /// Everything named was already forgotten, or is not in the contract (204).
    Unchanged,
}

/// `PATCH /private/orders/$ID/forget`: the named fields become their salted hashes; the
/// contract hash stays. A claim racing with it is never overwritten (the terms are replaced
/// only if they are still what was read; else read again).
pub async fn forget_fields(
    m: &Merchant,
    instance: &InstanceRow,
    order_id: &str,
    request: &ForgetRequest,
) -> Result<Forgot, MerchantError> {
    check_paths(&request.fields).map_err(forget_error)?;
    for _ in 0..5 {
        let order = m
            .store()
            .order(instance.serial, order_id)
            .await?
            .ok_or_else(|| unknown_order(order_id))?;
        let mut terms: Value = serde_json::from_str(&order.contract_terms)
            .map_err(|e| MerchantError::Internal(format!("stored contract terms: {e}")))?;
        if !forget(&mut terms, &request.fields).map_err(forget_error)? {
            return Ok(Forgot::Unchanged);
        }
        if m.store()
            .replace_contract_terms(order.serial, &order.contract_terms, &terms.to_string())
            .await?
        {
            return Ok(Forgot::Changed);
        }
    }
    Err(MerchantError::Internal(
        "the contract terms kept changing while forgetting".into(),
    ))
}

fn forget_error(e: ContractError) -> MerchantError {
    match e {
        ContractError::PathSyntax(..) => MerchantError::refused(
            ErrorCode::MerchantPrivatePatchOrdersIdForgetPathSyntaxIncorrect,
            e.to_string(),
        ),
        ContractError::NotForgettable(_) => MerchantError::refused(
            ErrorCode::MerchantPrivatePatchOrdersIdForgetPathNotForgettable,
            e.to_string(),
        ),
        ContractError::Malformed(_) => MerchantError::Internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_order_ids_carry_the_day_and_80_random_bits() {
        // 2021-03-23 (the guide's timestamp) is day 82.
        let id = generate_order_id(Timestamp::from_secs(1_616_537_665)).unwrap();
        assert!(id.starts_with("2021.082-"), "{id}");
        assert_eq!(id.len(), "2021.082-".len() + 16);
        assert!(valid_id(&id));
        assert_ne!(
            id,
            generate_order_id(Timestamp::from_secs(1_616_537_665)).unwrap()
        );
        assert_eq!(year_and_day(0), (1970, 1));
        assert_eq!(year_and_day(365), (1971, 1));
        // 2024-12-31: a leap year's day 366
        assert_eq!(year_and_day(20_088), (2024, 366));
    }

    #[test]
    fn wire_methods_and_ids() {
        assert_eq!(
            wire_method("payto://iban/CH9300762011623852957").as_deref(),
            Some("iban")
        );
        assert_eq!(
            wire_method("payto://x-taler-bank/localhost/shop?receiver-name=x").as_deref(),
            Some("x-taler-bank")
        );
        assert_eq!(wire_method("mailto:x"), None);
        assert!(!valid_id("a/b"));
        assert!(!valid_id(""));
        assert!(valid_id("G93420934823"));
    }
}
