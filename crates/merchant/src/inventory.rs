//! The inventory as the private API manages it: products (`/private/products…`) and the locks
//! front ends take for carts (`…/lock`). Stock semantics: `db/inventory.rs`.
//!
//! Spec: /work/shared/spec/merchant.md §2.10, §3.2. Accepted from the merchant guide (seed
//! 003): `_forgettable: ["image"]` for `$forgettable: {"image": true}`, `next_restock` as a
//! plain date (`cardcash_api::merchant::inventory`).

use cardcash_api::merchant::inventory::{
    InventoryEntry, InventorySummaryResponse, LockRequest, ProductAddDetail, ProductDetail,
    ProductPatchDetail, Tax,
};
use cardcash_util::{Amount, ErrorCode, Timestamp};
use serde_json::{Value, json};

use crate::db::instances::InstanceRow;
use crate::db::inventory::{
    DeleteProduct, InsertProduct, LockProduct, NewLock, ProductRow, UpdateProduct,
};
use crate::error::MerchantError;
use crate::orders::{MAX_PAGE, out_of_stock_error};
use crate::service::Merchant;

const MAX_ID_LEN: usize = 128;

fn unknown_product(id: &str) -> MerchantError {
    MerchantError::refused(
        ErrorCode::MerchantGenericProductUnknown,
        format!("no product {id:?}"),
    )
}

/// The names in `$forgettable` (`{"image": true}`) or the guide's `_forgettable`
/// (`["image"]`).
fn forgettable_names(
    modern: Option<&Value>,
    legacy: Option<&Value>,
) -> Result<Vec<String>, MerchantError> {
    let mut names = Vec::new();
    for marker in [modern, legacy].into_iter().flatten() {
        match marker {
            Value::Object(entries) => names.extend(entries.keys().cloned()),
            Value::Array(items) => {
                for item in items {
                    names.push(
                        item.as_str()
                            .ok_or_else(|| MerchantError::malformed("_forgettable"))?
                            .to_owned(),
                    );
                }
            }
            _ => return Err(MerchantError::malformed("$forgettable")),
        }
    }
    names.sort();
    names.dedup();
    const FORGETTABLE: &[&str] = &["image", "description_i18n", "taxes", "product_name"];
    if let Some(name) = names.iter().find(|n| !FORGETTABLE.contains(&n.as_str())) {
        return Err(MerchantError::refused(
            ErrorCode::GenericParameterMalformed,
            format!("product field {name:?} cannot be forgettable (only {FORGETTABLE:?})"),
        ));
    }
    Ok(names)
}

struct Common<'a> {
    product_name: &'a Option<String>,
    description: &'a str,
    description_i18n: &'a Option<Value>,
    unit: &'a str,
    price: &'a Amount,
    image: &'a Option<String>,
    taxes: &'a Option<Vec<Tax>>,
    categories: &'a Option<Vec<u64>>,
    total_stock: i64,
    address: &'a Option<Value>,
    next_restock: Option<Timestamp>,
    minimum_age: Option<u32>,
    forgettable: Vec<String>,
}

fn row(m: &Merchant, product_id: &str, c: Common<'_>) -> Result<ProductRow, MerchantError> {
    let currency = m.store().currency();
    if c.price.currency() != currency
        || c.taxes
            .iter()
            .flatten()
            .any(|t| t.tax.currency() != currency)
    {
        return Err(MerchantError::refused(
            ErrorCode::GenericCurrencyMismatch,
            format!("amounts must be in {}", currency.as_str()),
        ));
    }
    if c.total_stock < -1 {
        return Err(MerchantError::malformed("total_stock (−1 = unlimited)"));
    }
    if let Some(i18n) = c.description_i18n
        && !i18n.is_object()
    {
        return Err(MerchantError::malformed("description_i18n"));
    }
    Ok(ProductRow {
        serial: 0,
        product_id: product_id.to_owned(),
        product_name: c.product_name.clone(),
        description: c.description.to_owned(),
        description_i18n: c.description_i18n.clone().unwrap_or_else(|| json!({})),
        unit: c.unit.to_owned(),
        price: *c.price,
        image: c.image.clone().unwrap_or_default(),
        taxes: json!(c.taxes.clone().unwrap_or_default()),
        categories: json!(c.categories.clone().unwrap_or_default()),
        total_stock: c.total_stock,
        total_sold: 0,
        total_lost: 0,
        address: c.address.clone().unwrap_or_else(|| json!({})),
        next_restock: c.next_restock,
        minimum_age: c.minimum_age,
        forgettable: c.forgettable,
    })
}

