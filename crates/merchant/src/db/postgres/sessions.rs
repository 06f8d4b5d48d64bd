//! Sessions on PostgreSQL.

use cardcash_store::{PgDb, StoreError};
use sqlx::Row;

use super::super::sessions::SessionOrder;
use super::flag;

pub(crate) async fn session_order(
    db: &PgDb,
    instance_serial: i64,
    session_id: &str,
    fulfillment_url: &str,
) -> Result<Option<SessionOrder>, StoreError> {
    let row = sqlx::query(
        "SELECT order_id, paid FROM orders WHERE instance_serial = $1 AND session_id = $2 \
         AND fulfillment_url = $3 \
         ORDER BY paid DESC, paid_at DESC NULLS LAST, order_serial DESC LIMIT 1",
    )
    .bind(instance_serial)
    .bind(session_id)
    .bind(fulfillment_url)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(SessionOrder {
            order_id: row.try_get("order_id")?,
            paid: flag(&row, "paid")?,
        })
    })
    .transpose()
}
