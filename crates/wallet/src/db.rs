//! The wallet's storage: one SQLite file behind [`WalletStore`], all SQL of the crate. Rows come
//! out as domain types. Every state transition is one write transaction (the store's writer
//! thread), conditional on the state it leaves, so two workers of one wallet never both apply
//! an answer; an exchange's answer (a batch of signatures) is applied in one transaction too.

use std::path::Path;
use std::str::FromStr;

use cardcash_api::exchange::{ExchangeKeysResponse, UnblindedSignature};
use cardcash_crypto::EddsaPrivateKey;
use cardcash_store::columns::{amount_to_columns, sqlite_amount, sqlite_timestamp};
use cardcash_store::rusqlite::{self, OptionalExtension, params};
use cardcash_store::{Migration, SqliteDb, StoreError, query_all, query_opt};
use cardcash_util::{Amount, BaseUrl, Currency, EddsaPublicKey, HashCode, PaytoUri, Timestamp};

use crate::denom::{Denom, DenomKey};

static MIGRATIONS: &[Migration] = &[
    Migration::new(
        1,
        "0001_init.sql",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    Migration::new(
        2,
        "0002_refresh.sql",
        include_str!("../migrations/sqlite/0002_refresh.sql"),
    ),
    Migration::new(
        3,
        "0003_revoked.sql",
        include_str!("../migrations/sqlite/0003_revoked.sql"),
    ),
    Migration::new(
        4,
        "0004_recoup.sql",
        include_str!("../migrations/sqlite/0004_recoup.sql"),
    ),
    Migration::new(
        5,
        "0005_purchases.sql",
        include_str!("../migrations/sqlite/0005_purchases.sql"),
    ),
];

/// A state (or kind) column's enum: the variants with their text in the database, `as_str`
/// for writing it and `FromStr` for reading it back, where an unknown text is a corrupt row
/// (named by the literal after the enum's name).
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                Ok(match s {
                    $($text => Self::$variant,)+
                    other => {
                        return Err(StoreError::Corrupt(format!(concat!($what, " {:?}"), other)));
                    }
                })
            }
        }
    };
}

pub mod purchase;
pub use purchase::{PurchaseCoinRow, PurchaseRefundRow, PurchaseRow, PurchaseState};

text_enum! {
    /// Where a withdrawal group is (wallet-core's withdrawal transaction states, simplified).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum WithdrawalState ("withdrawal state") {
        /// Bank-integrated: the reserve is not yet registered with the withdrawal operation.
        PendingRegistration = "pending-registration",
        /// Bank-integrated: registered; waiting for the bank (the terminal) to confirm.
        WaitingConfirmation = "waiting-confirmation",
        /// Waiting for the exchange to show the reserve funded.
        WaitingFunds = "waiting-funds",
        /// The coins are fixed (planchets stored); withdrawing them.
        Withdrawing = "withdrawing",
        /// Every coin is in the wallet.
        Done = "done",
        /// The bank aborted the operation; nothing was withdrawn.
        Aborted = "aborted",
    }
}

impl WithdrawalState {
    /// Done or aborted: nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Aborted)
    }
}

text_enum! {
    /// How the reserve gets its money.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum WithdrawalKind ("withdrawal kind") {
        /// Through a bank's withdrawal operation (`taler://withdraw`).
        BankIntegrated = "bank-integrated",
        /// The user wires the money herself.
        Manual = "manual",
    }
}

text_enum! {
    /// What became of a coin.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CoinStatus ("coin status") {
        /// Spendable.
        Fresh = "fresh",
        /// Kept back (e.g. its denomination cannot be deposited any more).
        Dormant = "dormant",
        /// Spent completely.
        Spent = "spent",
    }
}

text_enum! {
    /// Where a refresh is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RefreshState ("refresh state") {
        /// The old coin is marked spent; the melt is (re)sent.
        Melting = "melting",
        /// The exchange chose the set to keep (`noreveal_index`); the reveal is (re)sent.
        Revealing = "revealing",
        /// The fresh coins are in the wallet.
        Done = "done",
    }
}

/// One refresh: an old coin melted into fresh coins.
#[derive(Debug, Clone)]
pub struct RefreshGroupRow {
    pub refresh_id: String,
    pub state: RefreshState,
    pub exchange: BaseUrl,
    pub old_coin_pub: EddsaPublicKey,
    pub rms: [u8; 32],
    /// What the melt takes from the old coin.
    pub amount: Amount,
    pub noreveal_index: Option<u32>,
    pub created: Timestamp,
    pub finished: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// An exchange the wallet knows, with its verified keys.
#[derive(Debug, Clone)]
pub struct ExchangeRow {
    pub base_url: BaseUrl,
    pub master_pub: EddsaPublicKey,
    pub currency: Currency,
    pub keys: ExchangeKeysResponse,
    pub keys_updated: Timestamp,
    pub tos_etag: Option<String>,
    pub tos_accepted_etag: Option<String>,
}

/// The bank's side of a bank-integrated withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankOperation {
    pub integration_base: BaseUrl,
    pub wopid: String,
}

/// One withdrawal: a reserve and the coins withdrawn from it.
#[derive(Debug, Clone)]
pub struct WithdrawalGroupRow {
    pub group_id: String,
    pub kind: WithdrawalKind,
    pub state: WithdrawalState,
    pub exchange: BaseUrl,
    pub currency: Currency,
    pub reserve_priv: EddsaPrivateKey,
    pub reserve_pub: EddsaPublicKey,
    pub seed: [u8; 32],
    /// What the user asked for (the amount the reserve receives).
    pub amount: Amount,
    pub bank: Option<BankOperation>,
    pub exchange_account: Option<PaytoUri>,
    pub created: Timestamp,
    pub finished: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// A planchet of a group: its index (the derivation input) and denomination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanchetRow {
    pub index: u32,
    pub h_denom_pub: HashCode,
    pub withdrawn: bool,
}