/// `POST /private/products`: 204 when created or when the same product exists.
pub async fn add_product(
    m: &Merchant,
    instance: &InstanceRow,
    p: &ProductAddDetail,
) -> Result<(), MerchantError> {
    if p.product_id.is_empty()
        || p.product_id.len() > MAX_ID_LEN
        || p.product_id.contains(['/', '?', '#'])
    {
        return Err(MerchantError::malformed("product_id"));
    }
    let forgettable = forgettable_names(p.forgettable.as_ref(), p.forgettable_legacy.as_ref())?;
    let row = row(
        m,
        &p.product_id,
        Common {
            product_name: &p.product_name,
            description: &p.description,
            description_i18n: &p.description_i18n,
            unit: &p.unit,
            price: &p.price,
            image: &p.image,
            taxes: &p.taxes,
            categories: &p.categories,
            total_stock: p.total_stock,
            address: &p.address,
            next_restock: p.next_restock,
            minimum_age: p.minimum_age,
            forgettable,
        },
    )?;
    match m.store().insert_product(instance.serial, row).await? {
        InsertProduct::Created | InsertProduct::Same => Ok(()),
        InsertProduct::Conflict => Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePostProductsConflictProductExists,
            format!("product {:?} exists with other data", p.product_id),
        )),
    }
}

/// `PATCH /private/products/$ID`.
pub async fn update_product(
    m: &Merchant,
    instance: &InstanceRow,
    product_id: &str,
    p: &ProductPatchDetail,
) -> Result<(), MerchantError> {
    let forgettable = forgettable_names(p.forgettable.as_ref(), p.forgettable_legacy.as_ref())?;
    let mut row = row(
        m,
        product_id,
        Common {
            product_name: &p.product_name,
            description: &p.description,
            description_i18n: &p.description_i18n,
            unit: &p.unit,
            price: &p.price,
            image: &p.image,
            taxes: &p.taxes,
            categories: &p.categories,
            total_stock: p.total_stock,
            address: &p.address,
            next_restock: p.next_restock,
            minimum_age: p.minimum_age,
            forgettable,
        },
    )?;
    let now = Timestamp::now();
    // Without total_lost the stored one stays.
    row.total_lost = match p.total_lost {
        Some(lost) if lost < 0 => return Err(MerchantError::malformed("total_lost")),
        Some(lost) => lost,
        None => m
            .store()
            .product(instance.serial, product_id, now)
            .await?
            .map(|(r, _)| r.total_lost)
            .ok_or_else(|| unknown_product(product_id))?,
    };
    match m.store().update_product(instance.serial, row, now).await? {
        UpdateProduct::Updated => Ok(()),
        UpdateProduct::Unknown => Err(unknown_product(product_id)),
        UpdateProduct::StockReduced => Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePatchProductsTotalStockedReduced,
            "total_stock cannot be reduced",
        )),
        UpdateProduct::LostReduced => Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePatchProductsTotalLostReduced,
            "total_lost cannot be reduced",
        )),
        UpdateProduct::LostExceedsStock => Err(MerchantError::refused(
            ErrorCode::MerchantPrivatePatchProductsTotalLostExceedsStocks,
            "sold, lost and locked would exceed total_stock",
        )),
    }
}

