//! The bank's storage on SQLite (rusqlite): reads run inline on a read-only connection, each
//! write is ONE closure on the store's writer thread (`&mut SqliteTx`), which runs alone, so a
//! money movement needs no row locks. The steps of each movement are those of the PostgreSQL
//! functions in `migrations/postgres/0001_init.sql`; keep them in step.

use cardcash_api::wire_gateway::HistoryParams;
use cardcash_store::columns::{amount_to_columns, sqlite_amount};
use cardcash_store::rusqlite::{Connection, Row, params};
use cardcash_store::{SqliteTx, StoreError};
use cardcash_util::{Amount, EddsaPublicKey, HashCode, ShortHashCode, Timestamp};

use super::{
    AccountId, AccountRow, AccountTransactionRow, Booked, Codec, ExchangeCredit, IncomingDebtor,
    IncomingRow, NewAccountRow, NewIncoming, NewInternalTransfer, NewWireTransfer, OutgoingRow,
    Refusal, TOPIC_INCOMING, TOPIC_OUTGOING, TOPIC_TX, TokenRow, fixed,
};
use cardcash_store::{query_all, query_opt};

use crate::account::AccountName;
use crate::auth::Scope;
use crate::balance::{Balance, BalanceError};

macro_rules! outgoing_select {
    () => {
        "SELECT o.tx_id, t.created_at, t.amount_val, t.amount_frac, o.credit_payto, o.wtid, \
         o.exchange_base_url, o.request_uid \
         FROM taler_outgoing o JOIN transactions t ON t.tx_id = o.tx_id "
    };
}

// ----- accounts -----

macro_rules! account_columns {
    () => {
        "account_id, name, legal_name, password_hash, is_exchange, balance_val, balance_frac, \
         has_debt, debit_limit_val, debit_limit_frac"
    };
}

fn account_row(codec: &Codec, row: &Row<'_>) -> Result<AccountRow, StoreError> {
    let name: String = row.get(1)?;
    Ok(AccountRow {
        id: AccountId(row.get(0)?),
        name: codec.name(&name)?,
        legal_name: row.get(2)?,
        password_hash: row.get(3)?,
        is_exchange: row.get(4)?,
        balance: Balance::new(sqlite_amount(row, 5, codec.currency)?, row.get(7)?),
        debit_limit: sqlite_amount(row, 8, codec.currency)?,
    })
}

pub(super) fn account_by_name(
    conn: &Connection,
    codec: &Codec,
    name: &AccountName,
) -> Result<Option<AccountRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE name = ?1"
    );
    query_opt(conn, SQL, [name.as_str()], |row| account_row(codec, row))
}

fn account_by_id(
    conn: &Connection,
    codec: &Codec,
    id: AccountId,
) -> Result<AccountRow, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE account_id = ?1"
    );
    query_opt(conn, SQL, [id.0], |row| account_row(codec, row))?
        .ok_or_else(|| StoreError::Corrupt(format!("account {id} vanished")))
}

pub(super) fn accounts(conn: &Connection, codec: &Codec) -> Result<Vec<AccountRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts ORDER BY name"
    );
    query_all(conn, SQL, [], |row| account_row(codec, row))
}

pub(super) fn insert_account(
    tx: &mut SqliteTx<'_>,
    codec: &Codec,
    new: &NewAccountRow,
) -> Result<Option<AccountRow>, StoreError> {
    const SQL: &str = concat!(
        "INSERT INTO accounts (name, legal_name, password_hash, is_exchange, debit_limit_val, \
         debit_limit_frac, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (name) DO NOTHING RETURNING ",
        account_columns!()
    );
    let (limit_val, limit_frac) = amount_to_columns(&new.debit_limit);
    query_opt(
        tx,
        SQL,
        params![
            new.name.as_str(),
            new.legal_name,
            new.password_hash,
            new.is_exchange,
            limit_val,
            limit_frac,
            new.created_at.to_sql_micros(),
        ],
        |row| account_row(codec, row),
    )
}