/// A coin in the wallet.
#[derive(Debug, Clone)]
pub struct CoinRow {
    pub coin_pub: EddsaPublicKey,
    pub coin_priv: EddsaPrivateKey,
    pub exchange: BaseUrl,
    pub h_denom_pub: HashCode,
    pub value: Amount,
    pub denom_sig: UnblindedSignature,
    pub status: CoinStatus,
    /// The transaction the coin comes from (`txn:withdrawal:…`, `txn:refresh:…`).
    pub origin: String,
    pub index: u32,
    pub created: Timestamp,
    /// The exchange's `R0, R1` of a withdrawn CS coin (what a recoup reveals).
    pub cs_r: Option<[[u8; 32]; 2]>,
    /// What is left of the coin at the exchange as far as the wallet knows: its value while
    /// fresh; after a payment the change, after a refund what it gave back (both refreshed).
    pub remaining: Amount,
}

/// The wallet's database.
#[derive(Clone)]
pub struct WalletStore {
    db: SqliteDb,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn text<T: FromStr>(row: &rusqlite::Row<'_>, idx: usize, what: &str) -> Result<T, StoreError> {
    let s: String = row.get(idx)?;
    s.parse().map_err(|_| corrupt(what))
}

fn opt_text<T: FromStr>(
    row: &rusqlite::Row<'_>,
    idx: usize,
    what: &str,
) -> Result<Option<T>, StoreError> {
    let s: Option<String> = row.get(idx)?;
    s.map(|s| s.parse().map_err(|_| corrupt(what))).transpose()
}

fn blob<const N: usize>(
    row: &rusqlite::Row<'_>,
    idx: usize,
    what: &str,
) -> Result<[u8; N], StoreError> {
    let b: Vec<u8> = row.get(idx)?;
    <[u8; N]>::try_from(b.as_slice()).map_err(|_| corrupt(what))
}

fn amount(row: &rusqlite::Row<'_>, idx: usize, currency: &Currency) -> Result<Amount, StoreError> {
    Ok(sqlite_amount(row, idx, *currency)?)
}

const EXCHANGE_COLUMNS: &str = "base_url, master_pub, currency, keys_json, keys_updated, \
                                tos_etag, tos_accepted_etag";

fn exchange_row(row: &rusqlite::Row<'_>) -> Result<ExchangeRow, StoreError> {
    let keys_json: String = row.get(3)?;
    Ok(ExchangeRow {
        base_url: text(row, 0, "exchange base URL")?,
        master_pub: EddsaPublicKey::from_bytes(blob(row, 1, "master public key")?),
        currency: text(row, 2, "currency")?,
        keys: serde_json::from_str(&keys_json).map_err(|e| corrupt(&format!("keys: {e}")))?,
        keys_updated: sqlite_timestamp(row, 4)?,
        tos_etag: row.get(5)?,
        tos_accepted_etag: row.get(6)?,
    })
}

const GROUP_COLUMNS: &str = "group_id, kind, state, exchange_base_url, currency, reserve_priv, \
    reserve_pub, seed, amount_val, amount_frac, bank_integration_base, wopid, exchange_account, \
    created, finished, last_error";

fn group_row(row: &rusqlite::Row<'_>) -> Result<WithdrawalGroupRow, StoreError> {
    let currency: Currency = text(row, 4, "currency")?;
    let bank_base: Option<BaseUrl> = opt_text(row, 10, "bank integration base URL")?;
    let wopid: Option<String> = row.get(11)?;
    let finished: Option<i64> = row.get(14)?;
    Ok(WithdrawalGroupRow {
        group_id: row.get(0)?,
        kind: text(row, 1, "withdrawal kind")?,
        state: text(row, 2, "withdrawal state")?,
        exchange: text(row, 3, "exchange base URL")?,
        reserve_priv: EddsaPrivateKey::from_bytes(&blob(row, 5, "reserve private key")?),
        reserve_pub: EddsaPublicKey::from_bytes(blob(row, 6, "reserve public key")?),
        seed: blob(row, 7, "withdrawal seed")?,
        amount: amount(row, 8, &currency)?,
        bank: match (bank_base, wopid) {
            (Some(integration_base), Some(wopid)) => Some(BankOperation {
                integration_base,
                wopid,
            }),
            _ => None,
        },
        exchange_account: opt_text(row, 12, "exchange account")?,
        created: sqlite_timestamp(row, 13)?,
        finished: finished
            .map(Timestamp::from_sql_micros)
            .transpose()
            .map_err(|_| corrupt("finished"))?,
        last_error: row.get(15)?,
        currency,
    })
}

const COIN_COLUMNS: &str = "coin_pub, coin_priv, exchange_base_url, h_denom_pub, currency, \
    value_val, value_frac, denom_sig, status, origin, coin_index, created, cs_r, remaining_val, \
    remaining_frac";

fn coin_row(row: &rusqlite::Row<'_>) -> Result<CoinRow, StoreError> {
    let currency: Currency = text(row, 4, "currency")?;
    let sig: String = row.get(7)?;
    Ok(CoinRow {
        coin_pub: EddsaPublicKey::from_bytes(blob(row, 0, "coin public key")?),
        coin_priv: EddsaPrivateKey::from_bytes(&blob(row, 1, "coin private key")?),
        exchange: text(row, 2, "exchange base URL")?,
        h_denom_pub: HashCode::from_bytes(blob(row, 3, "denomination hash")?),
        value: amount(row, 5, &currency)?,
        denom_sig: serde_json::from_str(&sig).map_err(|_| corrupt("denomination signature"))?,
        status: text(row, 8, "coin status")?,
        origin: row.get(9)?,
        index: row.get(10)?,
        created: sqlite_timestamp(row, 11)?,
        cs_r: {
            let r: Option<Vec<u8>> = row.get(12)?;
            match r {
                None => None,
                Some(b) if b.len() == 64 => {
                    let mut pair = [[0u8; 32]; 2];
                    pair[0].copy_from_slice(&b[..32]);
                    pair[1].copy_from_slice(&b[32..]);
                    Some(pair)
                }
                Some(_) => return Err(corrupt("CS R values")),
            }
        },
        remaining: amount(row, 13, &currency)?,
    })
}

const REFRESH_COLUMNS: &str = "refresh_id, state, exchange_base_url, old_coin_pub, rms, \
    currency, amount_val, amount_frac, noreveal_index, created, finished, last_error";

fn refresh_row(row: &rusqlite::Row<'_>) -> Result<RefreshGroupRow, StoreError> {
    let currency: Currency = text(row, 5, "currency")?;
    let finished: Option<i64> = row.get(10)?;
    Ok(RefreshGroupRow {
        refresh_id: row.get(0)?,
        state: text(row, 1, "refresh state")?,
        exchange: text(row, 2, "exchange base URL")?,
        old_coin_pub: EddsaPublicKey::from_bytes(blob(row, 3, "old coin")?),
        rms: blob(row, 4, "refresh master secret")?,
        amount: amount(row, 6, &currency)?,
        noreveal_index: row.get(8)?,
        created: sqlite_timestamp(row, 9)?,
        finished: finished
            .map(Timestamp::from_sql_micros)
            .transpose()
            .map_err(|_| corrupt("finished"))?,
        last_error: row.get(11)?,
    })
}

fn insert_coins(tx: &rusqlite::Connection, coins: &[CoinRow]) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO coins ({COIN_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT DO NOTHING"
    ))?;
    for c in coins {
        let (v, f) = amount_to_columns(&c.value);
        let (rv, rf) = amount_to_columns(&c.remaining);
        let sig =
            serde_json::to_string(&c.denom_sig).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        insert.execute(params![
            c.coin_pub.to_vec(),
            c.coin_priv.to_bytes().to_vec(),
            c.exchange.to_string(),
            c.h_denom_pub.to_vec(),
            c.value.currency().to_string(),
            v,
            f,
            sig,
            c.status.as_str(),
            c.origin,
            c.index,
            c.created.to_sql_micros(),
            c.cs_r.map(|[r0, r1]| [r0, r1].concat()),
            rv,
            rf,
        ])?;
    }
    Ok(())
}

