-- Bank schema (SQLite). Keep in step with ../postgres/0001_init.sql: same tables, columns,
-- constraints and meaning; only the dialect differs. Money is (val BIGINT, frac INTEGER) with
-- val <= 2^52 and frac < 10^8; times are BIGINT microseconds; flags are INTEGER 0/1 here
-- (BOOLEAN on PostgreSQL). Money movements are written by one writer closure each
-- (`src/db/sqlite.rs`), the same steps as the PostgreSQL functions.

CREATE TABLE accounts (
    account_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    legal_name       TEXT    NOT NULL,
    -- PHC string (argon2id); NULL = no password login, only bearer tokens.
    password_hash    TEXT,
    is_exchange      INTEGER NOT NULL DEFAULT 0 CHECK (is_exchange IN (0, 1)),
    -- Signed balance as magnitude + sign, like libeufin: has_debt = 1 means negative.
    balance_val      BIGINT  NOT NULL DEFAULT 0,
    balance_frac     INTEGER NOT NULL DEFAULT 0,
    has_debt         INTEGER NOT NULL DEFAULT 0 CHECK (has_debt IN (0, 1)),
    debit_limit_val  BIGINT  NOT NULL DEFAULT 0,
    debit_limit_frac INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    CONSTRAINT accounts_balance_amount CHECK (
        balance_val BETWEEN 0 AND 4503599627370496 AND balance_frac BETWEEN 0 AND 99999999),
    CONSTRAINT accounts_debit_limit_amount CHECK (
        debit_limit_val BETWEEN 0 AND 4503599627370496 AND debit_limit_frac BETWEEN 0 AND 99999999),
    -- Zero is always a credit balance.
    CONSTRAINT accounts_no_negative_zero CHECK (has_debt = 0 OR balance_val > 0 OR balance_frac > 0)
);

-- One row per money movement (double entry: the debit and the credit side of the same row).
CREATE TABLE transactions (
    tx_id             INTEGER PRIMARY KEY AUTOINCREMENT,
    debit_account_id  BIGINT  NOT NULL REFERENCES accounts (account_id),
    credit_account_id BIGINT  NOT NULL REFERENCES accounts (account_id),
    subject           TEXT    NOT NULL,
    amount_val        BIGINT  NOT NULL,
    amount_frac       INTEGER NOT NULL,
    created_at        BIGINT  NOT NULL,
    -- Core API idempotency key (32 bytes), scoped to the debtor; NULL when none was given.
    request_uid       BLOB,
    -- Set on the refund of a bounced transfer: the transfer it sends back.
    bounce_of         BIGINT REFERENCES transactions (tx_id),
    CONSTRAINT transactions_amount CHECK (
        amount_val BETWEEN 0 AND 4503599627370496 AND amount_frac BETWEEN 0 AND 99999999
        AND (amount_val > 0 OR amount_frac > 0)),
    CONSTRAINT transactions_two_accounts CHECK (debit_account_id <> credit_account_id)
);
CREATE UNIQUE INDEX transactions_request_uid ON transactions (debit_account_id, request_uid);
CREATE INDEX transactions_debit ON transactions (debit_account_id, tx_id);
CREATE INDEX transactions_credit ON transactions (credit_account_id, tx_id);

-- Wire Gateway incoming: credits of an exchange account carrying a reserve public key.
CREATE TABLE taler_incoming (
    tx_id               BIGINT PRIMARY KEY REFERENCES transactions (tx_id),
    exchange_account_id BIGINT NOT NULL REFERENCES accounts (account_id),
    reserve_pub         BLOB   NOT NULL UNIQUE,
    -- The sender's payto URI when it is not an account of this bank (admin/add-incoming from
    -- outside); NULL when the debtor is the transaction's own debit account (its URI is built
    -- from its name and legal name when read).
    debit_payto         TEXT
);
CREATE INDEX taler_incoming_exchange ON taler_incoming (exchange_account_id, tx_id);

-- Wire Gateway outgoing: transfers an exchange made through POST /transfer.
CREATE TABLE taler_outgoing (
    tx_id               BIGINT PRIMARY KEY REFERENCES transactions (tx_id),
    exchange_account_id BIGINT NOT NULL REFERENCES accounts (account_id),
    request_uid         BLOB   NOT NULL,
    wtid                BLOB   NOT NULL,
    exchange_base_url   TEXT   NOT NULL,
    credit_payto        TEXT   NOT NULL,
    UNIQUE (exchange_account_id, request_uid),
    UNIQUE (exchange_account_id, wtid)
);
CREATE INDEX taler_outgoing_exchange ON taler_outgoing (exchange_account_id, tx_id);

-- Bearer tokens; only a SHA-512 of the secret is stored.
CREATE TABLE tokens (
    token_hash BLOB    PRIMARY KEY,
    account_id BIGINT  NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL CHECK (scope IN ('readonly', 'readwrite')),
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