pub(super) fn set_password(
    tx: &mut SqliteTx<'_>,
    name: &AccountName,
    hash: &str,
) -> Result<bool, StoreError> {
    let changed = tx
        .prepare_cached("UPDATE accounts SET password_hash = ?1 WHERE name = ?2")?
        .execute(params![hash, name.as_str()])?;
    Ok(changed == 1)
}

fn set_balance(tx: &SqliteTx<'_>, id: AccountId, balance: &Balance) -> Result<(), StoreError> {
    let (val, frac) = amount_to_columns(&balance.amount);
    tx.prepare_cached(
        "UPDATE accounts SET balance_val = ?1, balance_frac = ?2, has_debt = ?3 \
         WHERE account_id = ?4",
    )?
    .execute(params![val, frac, balance.is_debit(), id.0])?;
    Ok(())
}

// ----- tokens -----

pub(super) fn insert_token(
    tx: &mut SqliteTx<'_>,
    token_hash: &[u8],
    account: AccountId,
    scope: Scope,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO tokens (token_hash, account_id, scope, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        token_hash,
        account.0,
        scope.as_str(),
        created_at.to_sql_micros(),
        expires_at.to_sql_micros(),
    ])?;
    Ok(())
}

pub(super) fn token(
    conn: &Connection,
    codec: &Codec,
    token_hash: &[u8],
) -> Result<Option<TokenRow>, StoreError> {
    query_opt(
        conn,
        "SELECT a.name, t.scope, t.expires_at FROM tokens t \
         JOIN accounts a ON a.account_id = t.account_id WHERE t.token_hash = ?1",
        [token_hash],
        |row| {
            let name: String = row.get(0)?;
            let scope: String = row.get(1)?;
            Ok(TokenRow {
                account_name: codec.name(&name)?,
                scope: codec.scope(&scope)?,
                expires_at: codec.time(row.get(2)?)?,
            })
        },
    )
}

// ----- money movements -----

/// One money movement between two distinct accounts.
struct Movement<'a> {
    debtor: AccountId,
    creditor: AccountId,
    amount: &'a Amount,
    subject: &'a str,
    now: Timestamp,
    request_uid: Option<&'a [u8]>,
    bounce_of: Option<i64>,
}

/// Checks the debit limit and the range of both balances, updates them (what leaves one
/// account enters the other: the sum of all balances stays zero), inserts the transaction and
/// notifies both accounts. A refusal writes nothing.
fn move_money(
    tx: &mut SqliteTx<'_>,
    codec: &Codec,
    m: &Movement<'_>,
) -> Result<Result<i64, Refusal>, StoreError> {
    let debtor = account_by_id(tx, codec, m.debtor)?;
    let creditor = account_by_id(tx, codec, m.creditor)?;
    let debtor_after = match debtor.balance.debit(m.amount, &debtor.debit_limit) {
        Ok(balance) => balance,
        Err(BalanceError::Insufficient) => return Ok(Err(Refusal::InsufficientFunds)),
        Err(BalanceError::Amount(_)) => return Ok(Err(Refusal::Overflow)),
    };
    let Ok(creditor_after) = creditor.balance.credit(m.amount) else {
        return Ok(Err(Refusal::Overflow));
    };
    set_balance(tx, debtor.id, &debtor_after)?;
    set_balance(tx, creditor.id, &creditor_after)?;
    let (val, frac) = amount_to_columns(m.amount);
    let row_id: i64 = tx
        .prepare_cached(
            "INSERT INTO transactions (debit_account_id, credit_account_id, subject, amount_val, \
             amount_frac, created_at, request_uid, bounce_of) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING tx_id",
        )?
        .query_row(
            params![
                debtor.id.0,
                creditor.id.0,
                m.subject,
                val,
                frac,
                m.now.to_sql_micros(),
                m.request_uid,
                m.bounce_of,
            ],
            |row| row.get(0),
        )?;
    tx.notify(TOPIC_TX, &debtor.id.to_string());
    tx.notify(TOPIC_TX, &creditor.id.to_string());
    Ok(Ok(row_id))
}