fn denom_row(row: &rusqlite::Row<'_>) -> Result<Denom, StoreError> {
    let currency: Currency = text(row, 0, "currency")?;
    let cipher: String = row.get(2)?;
    let key: Vec<u8> = row.get(3)?;
    Ok(Denom {
        h_denom_pub: HashCode::from_bytes(blob(row, 1, "denomination hash")?),
        key: DenomKey::from_parts(&cipher, &key).ok_or_else(|| corrupt("denomination key"))?,
        value: amount(row, 4, &currency)?,
        fee_withdraw: amount(row, 6, &currency)?,
        fee_deposit: amount(row, 8, &currency)?,
        fee_refresh: amount(row, 10, &currency)?,
        fee_refund: amount(row, 12, &currency)?,
        stamp_start: sqlite_timestamp(row, 14)?,
        stamp_expire_withdraw: sqlite_timestamp(row, 15)?,
        stamp_expire_deposit: sqlite_timestamp(row, 16)?,
    })
}

fn insert_planchets(
    tx: &rusqlite::Connection,
    group_id: &str,
    planchets: &[PlanchetRow],
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO planchets (group_id, coin_index, h_denom_pub, withdrawn)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for p in planchets {
        stmt.execute(params![
            group_id,
            p.index,
            p.h_denom_pub.to_vec(),
            p.withdrawn
        ])?;
    }
    Ok(())
}

