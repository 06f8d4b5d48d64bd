//! Instances and their bank accounts (the foundation every other feature reads).

use std::sync::Arc;

use cardcash_store::{Database, StoreError, retry};
use cardcash_util::{Amount, EddsaPublicKey, HashCode, RelativeTime, Timestamp, WireSalt};

use super::{MerchantStore, postgres, sqlite};
use crate::auth::Scope;

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

/// A login token (only the SHA-512 of its secret is stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginTokenRow {
    pub serial: i64,
    pub scope: Scope,
    pub refreshable: bool,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A login token to store.
#[derive(Clone, Debug)]
pub struct NewLoginToken {
    pub instance_serial: i64,
    pub token_hash: HashCode,
    pub scope: Scope,
    pub refreshable: bool,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The outcome of adding an account to an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddAccount {
    /// A new account, or an inactive one with this payto URI made active again (keeping its
    /// salt, so contracts that name it stay valid).
    Added(AccountRow),
    /// The same account is there already, active and configured alike.
    Same(AccountRow),
    /// An active account with this payto URI is configured differently.
    Conflict,
}

pub(crate) fn scope_of(text: &str) -> Result<Scope, StoreError> {
    text.parse()
        .map_err(|()| super::corrupt(format!("token scope {text:?}")))
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

    /// Stores the settings of `row` (not id, key, auth or dates) on the live instance
    /// `row.serial`; false if there is none.
    pub async fn update_instance(&self, row: &InstanceRow) -> Result<bool, StoreError> {
        let row = Arc::new(row.clone());
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let row = row.clone();
                    db.write(move |tx| sqlite::instances::update_instance(tx, &row))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::instances::update_instance(db, &row)).await
            }
        }
    }

    /// Marks the live instance `id` deleted; false if there is none.
    pub async fn soft_delete_instance(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let id = id.clone();
                    db.write(move |tx| sqlite::instances::soft_delete_instance(tx, &id))
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::instances::soft_delete_instance(db, &id)).await
            }
        }
    }

    /// Removes the instance `id` (deleted or not) and everything it owns; false if there is
    /// none.
    pub async fn purge_instance(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let id = id.clone();
                    db.write(move |tx| sqlite::instances::purge_instance(tx, &id))
                })
                .await
            }
            Database::Postgres(db) => retry(|| postgres::instances::purge_instance(db, &id)).await,
        }
    }

    /// Sets the auth method (and password hash) of a live instance and revokes its login
    /// tokens, in one transaction; false if there is no such instance.
    pub async fn set_instance_auth(
        &self,
        instance_serial: i64,
        auth: &InstanceAuth,
    ) -> Result<bool, StoreError> {
        let auth = Arc::new(auth.clone());
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let auth = auth.clone();
                    db.write(move |tx| {
                        sqlite::instances::set_instance_auth(tx, instance_serial, &auth)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::instances::set_instance_auth(db, instance_serial, &auth)).await
            }
        }
    }

    /// Stores a login token.
    pub async fn insert_login_token(
        &self,
        new: NewLoginToken,
    ) -> Result<LoginTokenRow, StoreError> {
        let new = Arc::new(new);
        let serial = match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let new = new.clone();
                    db.write(move |tx| sqlite::instances::insert_login_token(tx, &new))
                })
                .await?
            }
            Database::Postgres(db) => {
                retry(|| postgres::instances::insert_login_token(db, &new)).await?
            }
        };
        Ok(LoginTokenRow {
            serial,
            scope: new.scope,
            refreshable: new.refreshable,
            description: new.description.clone(),
            created_at: new.created_at,
            expires_at: new.expires_at,
        })
    }

    /// The login token of an instance with this hash (expired or not: callers decide).
    pub async fn login_token(
        &self,
        instance_serial: i64,
        token_hash: &HashCode,
    ) -> Result<Option<LoginTokenRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::instances::login_token(conn, instance_serial, token_hash))
            }
            Database::Postgres(db) => {
                postgres::instances::login_token(db, instance_serial, token_hash).await
            }
        }
    }

    /// The unexpired login tokens of an instance, oldest first.
    pub async fn login_tokens(
        &self,
        instance_serial: i64,
        now: Timestamp,
    ) -> Result<Vec<LoginTokenRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::instances::login_tokens(conn, instance_serial, now))
            }
            Database::Postgres(db) => {
                postgres::instances::login_tokens(db, instance_serial, now).await
            }
        }
    }

    /// Revokes a login token, by serial or by hash; false if there was none.
    pub async fn delete_login_token(
        &self,
        instance_serial: i64,
        which: TokenRef,
    ) -> Result<bool, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let which = which.clone();
                    db.write(move |tx| {
                        sqlite::instances::delete_login_token(tx, instance_serial, &which)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::instances::delete_login_token(db, instance_serial, &which)).await
            }
        }
    }

    /// Adds an account (see [`AddAccount`]), deciding in one transaction.
    pub async fn add_account(
        &self,
        instance_serial: i64,
        account: AccountRow,
    ) -> Result<AddAccount, StoreError> {
        let account = Arc::new(account);
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let account = account.clone();
                    db.write(move |tx| {
                        sqlite::instances::add_account(tx, instance_serial, &account)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::instances::add_account(db, instance_serial, &account)).await
            }
        }
    }

    /// The account of an instance with this wire hash (active or not).
    pub async fn account(
        &self,
        instance_serial: i64,
        h_wire: &HashCode,
    ) -> Result<Option<AccountRow>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(|conn| sqlite::instances::account(conn, instance_serial, h_wire))
            }
            Database::Postgres(db) => {
                postgres::instances::account(db, instance_serial, h_wire).await
            }
        }
    }

    /// Changes an account: its credit facade (when given) and whether it is active; false if
    /// there is no such account.
    pub async fn update_account(
        &self,
        instance_serial: i64,
        h_wire: &HashCode,
        change: AccountChange,
    ) -> Result<bool, StoreError> {
        let h_wire = *h_wire;
        let change = Arc::new(change);
        match &self.db {
            Database::Sqlite(db) => {
                retry(|| {
                    let change = change.clone();
                    db.write(move |tx| {
                        sqlite::instances::update_account(tx, instance_serial, &h_wire, &change)
                    })
                })
                .await
            }
            Database::Postgres(db) => {
                retry(|| postgres::instances::update_account(db, instance_serial, &h_wire, &change))
                    .await
            }
        }
    }
}

/// Which login token to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRef {
    Serial(i64),
    Hash(HashCode),
}

/// A change of an account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// `Some(facade URL, credentials JSON)`: replace the credit facade.
    pub facade: Option<(Option<String>, Option<String>)>,
    /// `Some(false)`: deactivate.
    pub active: Option<bool>,
}