fn reserve_pub_used(conn: &Connection, reserve_pub: &EddsaPublicKey) -> Result<bool, StoreError> {
    Ok(query_opt(
        conn,
        "SELECT 1 FROM taler_incoming WHERE reserve_pub = ?1",
        [reserve_pub.as_bytes().as_slice()],
        |_| Ok(()),
    )?
    .is_some())
}

fn insert_incoming(
    tx: &SqliteTx<'_>,
    row_id: i64,
    exchange: AccountId,
    reserve_pub: &EddsaPublicKey,
    debit_payto: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO taler_incoming (tx_id, exchange_account_id, reserve_pub, debit_payto) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        row_id,
        exchange.0,
        reserve_pub.as_bytes().as_slice(),
        debit_payto
    ])?;
    Ok(())
}

fn booked(row_id: i64, now: Timestamp) -> Booked {
    Booked {
        row_id,
        timestamp: now,
        new: true,
    }
}

/// Steps of `bank_internal_transfer`.
pub(super) fn internal_transfer(
    tx: &mut SqliteTx<'_>,
    codec: &Codec,
    t: &NewInternalTransfer,
) -> Result<Result<(Booked, ExchangeCredit), Refusal>, StoreError> {
    let Some(debtor) = account_by_name(tx, codec, &t.debtor)? else {
        return Ok(Err(Refusal::UnknownAccount));
    };
    let Some(creditor) = account_by_name(tx, codec, &t.creditor)? else {
        return Ok(Err(Refusal::UnknownCreditor));
    };
    let uid = t.request_uid.as_ref().map(|u| u.as_bytes().as_slice());
    if let Some(uid) = uid {
        let earlier = query_opt(
            tx,
            "SELECT tx_id, credit_account_id, amount_val, amount_frac, subject, created_at \
             FROM transactions WHERE debit_account_id = ?1 AND request_uid = ?2",
            params![debtor.id.0, uid],
            |row| {
                let same = row.get::<_, i64>(1)? == creditor.id.0
                    && sqlite_amount(row, 2, codec.currency)? == t.amount
                    && row.get::<_, String>(4)? == t.subject;
                let replay = Booked {
                    row_id: row.get(0)?,
                    timestamp: codec.time(row.get(5)?)?,
                    new: false,
                };
                Ok(same.then_some(replay))
            },
        )?;
        match earlier {
            Some(Some(replay)) => return Ok(Ok((replay, ExchangeCredit::None))),
            Some(None) => return Ok(Err(Refusal::RequestUidReused)),
            None => {}
        }
    }
    if creditor.name.is_admin() {
        return Ok(Err(Refusal::AdminCreditor));
    }
    if creditor.id == debtor.id {
        return Ok(Err(Refusal::SameAccount));
    }
    let moved = move_money(
        tx,
        codec,
        &Movement {
            debtor: debtor.id,
            creditor: creditor.id,
            amount: &t.amount,
            subject: &t.subject,
            now: t.now,
            request_uid: uid,
            bounce_of: None,
        },
    )?;
    let row_id = match moved {
        Ok(row_id) => row_id,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let credit = if !creditor.is_exchange {
        ExchangeCredit::None
    } else if debtor.is_exchange {
        // No bounce between exchanges: two exchanges could bounce each other forever.
        ExchangeCredit::BetweenExchanges
    } else {
        let cause = match &t.reserve_pub {
            Err(cause) => Some(cause.clone()),
            Ok(reserve_pub) if reserve_pub_used(tx, reserve_pub)? => {
                Some("reserve public key reuse".to_owned())
            }
            Ok(reserve_pub) => {
                insert_incoming(tx, row_id, creditor.id, reserve_pub, None)?;
                tx.notify(TOPIC_INCOMING, &creditor.id.to_string());
                None
            }
        };
        match cause {
            None => ExchangeCredit::Reserve,
            Some(cause) => {
                let subject = format!("Bounce {row_id}: {cause}");
                let bounced = move_money(
                    tx,
                    codec,
                    &Movement {
                        debtor: creditor.id,
                        creditor: debtor.id,
                        amount: &t.amount,
                        subject: &subject,
                        now: t.now,
                        request_uid: None,
                        bounce_of: Some(row_id),
                    },
                )?;
                if let Err(refusal) = bounced {
                    return Err(StoreError::Internal(format!(
                        "bounce of transaction {row_id} failed: {refusal:?}"
                    )));
                }
                ExchangeCredit::Bounced
            }
        }
    };
    Ok(Ok((booked(row_id, t.now), credit)))
}

/// The exchange account `id`, or why it cannot act as one.
fn exchange(
    conn: &Connection,
    codec: &Codec,
    id: AccountId,
) -> Result<Result<AccountRow, Refusal>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE account_id = ?1"
    );
    Ok(
        match query_opt(conn, SQL, [id.0], |row| account_row(codec, row))? {
            None => Err(Refusal::UnknownAccount),
            Some(row) if !row.is_exchange => Err(Refusal::NotAnExchange),
            Some(row) => Ok(row),
        },
    )
}