impl WalletStore {
    /// Opens (creating and migrating) the wallet database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            db: SqliteDb::open(path, MIGRATIONS)?,
        })
    }

    /// Stops accepting writes (queued ones still commit).
    pub fn close(&self) {
        self.db.close();
    }

    /// Runs one statement in a write transaction of its own and returns how many rows it
    /// changed: every state change and error note that is a single statement goes through
    /// here, so a conditional transition reads as its SQL and `== 1`.
    pub(crate) async fn write_one<P>(
        &self,
        sql: &'static str,
        params: P,
    ) -> Result<usize, StoreError>
    where
        P: rusqlite::Params + Send + 'static,
    {
        self.db.write(move |tx| Ok(tx.execute(sql, params)?)).await
    }

    /// Adds or updates an exchange with its verified keys and denominations, in one
    /// transaction. The accepted terms version is kept.
    pub async fn put_exchange(
        &self,
        base_url: &BaseUrl,
        keys: &ExchangeKeysResponse,
        denoms: Vec<Denom>,
        tos_etag: Option<String>,
    ) -> Result<(), StoreError> {
        let url = base_url.to_string();
        let master = keys.master_public_key.to_vec();
        let currency = keys.currency.to_string();
        let json = serde_json::to_string(keys).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = Timestamp::now().to_sql_micros();
        let revoked: Vec<HashCode> = keys.recoup.iter().map(|r| r.h_denom_pub).collect();
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO exchanges (base_url, master_pub, currency, keys_json, keys_updated, tos_etag)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (base_url) DO UPDATE SET master_pub = ?2, currency = ?3,
                       keys_json = ?4, keys_updated = ?5, tos_etag = ?6",
                    params![url, master, currency, json, now, tos_etag],
                )?;
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO denominations (exchange_base_url, h_denom_pub, cipher, denom_pub,
                       value_val, value_frac, fee_withdraw_val, fee_withdraw_frac,
                       fee_deposit_val, fee_deposit_frac, fee_refresh_val, fee_refresh_frac,
                       fee_refund_val, fee_refund_frac, stamp_start, stamp_expire_withdraw,
                       stamp_expire_deposit)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                     ON CONFLICT (exchange_base_url, h_denom_pub) DO NOTHING",
                )?;
                for d in &denoms {
                    let (v, vf) = amount_to_columns(&d.value);
                    let (w, wf) = amount_to_columns(&d.fee_withdraw);
                    let (dp, dpf) = amount_to_columns(&d.fee_deposit);
                    let (r, rf) = amount_to_columns(&d.fee_refresh);
                    let (rd, rdf) = amount_to_columns(&d.fee_refund);
                    stmt.execute(params![
                        url,
                        d.h_denom_pub.to_vec(),
                        d.key.cipher(),
                        d.key.to_bytes(),
                        v,
                        vf,
                        w,
                        wf,
                        dp,
                        dpf,
                        r,
                        rf,
                        rd,
                        rdf,
                        d.stamp_start.to_sql_micros(),
                        d.stamp_expire_withdraw.to_sql_micros(),
                        d.stamp_expire_deposit.to_sql_micros(),
                    ])?;
                }
                let mut revoke = tx.prepare_cached(
                    "UPDATE denominations SET revoked = TRUE
                     WHERE exchange_base_url = ?1 AND h_denom_pub = ?2",
                )?;
                for h in &revoked {
                    revoke.execute(params![url, h.to_vec()])?;
                }
                Ok(())
            })
            .await
    }

    /// The denominations of an exchange it revoked.
    pub fn revoked_denominations(&self, base_url: &BaseUrl) -> Result<Vec<HashCode>, StoreError> {
        let url = base_url.to_string();
        self.db.read(|c| {
            query_all(
                c,
                "SELECT h_denom_pub FROM denominations WHERE exchange_base_url = ?1 AND revoked",
                [url],
                |r| Ok(HashCode::from_bytes(blob(r, 0, "denomination hash")?)),
            )
        })
    }

    /// Records the terms version the user accepted. `false` for an unknown exchange.
    pub async fn accept_tos(&self, base_url: &BaseUrl, etag: String) -> Result<bool, StoreError> {
        let sql = "UPDATE exchanges SET tos_accepted_etag = ?2 WHERE base_url = ?1";
        Ok(self.write_one(sql, (base_url.to_string(), etag)).await? == 1)
    }

    /// One exchange.
    pub fn exchange(&self, base_url: &BaseUrl) -> Result<Option<ExchangeRow>, StoreError> {
        let url = base_url.to_string();
        self.db.read(|c| {
            query_opt(
                c,
                &format!("SELECT {EXCHANGE_COLUMNS} FROM exchanges WHERE base_url = ?1"),
                [url],
                exchange_row,
            )
        })
    }

    /// Every exchange, by URL.
    pub fn exchanges(&self) -> Result<Vec<ExchangeRow>, StoreError> {
        self.db.read(|c| {
            query_all(
                c,
                &format!("SELECT {EXCHANGE_COLUMNS} FROM exchanges ORDER BY base_url"),
                [],
                exchange_row,
            )
        })
    }

    /// Every denomination of an exchange.
    pub fn denominations(&self, base_url: &BaseUrl) -> Result<Vec<Denom>, StoreError> {
        let url = base_url.to_string();
        self.db.read(|c| {
            query_all(
                c,
                "SELECT e.currency, h_denom_pub, cipher, denom_pub, value_val, value_frac,
                   fee_withdraw_val, fee_withdraw_frac, fee_deposit_val, fee_deposit_frac,
                   fee_refresh_val, fee_refresh_frac, fee_refund_val, fee_refund_frac,
                   stamp_start, stamp_expire_withdraw, stamp_expire_deposit
                 FROM denominations d JOIN exchanges e ON e.base_url = d.exchange_base_url
                 WHERE exchange_base_url = ?1",
                [url],
                denom_row,
            )
        })
    }

    /// Creates a withdrawal group with its planchets (empty until the coins are fixed).
    pub async fn create_withdrawal(
        &self,
        group: WithdrawalGroupRow,
        planchets: Vec<PlanchetRow>,
    ) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                let (v, f) = amount_to_columns(&group.amount);
                tx.execute(
                    &format!(
                        "INSERT INTO withdrawal_groups ({GROUP_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL, NULL)"
                    ),
                    params![
                        group.group_id,
                        group.kind.as_str(),
                        group.state.as_str(),
                        group.exchange.to_string(),
                        group.currency.to_string(),
                        group.reserve_priv.to_bytes().to_vec(),
                        group.reserve_pub.to_vec(),
                        group.seed.to_vec(),
                        v,
                        f,
                        group.bank.as_ref().map(|b| b.integration_base.to_string()),
                        group.bank.as_ref().map(|b| b.wopid.clone()),
                        group.exchange_account.as_ref().map(|p| p.to_string()),
                        group.created.to_sql_micros(),
                    ],
                )?;
                insert_planchets(tx, &group.group_id, &planchets)
            })
            .await
    }

    /// Moves a group from `from` to `to` (setting the exchange account when given, clearing the
    /// last error). `false` when the group was not in `from` (someone else moved it).
    pub async fn transition(
        &self,
        group_id: &str,
        from: WithdrawalState,
        to: WithdrawalState,
        exchange_account: Option<PaytoUri>,
    ) -> Result<bool, StoreError> {
        let finished = to.is_final().then(|| Timestamp::now().to_sql_micros());
        let sql = "UPDATE withdrawal_groups SET state = ?3, last_error = NULL,
                     exchange_account = COALESCE(?4, exchange_account),
                     finished = COALESCE(?5, finished)
                   WHERE group_id = ?1 AND state = ?2";
        let params = (
            group_id.to_owned(),
            from.as_str(),
            to.as_str(),
            exchange_account.map(|p| p.to_string()),
            finished,
        );
        Ok(self.write_one(sql, params).await? == 1)
    }

    /// Waiting for funds → withdrawing with the coins fixed: the planchets replace any earlier
    /// plan not yet withdrawn (their indices continue after the withdrawn ones), in one
    /// transaction. `false` when the group was not waiting for funds.
    pub async fn start_withdrawing(
        &self,
        group_id: &str,
        planchets: Vec<PlanchetRow>,
    ) -> Result<bool, StoreError> {
        let id = group_id.to_owned();
        self.db
            .write(move |tx| {
                let moved = tx.execute(
                    "UPDATE withdrawal_groups SET state = 'withdrawing', last_error = NULL
                     WHERE group_id = ?1 AND state = 'waiting-funds'",
                    [&id],
                )?;
                if moved == 0 {
                    return Ok(false);
                }
                // A reserve withdrawn from before (then refilled by a recoup) keeps its
                // withdrawn planchets; the new ones continue after them, so no coin secret is
                // derived twice.
                tx.execute(
                    "DELETE FROM planchets WHERE group_id = ?1 AND NOT withdrawn",
                    [&id],
                )?;
                let next: u32 = tx.query_row(
                    "SELECT COALESCE(MAX(coin_index) + 1, 0) FROM planchets WHERE group_id = ?1",
                    [&id],
                    |r| r.get(0),
                )?;
                let shifted: Vec<PlanchetRow> = planchets
                    .into_iter()
                    .map(|p| PlanchetRow {
                        index: p.index + next,
                        ..p
                    })
                    .collect();
                insert_planchets(tx, &id, &shifted)?;
                Ok(true)
            })
            .await
    }

    /// Applies the exchange's answer to a batch: stores the coins, marks their planchets
    /// withdrawn, and when none is left moves the group to done — one transaction. A coin
    /// already stored (a replayed answer) is not stored twice. Returns whether the group is
    /// done.
    pub async fn apply_withdrawn(
        &self,
        group_id: &str,
        coins: Vec<CoinRow>,
    ) -> Result<bool, StoreError> {
        let id = group_id.to_owned();
        self.db
            .write(move |tx| {
                let state: Option<String> = tx
                    .query_row(
                        "SELECT state FROM withdrawal_groups WHERE group_id = ?1",
                        [&id],
                        |r| r.get(0),
                    )
                    .optional()?;
                // A second answer to the same batch (two workers) finds the group done.
                if state.as_deref() == Some("done") {
                    return Ok(true);
                }
                if state.as_deref() != Some("withdrawing") {
                    return Err(StoreError::Corrupt(format!(
                        "withdrawal {id} is {state:?}, not withdrawing"
                    )));
                }
                insert_coins(tx, &coins)?;
                let mut mark = tx.prepare_cached(
                    "UPDATE planchets SET withdrawn = TRUE WHERE group_id = ?1 AND coin_index = ?2",
                )?;
                for c in &coins {
                    mark.execute(params![id, c.index])?;
                }
                let left: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM planchets WHERE group_id = ?1 AND NOT withdrawn",
                    [&id],
                    |r| r.get(0),
                )?;
                if left == 0 {
                    tx.execute(
                        "UPDATE withdrawal_groups SET state = 'done', last_error = NULL,
                           finished = ?2 WHERE group_id = ?1",
                        params![id, Timestamp::now().to_sql_micros()],
                    )?;
                }
                Ok(left == 0)
            })
            .await
    }

    /// Remembers why the last attempt of a group failed (shown in the transaction list).
    pub async fn record_error(&self, group_id: &str, error: String) -> Result<(), StoreError> {
        let sql = "UPDATE withdrawal_groups SET last_error = ?2 WHERE group_id = ?1";
        self.write_one(sql, (group_id.to_owned(), error)).await?;
        Ok(())
    }

    /// One group.
    pub fn withdrawal(&self, group_id: &str) -> Result<Option<WithdrawalGroupRow>, StoreError> {
        self.db.read(|c| {
            query_opt(
                c,
                &format!("SELECT {GROUP_COLUMNS} FROM withdrawal_groups WHERE group_id = ?1"),
                [group_id],
                group_row,
            )
        })
    }

    /// The group of a bank's withdrawal operation, if the wallet has one.
    pub fn withdrawal_by_wopid(
        &self,
        integration_base: &BaseUrl,
        wopid: &str,
    ) -> Result<Option<WithdrawalGroupRow>, StoreError> {
        let base = integration_base.to_string();
        self.db.read(|c| {
            query_opt(
                c,
                &format!(
                    "SELECT {GROUP_COLUMNS} FROM withdrawal_groups
                     WHERE bank_integration_base = ?1 AND wopid = ?2"
                ),
                params![base, wopid],
                group_row,
            )
        })
    }

    /// Every group, oldest first.
    pub fn withdrawals(&self) -> Result<Vec<WithdrawalGroupRow>, StoreError> {
        self.db.read(|c| {
            query_all(
                c,
                &format!(
                    "SELECT {GROUP_COLUMNS} FROM withdrawal_groups ORDER BY created, group_id"
                ),
                [],
                group_row,
            )
        })
    }

    /// The planchets of a group, by index.
    pub fn planchets(&self, group_id: &str) -> Result<Vec<PlanchetRow>, StoreError> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT coin_index, h_denom_pub, withdrawn FROM planchets
                 WHERE group_id = ?1 ORDER BY coin_index",
                [group_id],
                |r| {
                    Ok(PlanchetRow {
                        index: r.get(0)?,
                        h_denom_pub: HashCode::from_bytes(blob(r, 1, "denomination hash")?),
                        withdrawn: r.get(2)?,
                    })
                },
            )
        })
    }

    /// Every coin, oldest first.
    pub fn coins(&self) -> Result<Vec<CoinRow>, StoreError> {
        self.db.read(|c| {
            query_all(
                c,
                &format!("SELECT {COIN_COLUMNS} FROM coins ORDER BY created, origin, coin_index"),
                [],
                coin_row,
            )
        })
    }

    /// One coin.
    pub fn coin(&self, coin_pub: &EddsaPublicKey) -> Result<Option<CoinRow>, StoreError> {
        let key = coin_pub.to_vec();
        self.db.read(|c| {
            query_opt(
                c,
                &format!("SELECT {COIN_COLUMNS} FROM coins WHERE coin_pub = ?1"),
                [key],
                coin_row,
            )
        })
    }

    /// Creates a refresh of what is left of a coin (`remaining`, as the caller read it) and
    /// marks the coin spent with nothing left, in one transaction (the coin is marked before
    /// any request leaves). `false` when the coin changed since (spent or refreshed by
    /// another worker, or set aside).
    pub async fn create_refresh(
        &self,
        group: RefreshGroupRow,
        fresh: Vec<HashCode>,
        remaining: Amount,
    ) -> Result<bool, StoreError> {
        self.db
            .write(move |tx| {
                let (rv, rf) = amount_to_columns(&remaining);
                let marked = tx.execute(
                    "UPDATE coins SET status = 'spent', remaining_val = 0, remaining_frac = 0
                     WHERE coin_pub = ?1 AND status IN ('fresh', 'spent')
                       AND remaining_val = ?2 AND remaining_frac = ?3
                       AND (remaining_val > 0 OR remaining_frac > 0)",
                    params![group.old_coin_pub.to_vec(), rv, rf],
                )?;
                if marked == 0 {
                    return Ok(false);
                }
                let (v, f) = amount_to_columns(&group.amount);
                tx.execute(
                    &format!(
                        "INSERT INTO refresh_groups ({REFRESH_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9, NULL, NULL)"
                    ),
                    params![
                        group.refresh_id,
                        group.state.as_str(),
                        group.exchange.to_string(),
                        group.old_coin_pub.to_vec(),
                        group.rms.to_vec(),
                        group.amount.currency().to_string(),
                        v,
                        f,
                        group.created.to_sql_micros(),
                    ],
                )?;
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO refresh_planchets (refresh_id, coin_index, h_denom_pub)
                     VALUES (?1, ?2, ?3)",
                )?;
                for (j, h) in (0u32..).zip(&fresh) {
                    stmt.execute(params![group.refresh_id, j, h.to_vec()])?;
                }
                Ok(true)
            })
            .await
    }

    /// Melting → revealing with the exchange's choice. `false` when it was not melting.
    pub async fn melted(&self, refresh_id: &str, noreveal_index: u32) -> Result<bool, StoreError> {
        let sql = "UPDATE refresh_groups SET state = 'revealing', noreveal_index = ?2,
                     last_error = NULL
                   WHERE refresh_id = ?1 AND state = 'melting'";
        Ok(self
            .write_one(sql, (refresh_id.to_owned(), noreveal_index))
            .await?
            == 1)
    }

    /// Stores the fresh coins and finishes the refresh, in one transaction (a replayed answer
    /// finds it done and stores nothing twice).
    pub async fn apply_revealed(
        &self,
        refresh_id: &str,
        coins: Vec<CoinRow>,
    ) -> Result<(), StoreError> {
        let id = refresh_id.to_owned();
        self.db
            .write(move |tx| {
                let moved = tx.execute(
                    "UPDATE refresh_groups SET state = 'done', last_error = NULL, finished = ?2
                     WHERE refresh_id = ?1 AND state = 'revealing'",
                    params![id, Timestamp::now().to_sql_micros()],
                )?;
                if moved == 1 {
                    insert_coins(tx, &coins)?;
                }
                Ok(())
            })
            .await
    }

    /// Remembers why the last attempt of a refresh failed.
    pub async fn record_refresh_error(
        &self,
        refresh_id: &str,
        error: String,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE refresh_groups SET last_error = ?2 WHERE refresh_id = ?1";
        self.write_one(sql, (refresh_id.to_owned(), error)).await?;
        Ok(())
    }

    /// One refresh.
    pub fn refresh(&self, refresh_id: &str) -> Result<Option<RefreshGroupRow>, StoreError> {
        self.db.read(|c| {
            query_opt(
                c,
                &format!("SELECT {REFRESH_COLUMNS} FROM refresh_groups WHERE refresh_id = ?1"),
                [refresh_id],
                refresh_row,
            )
        })
    }

    /// Every refresh, oldest first.
    pub fn refreshes(&self) -> Result<Vec<RefreshGroupRow>, StoreError> {
        self.db.read(|c| {
            query_all(
                c,
                &format!(
                    "SELECT {REFRESH_COLUMNS} FROM refresh_groups ORDER BY created, refresh_id"
                ),
                [],
                refresh_row,
            )
        })
    }

    /// Sets a fresh coin aside for a recoup (dormant) and records the recoup, in one
    /// transaction, before the request leaves. `false` when the coin is not fresh.
    pub async fn start_recoup(
        &self,
        coin_pub: &EddsaPublicKey,
        group_id: &str,
    ) -> Result<bool, StoreError> {
        let (coin, group) = (coin_pub.to_vec(), group_id.to_owned());
        self.db
            .write(move |tx| {
                let set_aside = tx.execute(
                    "UPDATE coins SET status = 'dormant' WHERE coin_pub = ?1 AND status = 'fresh'",
                    [&coin],
                )?;
                if set_aside == 0 {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO recoups (coin_pub, group_id, state, created)
                     VALUES (?1, ?2, 'pending', ?3)",
                    params![coin, group, Timestamp::now().to_sql_micros()],
                )?;
                Ok(true)
            })
            .await
    }

    /// Recoups not yet answered: `(coin, withdrawal group)`.
    pub fn pending_recoups(&self) -> Result<Vec<(EddsaPublicKey, String)>, StoreError> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT coin_pub, group_id FROM recoups WHERE state = 'pending' ORDER BY created",
                [],
                |r| {
                    Ok((
                        EddsaPublicKey::from_bytes(blob(r, 0, "coin public key")?),
                        r.get(1)?,
                    ))
                },
            )
        })
    }

    /// The exchange credited the coin's value to its reserve: the recoup is done, the coin
    /// spent, and the withdrawal waits for funds again to withdraw it anew — one transaction.
    pub async fn finish_recoup(
        &self,
        coin_pub: &EddsaPublicKey,
        group_id: &str,
    ) -> Result<(), StoreError> {
        let (coin, group) = (coin_pub.to_vec(), group_id.to_owned());
        self.db
            .write(move |tx| {
                let done = tx.execute(
                    "UPDATE recoups SET state = 'done', finished = ?2, last_error = NULL
                     WHERE coin_pub = ?1 AND state = 'pending'",
                    params![coin, Timestamp::now().to_sql_micros()],
                )?;
                if done == 1 {
                    tx.execute(
                        "UPDATE coins SET status = 'spent', remaining_val = 0, remaining_frac = 0
                         WHERE coin_pub = ?1",
                        [&coin],
                    )?;
                    tx.execute(
                        "UPDATE withdrawal_groups SET state = 'waiting-funds', finished = NULL
                         WHERE group_id = ?1 AND state = 'done'",
                        [&group],
                    )?;
                }
                Ok(())
            })
            .await
    }

    /// What the recouped coins of a withdrawal were worth.
    pub fn recouped_value(
        &self,
        group_id: &str,
        currency: &Currency,
    ) -> Result<Amount, StoreError> {
        let currency = *currency;
        self.db.read(|c| {
            let values = query_all(
                c,
                "SELECT c.value_val, c.value_frac FROM recoups r JOIN coins c USING (coin_pub)
                 WHERE r.group_id = ?1 AND r.state = 'done'",
                [group_id],
                |r| amount(r, 0, &currency),
            )?;
            values
                .iter()
                .try_fold(Amount::zero(&currency), |acc, v| acc.checked_add(v))
                .map_err(|e| StoreError::Corrupt(format!("recouped value: {e}")))
        })
    }

    /// Remembers why a recoup failed.
    pub async fn record_recoup_error(
        &self,
        coin_pub: &EddsaPublicKey,
        error: String,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE recoups SET last_error = ?2 WHERE coin_pub = ?1";
        self.write_one(sql, (coin_pub.to_vec(), error)).await?;
        Ok(())
    }

    /// The fresh coins' denominations of a refresh, by index.
    pub fn refresh_planchets(&self, refresh_id: &str) -> Result<Vec<HashCode>, StoreError> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT h_denom_pub FROM refresh_planchets WHERE refresh_id = ?1 ORDER BY coin_index",
                [refresh_id],
                |r| Ok(HashCode::from_bytes(blob(r, 0, "denomination hash")?)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcash_util::Base32Bytes;

    /// The JSON of a denomination signature (the tests' coins are never checked).
    fn denom_sig_json() -> String {
        serde_json::to_string(&UnblindedSignature::Rsa {
            rsa_signature: Base32Bytes::from_bytes(vec![1, 2, 3]),
        })
        .unwrap()
    }

    /// The exchange `http://ex.example/` (CHF) in any schema.
    fn insert_exchange(tx: &rusqlite::Connection) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO exchanges (base_url, master_pub, currency, keys_json, keys_updated)
             VALUES ('http://ex.example/', ?1, 'CHF', '{}', 0)",
            [vec![7u8; 32]],
        )?;
        Ok(())
    }

    /// Two CHF 5 coins of withdrawal G1 at that exchange: key 3 fresh, key 4 spent (index =
    /// key). `columns` and `values` add columns the schema at hand has.
    fn insert_coins_fresh_and_spent(
        tx: &rusqlite::Connection,
        sig: &str,
        columns: &str,
        values: &str,
    ) -> Result<(), StoreError> {
        for (key, status) in [(3u8, "fresh"), (4, "spent")] {
            tx.execute(
                &format!(
                    "INSERT INTO coins (coin_pub, coin_priv, exchange_base_url, h_denom_pub,
                       currency, value_val, value_frac, denom_sig, status, origin,
                       coin_index, created{columns})
                     VALUES (?1, ?2, 'http://ex.example/', ?3, 'CHF', 5, 0, ?4, ?5,
                       'txn:withdrawal:G1', ?6, 0{values})"
                ),
                params![
                    vec![key; 32],
                    vec![9u8; 32],
                    vec![5u8; 64],
                    sig,
                    status,
                    key
                ],
            )?;
        }
        Ok(())
    }

    /// Every state's text reads back as that state; an unknown text is a corrupt row that
    /// names the column.
    #[test]
    fn state_texts_read_back() {
        use WithdrawalState as W;
        for w in [
            W::PendingRegistration,
            W::WaitingConfirmation,
            W::WaitingFunds,
            W::Withdrawing,
            W::Done,
            W::Aborted,
        ] {
            assert_eq!(w.as_str().parse::<W>().unwrap(), w);
        }
        for k in [WithdrawalKind::BankIntegrated, WithdrawalKind::Manual] {
            assert_eq!(k.as_str().parse::<WithdrawalKind>().unwrap(), k);
        }
        for c in [CoinStatus::Fresh, CoinStatus::Dormant, CoinStatus::Spent] {
            assert_eq!(c.as_str().parse::<CoinStatus>().unwrap(), c);
        }
        for r in [
            RefreshState::Melting,
            RefreshState::Revealing,
            RefreshState::Done,
        ] {
            assert_eq!(r.as_str().parse::<RefreshState>().unwrap(), r);
        }
        use PurchaseState as P;
        for p in [
            P::Claiming,
            P::Proposed,
            P::Paying,
            P::Done,
            P::Repurchase,
            P::Aborted,
        ] {
            assert_eq!(p.as_str().parse::<P>().unwrap(), p);
        }
        assert_eq!(W::WaitingFunds.as_str(), "waiting-funds");
        assert_eq!(P::Repurchase.as_str(), "repurchase");
        let Err(StoreError::Corrupt(why)) = "nonsense".parse::<CoinStatus>() else {
            panic!("an unknown coin status parsed");
        };
        assert_eq!(why, r#"coin status "nonsense""#);
    }

    /// A wallet of the first schema with one withdrawn coin keeps it through migration 2,
    /// with its withdrawal as origin.
    #[tokio::test]
    async fn migration_2_keeps_the_coins_of_withdrawals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sqlite3");
        let sig = denom_sig_json();
        {
            let db = SqliteDb::open(&path, &MIGRATIONS[..1]).unwrap();
            db.write(move |tx| {
                insert_exchange(tx)?;
                tx.execute(
                    "INSERT INTO withdrawal_groups (group_id, kind, state, exchange_base_url,
                       currency, reserve_priv, reserve_pub, seed, amount_val, amount_frac, created)
                     VALUES ('G1', 'manual', 'done', 'http://ex.example/', 'CHF', ?1, ?2, ?1, 5, 0, 0)",
                    params![vec![1u8; 32], vec![2u8; 32]],
                )?;
                tx.execute(
                    "INSERT INTO coins (coin_pub, coin_priv, exchange_base_url, h_denom_pub,
                       currency, value_val, value_frac, denom_sig, status, group_id, coin_index,
                       created)
                     VALUES (?1, ?2, 'http://ex.example/', ?3, 'CHF', 5, 0, ?4, 'fresh', 'G1', 0, 0)",
                    params![vec![3u8; 32], vec![4u8; 32], vec![5u8; 64], sig],
                )?;
                Ok(())
            })
            .await
            .unwrap();
            db.close();
        }
        let store = WalletStore::open(&path).unwrap();
        let coins = store.coins().unwrap();
        assert_eq!(coins.len(), 1);
        assert_eq!(coins[0].origin, "txn:withdrawal:G1");
        assert_eq!(coins[0].value, "CHF:5".parse().unwrap());
        assert_eq!(coins[0].status, CoinStatus::Fresh);
        assert!(store.refreshes().unwrap().is_empty());
    }

    /// Migration 5 keeps a wallet's refreshes (the table is rebuilt without the one-refresh-
    /// per-coin constraint) and gives fresh coins their whole value as remainder, spent ones
    /// none; a coin can then be refreshed a second time.
    #[tokio::test]
    async fn migration_5_keeps_refreshes_and_sets_what_is_left_of_coins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.sqlite3");
        let sig = denom_sig_json();
        {
            let db = SqliteDb::open(&path, &MIGRATIONS[..4]).unwrap();
            db.write(move |tx| {
                insert_exchange(tx)?;
                // Migration 4's coins have no remainder columns yet.
                insert_coins_fresh_and_spent(tx, &sig, "", "")?;
                tx.execute(
                    "INSERT INTO refresh_groups (refresh_id, state, exchange_base_url,
                       old_coin_pub, rms, currency, amount_val, amount_frac, created)
                     VALUES ('R1', 'done', 'http://ex.example/', ?1, ?2, 'CHF', 5, 0, 0)",
                    params![vec![4u8; 32], vec![1u8; 32]],
                )?;
                tx.execute(
                    "INSERT INTO refresh_planchets (refresh_id, coin_index, h_denom_pub)
                     VALUES ('R1', 0, ?1)",
                    [vec![6u8; 64]],
                )?;
                Ok(())
            })
            .await
            .unwrap();
            db.close();
        }
        let store = WalletStore::open(&path).unwrap();
        let coins = store.coins().unwrap();
        let left: Vec<(CoinStatus, Amount)> =
            coins.iter().map(|c| (c.status, c.remaining)).collect();
        assert_eq!(
            left,
            [
                (CoinStatus::Fresh, "CHF:5".parse().unwrap()),
                (CoinStatus::Spent, "CHF:0".parse().unwrap())
            ]
        );
        let r = store.refresh("R1").unwrap().unwrap();
        assert_eq!(r.old_coin_pub, EddsaPublicKey::from_bytes([4; 32]));
        assert_eq!(store.refresh_planchets("R1").unwrap().len(), 1);
        // The spent coin got something back (a refund): a second refresh of it is allowed.
        let second = RefreshGroupRow {
            refresh_id: "R2".into(),
            state: RefreshState::Melting,
            exchange: "http://ex.example/".parse().unwrap(),
            old_coin_pub: EddsaPublicKey::from_bytes([4; 32]),
            rms: [2; 32],
            amount: "CHF:1".parse().unwrap(),
            noreveal_index: None,
            created: Timestamp::now(),
            finished: None,
            last_error: None,
        };
        let nothing_left = store
            .create_refresh(second.clone(), vec![], "CHF:0".parse().unwrap())
            .await
            .unwrap();
        assert!(!nothing_left, "a coin with nothing left is not refreshed");
        store
            .db
            .write(|tx| {
                tx.execute(
                    "UPDATE coins SET remaining_val = 1 WHERE coin_pub = ?1",
                    [vec![4u8; 32]],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        assert!(
            store
                .create_refresh(second, vec![], "CHF:1".parse().unwrap())
                .await
                .unwrap()
        );
        assert_eq!(store.refreshes().unwrap().len(), 2);
        assert!(
            store
                .coin(&EddsaPublicKey::from_bytes([4; 32]))
                .unwrap()
                .unwrap()
                .remaining
                .is_zero()
        );
    }

    /// Marking a payment's coins is all or nothing: when one coin is no longer fresh, no coin
    /// is marked, nothing of the payment is stored, and the purchase stays proposed.
    #[tokio::test]
    async fn a_payment_marks_all_its_coins_or_none() {
        use crate::db::purchase::ClaimedContract;
        let dir = tempfile::tempdir().unwrap();
        let store = WalletStore::open(&dir.path().join("wallet.sqlite3")).unwrap();
        let sig = denom_sig_json();
        store
            .db
            .write(move |tx| {
                insert_exchange(tx)?;
                insert_coins_fresh_and_spent(
                    tx,
                    &sig,
                    ", remaining_val, remaining_frac",
                    ", 5, 0",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let p = store
            .create_purchase(PurchaseRow {
                proposal_id: "P1".into(),
                merchant_base_url: "http://shop.example/".parse().unwrap(),
                order_id: "O1".into(),
                claim_token: None,
                session_id: String::new(),
                nonce_priv: EddsaPrivateKey::from_bytes(&[8; 32]),
                state: PurchaseState::Claiming,
                contract: None,
                pay_sig: None,
                repurchase_of: None,
                created: Timestamp::now(),
                paid: None,
                last_error: None,
            })
            .await
            .unwrap();
        assert_eq!(p.state, PurchaseState::Claiming);
        assert!(
            store
                .claimed(
                    "P1",
                    ClaimedContract {
                        contract_json: "{}".into(),
                        h_contract: HashCode::from_bytes([1; 64]),
                        merchant_sig: cardcash_util::EddsaSignature::from_bytes([2; 64]),
                        merchant_pub: EddsaPublicKey::from_bytes([3; 32]),
                        amount: "CHF:7".parse().unwrap(),
                        summary: "s".into(),
                        fulfillment_url: None,
                    },
                )
                .await
                .unwrap()
        );
        let coin = |key: u8, contribution: &str| PurchaseCoinRow {
            index: u32::from(key),
            coin_pub: EddsaPublicKey::from_bytes([key; 32]),
            contribution: contribution.parse().unwrap(),
            deposit_fee: "CHF:0.01".parse().unwrap(),
            coin_sig: cardcash_util::EddsaSignature::from_bytes([key; 64]),
        };
        let taken = store
            .start_paying(
                "P1",
                String::new(),
                vec![coin(3, "CHF:5"), coin(4, "CHF:2")],
            )
            .await
            .unwrap();
        assert!(!taken);
        let fresh = store
            .coin(&EddsaPublicKey::from_bytes([3; 32]))
            .unwrap()
            .unwrap();
        assert_eq!(fresh.status, CoinStatus::Fresh);
        assert!(store.purchase_coins("P1").unwrap().is_empty());
        assert_eq!(
            store.purchase("P1").unwrap().unwrap().state,
            PurchaseState::Proposed
        );
        // With fresh coins only, the payment takes 5 whole and 2 of the second coin's 5.
        store
            .db
            .write(|tx| {
                tx.execute("UPDATE coins SET status = 'fresh'", [])?;
                Ok(())
            })
            .await
            .unwrap();
        assert!(
            store
                .start_paying("P1", "S".into(), vec![coin(3, "CHF:5"), coin(4, "CHF:2")])
                .await
                .unwrap()
        );
        let left: Vec<(CoinStatus, String)> = store
            .coins()
            .unwrap()
            .iter()
            .map(|c| (c.status, c.remaining.to_string()))
            .collect();
        assert_eq!(
            left,
            [
                (CoinStatus::Spent, "CHF:0".into()),
                (CoinStatus::Spent, "CHF:3".into())
            ]
        );
        let p = store.purchase("P1").unwrap().unwrap();
        assert_eq!(
            (p.state, p.session_id.as_str()),
            (PurchaseState::Paying, "S")
        );
        assert_eq!(store.purchase_coins("P1").unwrap().len(), 2);
    }
}
