//! Schema migrations for both engines, without a migration framework: a service lists its
//! migration files with `include_str!`, and the store applies the missing ones in order, each in
//! its own transaction, recording `(version, name, checksum)` in `_cardcash_migrations`.
//!
//! An applied migration whose text changed is refused (`StoreError::Config`): the schema on
//! disk would no longer be the one the code was written for. Several processes may start at
//! once: SQLite serialises them with `BEGIN IMMEDIATE`, PostgreSQL with a transaction-scoped
//! advisory lock.

use crate::error::StoreError;

/// One migration: a version (strictly increasing), a name for humans, and the SQL text
/// (several statements).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub const fn new(version: i64, name: &'static str, sql: &'static str) -> Self {
        Self { version, name, sql }
    }

    /// A stable checksum of the SQL text (FNV-1a 64; collisions do not matter, this only
    /// detects an edited file).
    pub fn checksum(&self) -> i64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.sql.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        i64::from_ne_bytes(hash.to_ne_bytes())
    }
}

/// A service's migrations for both engines, typically a `static`.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub sqlite: &'static [Migration],
    pub postgres: &'static [Migration],
}

/// A service's [`Schema`] from its `migrations/{sqlite,postgres}/` directories, one entry per
/// migration present for both engines: `schema![1 => "0001_init.sql", 2 => "0002_more.sql"]`.
/// The name recorded is the file name; the files are embedded at build time.
#[macro_export]
macro_rules! schema {
    ($($version:literal => $file:literal),+ $(,)?) => {
        $crate::Schema {
            sqlite: &[$($crate::Migration::new(
                $version,
                $file,
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/", $file)),
            )),+],
            postgres: &[$($crate::Migration::new(
                $version,
                $file,
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres/", $file)),
            )),+],
        }
    };
}

/// Checks that versions strictly increase (a programming error otherwise).
pub(crate) fn check_order(migrations: &[Migration]) -> Result<(), StoreError> {
    for pair in migrations.windows(2) {
        if pair[0].version >= pair[1].version {
            return Err(StoreError::Config(format!(
                "migration versions must increase: {} then {}",
                pair[0].version, pair[1].version
            )));
        }
    }
    Ok(())
}

/// What to do with one migration given the recorded checksum of its version.
pub(crate) fn decide(migration: &Migration, recorded: Option<i64>) -> Result<bool, StoreError> {
    match recorded {
        None => Ok(true),
        Some(sum) if sum == migration.checksum() => Ok(false),
        Some(_) => Err(StoreError::Config(format!(
            "migration {} ({}) was changed after it was applied to this database",
            migration.version, migration.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_checksums() {
        let a = Migration::new(1, "a", "CREATE TABLE a (x INTEGER);");
        let b = Migration::new(2, "b", "CREATE TABLE b (x INTEGER);");
        assert!(check_order(&[a, b]).is_ok());
        assert!(check_order(&[b, a]).is_err());
        assert!(check_order(&[a, a]).is_err());
        assert_ne!(a.checksum(), b.checksum());
        assert!(decide(&a, None).unwrap());
        assert!(!decide(&a, Some(a.checksum())).unwrap());
        assert!(decide(&a, Some(b.checksum())).is_err());
    }
}