/// `GET /private/products/$ID`.
pub async fn product_detail(
    m: &Merchant,
    instance: &InstanceRow,
    product_id: &str,
) -> Result<ProductDetail, MerchantError> {
    let (r, available) = m
        .store()
        .product(instance.serial, product_id, Timestamp::now())
        .await?
        .ok_or_else(|| unknown_product(product_id))?;
    let taxes: Vec<Tax> = serde_json::from_value(r.taxes.clone())
        .map_err(|e| MerchantError::Internal(format!("stored taxes: {e}")))?;
    let categories: Vec<u64> = serde_json::from_value(r.categories.clone())
        .map_err(|e| MerchantError::Internal(format!("stored categories: {e}")))?;
    Ok(ProductDetail {
        product_name: r
            .product_name
            .clone()
            .unwrap_or_else(|| r.description.clone()),
        product_id: r.product_id,
        description: r.description,
        description_i18n: r.description_i18n,
        unit: r.unit,
        price: r.price,
        image: r.image,
        taxes,
        categories,
        total_stock: r.total_stock,
        total_sold: r.total_sold,
        total_lost: r.total_lost,
        total_available: available,
        address: r.address,
        next_restock: r.next_restock,
        minimum_age: r.minimum_age,
        forgettable: r.forgettable,
    })
}

/// `GET /private/products` (`limit` default 20, bounded; `offset` a product serial).
pub async fn list_products(
    m: &Merchant,
    instance: &InstanceRow,
    limit: Option<i64>,
    offset: Option<i64>,
) -> Result<InventorySummaryResponse, MerchantError> {
    let limit = limit.unwrap_or(20).clamp(-MAX_PAGE, MAX_PAGE);
    let offset = offset.unwrap_or(if limit >= 0 { 0 } else { i64::MAX });
    let products = m
        .store()
        .products(instance.serial, limit, offset)
        .await?
        .into_iter()
        .map(|(product_id, product_serial)| InventoryEntry {
            product_id,
            product_serial,
        })
        .collect();
    Ok(InventorySummaryResponse { products })
}

/// `DELETE /private/products/$ID`.
pub async fn delete_product(
    m: &Merchant,
    instance: &InstanceRow,
    product_id: &str,
) -> Result<(), MerchantError> {
    match m
        .store()
        .delete_product(instance.serial, product_id, Timestamp::now())
        .await?
    {
        DeleteProduct::Deleted => Ok(()),
        DeleteProduct::Unknown => Err(unknown_product(product_id)),
        DeleteProduct::Locked => Err(MerchantError::refused(
            ErrorCode::MerchantPrivateDeleteProductsConflictingLock,
            format!("product {product_id:?} is locked (by a cart or an unpaid order)"),
        )),
    }
}

/// `POST /private/products/$ID/lock`.
pub async fn lock_product(
    m: &Merchant,
    instance: &InstanceRow,
    product_id: &str,
    request: &LockRequest,
) -> Result<(), MerchantError> {
    if request.lock_uuid.is_empty() || request.lock_uuid.len() > MAX_ID_LEN {
        return Err(MerchantError::malformed("lock_uuid"));
    }
    let quantity = request.quantity.unwrap_or(1);
    if i64::try_from(quantity).is_err() {
        return Err(MerchantError::malformed("quantity"));
    }
    let now = Timestamp::now();
    let lock = NewLock {
        instance_serial: instance.serial,
        product_id: product_id.to_owned(),
        lock_uuid: request.lock_uuid.clone(),
        quantity,
        now,
        expires_at: now.saturating_add(request.duration),
    };
    match m.store().lock_product(lock).await? {
        LockProduct::Locked | LockProduct::Unlocked => Ok(()),
        LockProduct::Unknown => Err(unknown_product(product_id)),
        LockProduct::OutOfStock(short) => Err(out_of_stock_error(&short)),
    }
}
