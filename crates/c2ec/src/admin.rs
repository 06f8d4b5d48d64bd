//! Operator functions behind `cardcash c2ec terminal add|list|deactivate` (the binary only
//! parses arguments and prints).

use cardcash_store::{Database, StoreError};
use cardcash_util::Currency;

use crate::db::C2ecStore;
use crate::db::terminal::TerminalRow;
use crate::error::C2ecError;
use crate::http::auth::{hash_secret, terminal_user};

/// Opens (and migrates) the C2EC database.
pub async fn open_db(url: &str) -> Result<Database, StoreError> {
    crate::db::connect(url).await
}

/// A newly registered terminal's credentials; the secret is shown once and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct NewTerminal {
    pub terminal_id: i64,
    /// The Basic user name (`T-<id>`).
    pub user: String,
    pub secret: String,
}

impl std::fmt::Debug for NewTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTerminal")
            .field("terminal_id", &self.terminal_id)
            .field("user", &self.user)
            .field("secret", &"…redacted…")
            .finish()
    }
}

fn store(db: &Database) -> C2ecStore {
    // Terminal rows carry no amounts; the currency is never used here.
    C2ecStore::new(
        db.clone(),
        Currency::new("XXX").unwrap_or_else(|_| unreachable!("XXX is a valid currency code")),
    )
}

/// Registers a terminal with a fresh 256-bit secret (base32); stores only its argon2id hash.
pub async fn add_terminal(db: &Database, name: &str) -> Result<NewTerminal, C2ecError> {
    let bytes = cardcash_crypto::random::random_bytes::<32>()
        .map_err(|e| C2ecError::Internal(e.to_string()))?;
    let secret = cardcash_util::base32::encode(&bytes);
    let hash = {
        let secret = secret.clone();
        tokio::task::spawn_blocking(move || hash_secret(&secret))
            .await
            .map_err(|e| C2ecError::Internal(e.to_string()))??
    };
    let id = store(db)
        .insert_terminal(name, &hash, crate::db::now())
        .await?;
    Ok(NewTerminal {
        terminal_id: id,
        user: terminal_user(id),
        secret,
    })
}

/// All terminals, oldest first.
pub async fn list_terminals(db: &Database) -> Result<Vec<TerminalRow>, C2ecError> {
    Ok(store(db).terminals().await?)
}

/// Deactivates a terminal (`T-<id>` or `<id>`); `false` if there is no such terminal. Running
/// C2EC processes stop accepting it at once (PostgreSQL: through the `terminal` notification;
/// SQLite: this process at once, another one within `http::auth::SQLITE_TTL`).
pub async fn deactivate_terminal(db: &Database, terminal: &str) -> Result<bool, C2ecError> {
    let id = crate::http::auth::parse_terminal_user(terminal)
        .ok_or_else(|| C2ecError::malformed("terminal id (expected T-<n>)"))?;
    Ok(store(db).deactivate_terminal(id).await?)
}

/// `cardcash c2ec provider check`: proves that `[c2ec-provider-cardproc]` works before going
/// live — the processor answers, serves our currency, and accepts our signed reads (a read of
/// a transaction that cannot exist must give 404, not 401/403). Returns a one-line summary.
pub async fn check_provider(config: &crate::C2ecConfig) -> Result<String, C2ecError> {
    let p = &config.provider;
    let client =
        cardcash_client::CardprocClient::new(p.base_url.as_str(), p.user_id, &p.secret, p.space_id)
            .map_err(|e| C2ecError::Internal(format!("provider configuration: {e}")))?;
    let info = client
        .config()
        .await
        .map_err(|e| C2ecError::Internal(format!("card processor unreachable: {e}")))?;
    if !info.currencies.contains(&config.currency) {
        return Err(C2ecError::Internal(format!(
            "card processor does not accept {}",
            config.currency
        )));
    }
    match client.read_transaction(i64::MAX as u64).await {
        Err(e) if e.is_not_found() => Ok(format!(
            "card processor {} ({}) accepts user {} in space {}",
            p.base_url, info.version, p.user_id, p.space_id
        )),
        Err(e) => Err(C2ecError::Internal(format!(
            "card processor refused our credentials: {e}"
        ))),
        Ok(_) => Err(C2ecError::Internal("unexpected transaction".into())),
    }
}
