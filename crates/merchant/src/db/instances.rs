//! Instances and their bank accounts (the foundation every other feature reads).

use std::sync::Arc;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, EddsaPublicKey, HashCode, RelativeTime, Timestamp, WireSalt};

use super::{MerchantStore, postgres, sqlite};

/// How an instance's private API is authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum InstanceAuth {
    /// A reverse proxy in front authenticates; the backend checks nothing.
    External,
    /// `Authorization: Bearer secret-token:<password>`; the argon2id PHC string of the password.
    Token { password_hash: String },
}

impl std::fmt::Debug for InstanceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::External => f.write_str("External"),
            Self::Token { .. } => f.write_str("Token(…redacted…)"),
        }
    }
}

/// A stored instance.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceRow {
    pub serial: i64,
    pub id: String,
    pub merchant_pub: EddsaPublicKey,
    /// The Ed25519 seed of the instance's key.
    pub merchant_priv: [u8; 32],
    pub name: String,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub website: Option<String>,
    pub logo: Option<String>,
    pub address: serde_json::Value,
    pub jurisdiction: serde_json::Value,
    pub use_stefan: bool,
    pub auth: InstanceAuth,
    pub default_max_deposit_fee: Option<Amount>,
    pub default_max_wire_fee: Option<Amount>,
    pub default_wire_fee_amortization: u32,
    pub default_pay_delay: RelativeTime,
    pub default_refund_delay: RelativeTime,
    pub default_wire_transfer_delay: RelativeTime,
    pub created_at: Timestamp,
    pub deleted: bool,
}

/// A bank account of an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    pub serial: i64,
    pub h_wire: HashCode,
    pub salt: WireSalt,
    pub payto_uri: String,
    pub active: bool,
    pub credit_facade_url: Option<String>,
    /// JSON text, as configured.
    pub credit_facade_credentials: Option<String>,
}

/// A new instance (its key made by the caller) with its first accounts.
#[derive(Clone, Debug)]
pub struct NewInstance {
    pub row: InstanceRow,
    pub accounts: Vec<AccountRow>,
}

/// The outcome of creating an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateInstance {
    Created {
        serial: i64,
    },
    /// An instance with this id exists (possibly deleted: it must be purged first).
    Exists {
        deleted: bool,
    },
}

impl MerchantStore {
    /// Creates an instance with its accounts in one transaction (`serial` fields are ignored).
    pub async fn create_instance(&self, new: NewInstance) -> Result<CreateInstance, StoreError> {
        let new = Arc::new(new);
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let new = new.clone();
                    db.write(move |tx| sqlite::instances::create_instance(tx, &new))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::instances::create_instance(db, &new)).await
            }
        }
    }

    /// The instance `id` (also a deleted one: callers decide).
    pub async fn instance(&self, id: &str) -> Result<Option<InstanceRow>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::instances::instance(conn, currency, id)),
            Database::Postgres(db) => postgres::instances::instance(db, currency, id).await,
        }
    }

    /// Every instance, by id.
    pub async fn instances(&self) -> Result<Vec<InstanceRow>, StoreError> {
        let currency = self.currency;
        match &self.db {
            Database::Sqlite(db) => db.read(|conn| sqlite::instances::instances(conn, currency)),
            Database::Postgres(db) => postgres::instances::instances(db, currency).await,
        }
    }

    /// The accounts of an instance, active or not, oldest first.
    pub async fn accounts(&self, instance_serial: i64) -> Result<Vec<AccountRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::instances::accounts(conn, instance_serial))
            }
            Database::Postgres(db) => postgres::instances::accounts(db, instance_serial).await,
        }
    }
}
