//! Sessions on SQLite.

use cardcash_store::rusqlite::{Connection, params};
use cardcash_store::{StoreError, query_opt};

use super::super::sessions::SessionOrder;
use super::flag;

pub(crate) fn session_order(
    conn: &Connection,
    instance_serial: i64,
    session_id: &str,
    fulfillment_url: &str,
) -> Result<Option<SessionOrder>, StoreError> {
    query_opt(
        conn,
        "SELECT order_id, paid FROM orders WHERE instance_serial = ?1 AND session_id = ?2 \
         AND fulfillment_url = ?3 ORDER BY paid DESC, paid_at DESC, order_serial DESC LIMIT 1",
        params![instance_serial, session_id, fulfillment_url],
        |row| {
            Ok(SessionOrder {
                order_id: row.get(0)?,
                paid: flag(row, 1)?,
            })
        },
    )
}