/// Steps of `bank_wire_transfer`.
pub(super) fn wire_transfer(
    tx: &mut SqliteTx<'_>,
    codec: &Codec,
    t: &NewWireTransfer,
) -> Result<Result<Booked, Refusal>, StoreError> {
    let exchange = match exchange(tx, codec, t.exchange)? {
        Ok(row) => row,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let credit_payto = t.credit_account.to_string();
    let earlier = query_opt(
        tx,
        concat!(
            outgoing_select!(),
            "WHERE o.exchange_account_id = ?1 AND o.request_uid = ?2"
        ),
        params![exchange.id.0, t.request_uid.as_bytes().as_slice()],
        |row| outgoing_row(codec, row),
    )?;
    if let Some(earlier) = earlier {
        let same = earlier.amount == t.amount
            && earlier.credit_account.to_string() == credit_payto
            && earlier.exchange_base_url == t.exchange_base_url
            && earlier.wtid == t.wtid;
        return Ok(if same {
            Ok(Booked {
                row_id: earlier.row_id,
                timestamp: earlier.date,
                new: false,
            })
        } else {
            Err(Refusal::RequestUidReused)
        });
    }
    let wtid_used = query_opt(
        tx,
        "SELECT 1 FROM taler_outgoing WHERE exchange_account_id = ?1 AND wtid = ?2",
        params![exchange.id.0, t.wtid.as_bytes().as_slice()],
        |_| Ok(()),
    )?;
    if wtid_used.is_some() {
        return Ok(Err(Refusal::WtidReused));
    }
    let creditor = match &t.creditor {
        Some(name) => account_by_name(tx, codec, name)?,
        None => None,
    };
    let Some(creditor) = creditor else {
        return Ok(Err(Refusal::UnknownCreditor));
    };
    if creditor.is_exchange {
        return Ok(Err(Refusal::IsAnExchange));
    }
    let moved = move_money(
        tx,
        codec,
        &Movement {
            debtor: exchange.id,
            creditor: creditor.id,
            amount: &t.amount,
            subject: &t.subject,
            now: t.now,
            request_uid: None,
            bounce_of: None,
        },
    )?;
    let row_id = match moved {
        Ok(row_id) => row_id,
        Err(refusal) => return Ok(Err(refusal)),
    };
    tx.prepare_cached(
        "INSERT INTO taler_outgoing (tx_id, exchange_account_id, request_uid, wtid, \
         exchange_base_url, credit_payto) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        row_id,
        exchange.id.0,
        t.request_uid.as_bytes().as_slice(),
        t.wtid.as_bytes().as_slice(),
        t.exchange_base_url.as_str(),
        credit_payto,
    ])?;
    tx.notify(TOPIC_OUTGOING, &exchange.id.to_string());
    Ok(Ok(booked(row_id, t.now)))
}

