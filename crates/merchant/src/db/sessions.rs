//! `GET /sessions/$SESSION_ID`: the order of a session for a fulfillment URL (paid first,
//! then the newest), along the `orders_by_session` index for paid ones.

use cardcash_store::{Database, StoreError};

use super::{MerchantStore, postgres, sqlite};

/// The order a session holds for a fulfillment URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOrder {
    pub order_id: String,
    pub paid: bool,
}

impl MerchantStore {
    /// The instance's order of `session_id` for `fulfillment_url`: the last one paid in the
    /// session, else the newest unpaid one created for it; `None` when there is none.
    pub async fn session_order(
        &self,
        instance_serial: i64,
        session_id: &str,
        fulfillment_url: &str,
    ) -> Result<Option<SessionOrder>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| {
                sqlite::sessions::session_order(conn, instance_serial, session_id, fulfillment_url)
            }),
            Database::Postgres(db) => {
                postgres::sessions::session_order(db, instance_serial, session_id, fulfillment_url)
                    .await
            }
        }
    }
}