/// Steps of `bank_add_incoming`.
pub(super) fn add_incoming(
    tx: &mut SqliteTx<'_>,
    codec: &Codec,
    a: &NewIncoming,
) -> Result<Result<Booked, Refusal>, StoreError> {
    let exchange = match exchange(tx, codec, a.exchange)? {
        Ok(row) => row,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (debtor, debit_payto) = match &a.debtor {
        IncomingDebtor::Local(name) => {
            let Some(debtor) = account_by_name(tx, codec, name)? else {
                return Ok(Err(Refusal::UnknownDebtor));
            };
            if debtor.is_exchange {
                return Ok(Err(Refusal::IsAnExchange));
            }
            (debtor, None)
        }
        IncomingDebtor::External(payto) => {
            let admin = account_by_name(tx, codec, &AccountName::admin())?
                .ok_or_else(|| StoreError::Corrupt("the admin account is missing".to_owned()))?;
            (admin, Some(payto.to_string()))
        }
    };
    if reserve_pub_used(tx, &a.reserve_pub)? {
        return Ok(Err(Refusal::ReservePubReused));
    }
    let moved = move_money(
        tx,
        codec,
        &Movement {
            debtor: debtor.id,
            creditor: exchange.id,
            amount: &a.amount,
            subject: &a.subject,
            now: a.now,
            request_uid: None,
            bounce_of: None,
        },
    )?;
    let row_id = match moved {
        Ok(row_id) => row_id,
        Err(refusal) => return Ok(Err(refusal)),
    };
    insert_incoming(
        tx,
        row_id,
        exchange.id,
        &a.reserve_pub,
        debit_payto.as_deref(),
    )?;
    tx.notify(TOPIC_INCOMING, &exchange.id.to_string());
    Ok(Ok(booked(row_id, a.now)))
}

// ----- histories -----

fn outgoing_row(codec: &Codec, row: &Row<'_>) -> Result<OutgoingRow, StoreError> {
    let credit_payto: String = row.get(4)?;
    let wtid: Vec<u8> = row.get(5)?;
    let base_url: String = row.get(6)?;
    let request_uid: Vec<u8> = row.get(7)?;
    Ok(OutgoingRow {
        row_id: row.get(0)?,
        date: codec.time(row.get(1)?)?,
        amount: sqlite_amount(row, 2, codec.currency)?,
        credit_account: codec.payto(&credit_payto)?,
        wtid: fixed("wtid", &wtid, ShortHashCode::from_slice)?,
        exchange_base_url: codec.base_url(&base_url)?,
        request_uid: fixed("request_uid", &request_uid, HashCode::from_slice)?,
    })
}

fn incoming_row(codec: &Codec, row: &Row<'_>) -> Result<IncomingRow, StoreError> {
    let debit_payto: Option<String> = row.get(4)?;
    let reserve_pub: Vec<u8> = row.get(5)?;
    let debit_account = match debit_payto {
        Some(text) => codec.payto(&text)?,
        None => codec.local_payto(&row.get::<_, String>(6)?, &row.get::<_, String>(7)?)?,
    };
    Ok(IncomingRow {
        row_id: row.get(0)?,
        date: codec.time(row.get(1)?)?,
        amount: sqlite_amount(row, 2, codec.currency)?,
        debit_account,
        reserve_pub: fixed("reserve_pub", &reserve_pub, EddsaPublicKey::from_slice)?,
    })
}

pub(super) fn incoming_page(
    conn: &Connection,
    codec: &Codec,
    exchange: AccountId,
    page: &HistoryParams,
) -> Result<Vec<IncomingRow>, StoreError> {
    macro_rules! select {
        () => {
            "SELECT i.tx_id, t.created_at, t.amount_val, t.amount_frac, i.debit_payto, \
             i.reserve_pub, d.name, d.legal_name \
             FROM taler_incoming i JOIN transactions t ON t.tx_id = i.tx_id \
             JOIN accounts d ON d.account_id = t.debit_account_id "
        };
    }
    const ASC: &str = concat!(
        select!(),
        "WHERE i.exchange_account_id = ?1 AND i.tx_id > ?2 ORDER BY i.tx_id ASC LIMIT ?3"
    );
    const DESC: &str = concat!(
        select!(),
        "WHERE i.exchange_account_id = ?1 AND i.tx_id < ?2 ORDER BY i.tx_id DESC LIMIT ?3"
    );
    let sql = if page.ascending() { ASC } else { DESC };
    query_all(
        conn,
        sql,
        params![exchange.0, page.start(), page.count()],
        |row| incoming_row(codec, row),
    )
}

pub(super) fn outgoing_page(
    conn: &Connection,
    codec: &Codec,
    exchange: AccountId,
    page: &HistoryParams,
) -> Result<Vec<OutgoingRow>, StoreError> {
    const ASC: &str = concat!(
        outgoing_select!(),
        "WHERE o.exchange_account_id = ?1 AND o.tx_id > ?2 ORDER BY o.tx_id ASC LIMIT ?3"
    );
    const DESC: &str = concat!(
        outgoing_select!(),
        "WHERE o.exchange_account_id = ?1 AND o.tx_id < ?2 ORDER BY o.tx_id DESC LIMIT ?3"
    );
    let sql = if page.ascending() { ASC } else { DESC };
    query_all(
        conn,
        sql,
        params![exchange.0, page.start(), page.count()],
        |row| outgoing_row(codec, row),
    )
}

pub(super) fn outgoing_transfer(
    conn: &Connection,
    codec: &Codec,
    exchange: AccountId,
    row_id: i64,
) -> Result<Option<OutgoingRow>, StoreError> {
    query_opt(
        conn,
        concat!(
            outgoing_select!(),
            "WHERE o.exchange_account_id = ?1 AND o.tx_id = ?2"
        ),
        params![exchange.0, row_id],
        |row| outgoing_row(codec, row),
    )
}

macro_rules! history_select {
    () => {
        "SELECT t.tx_id, t.created_at, t.amount_val, t.amount_frac, t.subject, \
         d.name, d.legal_name, c.name, c.legal_name, t.debit_account_id \
         FROM transactions t \
         JOIN accounts d ON d.account_id = t.debit_account_id \
         JOIN accounts c ON c.account_id = t.credit_account_id "
    };
}

fn history_row(
    codec: &Codec,
    account: AccountId,
    row: &Row<'_>,
) -> Result<AccountTransactionRow, StoreError> {
    Ok(AccountTransactionRow {
        row_id: row.get(0)?,
        date: codec.time(row.get(1)?)?,
        amount: sqlite_amount(row, 2, codec.currency)?,
        subject: row.get(4)?,
        debtor: codec.local_payto(&row.get::<_, String>(5)?, &row.get::<_, String>(6)?)?,
        creditor: codec.local_payto(&row.get::<_, String>(7)?, &row.get::<_, String>(8)?)?,
        is_debit: row.get::<_, i64>(9)? == account.0,
    })
}

pub(super) fn account_history(
    conn: &Connection,
    codec: &Codec,
    account: AccountId,
    page: &HistoryParams,
) -> Result<Vec<AccountTransactionRow>, StoreError> {
    const ASC: &str = concat!(
        history_select!(),
        "WHERE (t.debit_account_id = ?1 OR t.credit_account_id = ?1) AND t.tx_id > ?2 \
         ORDER BY t.tx_id ASC LIMIT ?3"
    );
    const DESC: &str = concat!(
        history_select!(),
        "WHERE (t.debit_account_id = ?1 OR t.credit_account_id = ?1) AND t.tx_id < ?2 \
         ORDER BY t.tx_id DESC LIMIT ?3"
    );
    let sql = if page.ascending() { ASC } else { DESC };
    query_all(
        conn,
        sql,
        params![account.0, page.start(), page.count()],
        |row| history_row(codec, account, row),
    )
}

pub(super) fn account_transaction(
    conn: &Connection,
    codec: &Codec,
    account: AccountId,
    row_id: i64,
) -> Result<Option<AccountTransactionRow>, StoreError> {
    query_opt(
        conn,
        concat!(
            history_select!(),
            "WHERE (t.debit_account_id = ?1 OR t.credit_account_id = ?1) AND t.tx_id = ?2"
        ),
        params![account.0, row_id],
        |row| history_row(codec, account, row),
    )
}
