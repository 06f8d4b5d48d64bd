-- The exchange's tables (SQLite). Money as (val, frac), times as µs since the epoch, keys and
-- hashes as BLOB. Every money movement happens in one writer transaction.

-- ---------------------------------------------------------------- keys signed by the master key

CREATE TABLE denominations (
    denom_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    h_denom_pub BLOB NOT NULL UNIQUE CHECK (length(h_denom_pub) = 64),
    cipher INTEGER NOT NULL,
    denom_pub BLOB NOT NULL,
    section TEXT NOT NULL,
    value_val INTEGER NOT NULL,
    value_frac INTEGER NOT NULL,
    fee_withdraw_val INTEGER NOT NULL,
    fee_withdraw_frac INTEGER NOT NULL,
    fee_deposit_val INTEGER NOT NULL,
    fee_deposit_frac INTEGER NOT NULL,
    fee_refresh_val INTEGER NOT NULL,
    fee_refresh_frac INTEGER NOT NULL,
    fee_refund_val INTEGER NOT NULL,
    fee_refund_frac INTEGER NOT NULL,
    stamp_start INTEGER NOT NULL,
    stamp_expire_withdraw INTEGER NOT NULL,
    stamp_expire_deposit INTEGER NOT NULL,
    stamp_expire_legal INTEGER NOT NULL,
    master_sig BLOB NOT NULL CHECK (length(master_sig) = 64),
    revocation_sig BLOB CHECK (revocation_sig IS NULL OR length(revocation_sig) = 64)
);

CREATE TABLE signkeys (
    signkey_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange_pub BLOB NOT NULL UNIQUE CHECK (length(exchange_pub) = 32),
    stamp_start INTEGER NOT NULL,
    stamp_expire INTEGER NOT NULL,
    stamp_end INTEGER NOT NULL,
    master_sig BLOB NOT NULL CHECK (length(master_sig) = 64),
    revocation_sig BLOB CHECK (revocation_sig IS NULL OR length(revocation_sig) = 64)
);

-- One row per payto URI; enabling again after a disable needs a later validity_start.
CREATE TABLE wire_accounts (
    payto_uri TEXT PRIMARY KEY,
    conversion_url TEXT,
    debit_restrictions TEXT NOT NULL,
    credit_restrictions TEXT NOT NULL,
    bank_label TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    master_sig_wire BLOB NOT NULL CHECK (length(master_sig_wire) = 64),
    master_sig_add BLOB NOT NULL CHECK (length(master_sig_add) = 64),
    validity_start INTEGER NOT NULL,
    master_sig_del BLOB,
    validity_end INTEGER,
    is_active INTEGER NOT NULL CHECK (is_active IN (0, 1))
);

CREATE TABLE wire_fees (
    wire_method TEXT NOT NULL,
    start_date INTEGER NOT NULL,
    end_date INTEGER NOT NULL,
    wire_fee_val INTEGER NOT NULL,
    wire_fee_frac INTEGER NOT NULL,
    closing_fee_val INTEGER NOT NULL,
    closing_fee_frac INTEGER NOT NULL,
    master_sig BLOB NOT NULL CHECK (length(master_sig) = 64),
    PRIMARY KEY (wire_method, start_date)
);

CREATE TABLE global_fees (
    start_date INTEGER PRIMARY KEY,
    end_date INTEGER NOT NULL,
    history_fee_val INTEGER NOT NULL,
    history_fee_frac INTEGER NOT NULL,
    account_fee_val INTEGER NOT NULL,
    account_fee_frac INTEGER NOT NULL,
    purse_fee_val INTEGER NOT NULL,
    purse_fee_frac INTEGER NOT NULL,
    purse_timeout INTEGER NOT NULL,
    history_expiration INTEGER NOT NULL,
    purse_account_limit INTEGER NOT NULL,
    master_sig BLOB NOT NULL CHECK (length(master_sig) = 64)
);

-- ---------------------------------------------------------------- reserves and withdrawals

CREATE TABLE reserves (
    reserve_pub BLOB PRIMARY KEY CHECK (length(reserve_pub) = 32),
    balance_val INTEGER NOT NULL CHECK (balance_val >= 0),
    balance_frac INTEGER NOT NULL CHECK (balance_frac >= 0),
    -- Sum of every credit ever (audit: credits = withdrawals + balance [+ closings]).
    total_in_val INTEGER NOT NULL,
    total_in_frac INTEGER NOT NULL,
    created INTEGER NOT NULL,
    last_activity INTEGER NOT NULL,
    expiration_date INTEGER NOT NULL
);

-- Incoming wire transfers, exactly once per (account, gateway row).
CREATE TABLE reserves_in (
    reserve_in_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    reserve_pub BLOB NOT NULL REFERENCES reserves (reserve_pub),
    account_section TEXT NOT NULL,
    wire_reference INTEGER NOT NULL,
    amount_val INTEGER NOT NULL,
    amount_frac INTEGER NOT NULL,
    debit_payto TEXT NOT NULL,
    execution_date INTEGER NOT NULL,
    UNIQUE (account_section, wire_reference)
);
CREATE INDEX reserves_in_by_reserve ON reserves_in (reserve_pub);

-- Incoming transfers that fund no reserve (a KYC-authentication or wad transfer, another
-- currency): sent back through the Wire Gateway of the account that received them, minus the
-- closing fee. wirewatch records them in the transaction of their page, so each is counted
-- once; the request_uid and WTID of the transfer back are fixed then (derived from account and
-- gateway row), so every attempt, after a crash too, is the same request to the gateway. The
-- bounce worker then decides once what the exchange keeps (the closing fee of the account's
-- wire method, at most the amount) and what goes back, with the base URL the transfer names
-- (all NULL until then); `done` once the gateway accepted the transfer (gateway_row_id) or
-- when nothing was left after the fee.
CREATE TABLE wire_in_bounced (
    bounce_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    account_section TEXT NOT NULL,
    wire_reference INTEGER NOT NULL,
    amount_val INTEGER NOT NULL,
    amount_frac INTEGER NOT NULL,
    debit_payto TEXT NOT NULL,
    subject TEXT NOT NULL,
    execution_date INTEGER NOT NULL,
    request_uid BLOB NOT NULL UNIQUE CHECK (length(request_uid) = 64),
    wtid BLOB NOT NULL UNIQUE CHECK (length(wtid) = 32),
    closing_fee_val INTEGER,
    closing_fee_frac INTEGER,
    returned_val INTEGER,
    returned_frac INTEGER,
    exchange_base_url TEXT,
    gateway_row_id INTEGER,
    done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    next_attempt INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_section, wire_reference),
    CHECK ((closing_fee_val IS NULL) = (returned_val IS NULL)
           AND (closing_fee_val IS NULL) = (exchange_base_url IS NULL)),
    CHECK (done = 0 OR closing_fee_val IS NOT NULL),
    CHECK (gateway_row_id IS NULL OR done = 1),
    CHECK (done = 0 OR gateway_row_id IS NOT NULL OR (returned_val = 0 AND returned_frac = 0))
);
-- What the bounce worker looks at.
CREATE INDEX wire_in_bounced_pending ON wire_in_bounced (next_attempt) WHERE done = 0;

-- How far wirewatch got in each account's incoming history.
CREATE TABLE wirewatch_progress (
    account_section TEXT PRIMARY KEY,
    last_row_id INTEGER NOT NULL
);

-- One row per signed planchet; h_blind_ev makes a replay return the same signature.
CREATE TABLE withdrawals (
    withdraw_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    h_blind_ev BLOB NOT NULL UNIQUE CHECK (length(h_blind_ev) = 64),
    reserve_pub BLOB NOT NULL REFERENCES reserves (reserve_pub),
    denom_serial INTEGER NOT NULL REFERENCES denominations (denom_serial),
    reserve_sig BLOB NOT NULL CHECK (length(reserve_sig) = 64),
    amount_with_fee_val INTEGER NOT NULL,
    amount_with_fee_frac INTEGER NOT NULL,
    denom_sig BLOB NOT NULL,
    execution_date INTEGER NOT NULL
);
CREATE INDEX withdrawals_by_reserve ON withdrawals (reserve_pub);

-- A Clause-Schnorr nonce may sign one planchet only: signing two different challenges with
-- the same nonce would reveal the denomination's private key.
CREATE TABLE cs_nonce_locks (
    nonce BLOB NOT NULL CHECK (length(nonce) = 32),
    denom_serial INTEGER NOT NULL REFERENCES denominations (denom_serial),
    h_blind_ev BLOB NOT NULL,
    PRIMARY KEY (nonce, denom_serial)
);

-- ---------------------------------------------------------------- coins, deposits, refunds

CREATE TABLE known_coins (
    coin_pub BLOB PRIMARY KEY CHECK (length(coin_pub) = 32),
    denom_serial INTEGER NOT NULL REFERENCES denominations (denom_serial),
    denom_sig BLOB NOT NULL,
    -- What is left to spend (value minus deposits, plus refunds).
    remaining_val INTEGER NOT NULL CHECK (remaining_val >= 0),
    remaining_frac INTEGER NOT NULL CHECK (remaining_frac >= 0)
);

-- One row per deposit request (a batch): what the merchant is owed once the wire deadline
-- passed, minus refunds and deposit fees.
CREATE TABLE batch_deposits (
    batch_deposit_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_pub BLOB NOT NULL CHECK (length(merchant_pub) = 32),
    h_contract_terms BLOB NOT NULL CHECK (length(h_contract_terms) = 64),
    merchant_payto TEXT NOT NULL,
    h_payto BLOB NOT NULL,
    wire_salt BLOB NOT NULL CHECK (length(wire_salt) = 16),
    wallet_timestamp INTEGER NOT NULL,
    exchange_timestamp INTEGER NOT NULL,
    refund_deadline INTEGER NOT NULL,
    wire_deadline INTEGER NOT NULL,
    wallet_data_hash BLOB,
    h_coin_sigs BLOB NOT NULL CHECK (length(h_coin_sigs) = 64),
    total_without_fee_val INTEGER NOT NULL,
    total_without_fee_frac INTEGER NOT NULL,
    -- Settled by the aggregator: wired (wtid set, in the same transaction that records the
    -- wire transfer), or owed nothing (wtid NULL: fully refunded, or no more than its deposit
    -- fees) and closed without a transfer. Refunds are refused once settled.
    done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    -- Owed something, but its merchant account's due total did not exceed the wire fee when
    -- the aggregator last tried: it is no longer due by itself, and joins the account's
    -- aggregate again when another deposit of the account becomes due (or a refund clears it).
    waiting INTEGER NOT NULL DEFAULT 0 CHECK (waiting IN (0, 1)),
    wtid BLOB,
    UNIQUE (h_contract_terms, merchant_pub, h_coin_sigs),
    CHECK (wtid IS NULL OR done = 1),
    CHECK (done = 0 OR waiting = 0)
);
-- What the aggregator looks at: due batches not settled and not waiting.
CREATE INDEX batch_deposits_due ON batch_deposits (wire_deadline) WHERE done = 0 AND waiting = 0;
-- An aggregate takes every open batch of its merchant account, the waiting ones included.
CREATE INDEX batch_deposits_open_by_account ON batch_deposits (merchant_pub, merchant_payto)
    WHERE done = 0;
-- GET /transfers/$WTID lists the batches of a wire transfer.
CREATE INDEX batch_deposits_by_wtid ON batch_deposits (wtid) WHERE wtid IS NOT NULL;

CREATE TABLE coin_deposits (
    coin_deposit_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_deposit_serial INTEGER NOT NULL REFERENCES batch_deposits (batch_deposit_serial),
    coin_pub BLOB NOT NULL REFERENCES known_coins (coin_pub),
    coin_sig BLOB NOT NULL CHECK (length(coin_sig) = 64),
    amount_with_fee_val INTEGER NOT NULL,
    amount_with_fee_frac INTEGER NOT NULL,
    deposit_fee_val INTEGER NOT NULL,
    deposit_fee_frac INTEGER NOT NULL,
    UNIQUE (coin_pub, coin_sig)
);
CREATE INDEX coin_deposits_by_coin ON coin_deposits (coin_pub);
CREATE INDEX coin_deposits_by_batch ON coin_deposits (batch_deposit_serial);

CREATE TABLE refunds (
    refund_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    coin_deposit_serial INTEGER NOT NULL REFERENCES coin_deposits (coin_deposit_serial),
    coin_pub BLOB NOT NULL,
    merchant_sig BLOB NOT NULL CHECK (length(merchant_sig) = 64),
    rtransaction_id INTEGER NOT NULL,
    amount_val INTEGER NOT NULL,
    amount_frac INTEGER NOT NULL,
    refund_fee_val INTEGER NOT NULL,
    refund_fee_frac INTEGER NOT NULL,
    UNIQUE (coin_deposit_serial, rtransaction_id)
);
CREATE INDEX refunds_by_coin ON refunds (coin_pub);

-- ---------------------------------------------------------------- settlement

-- One outgoing wire transfer per aggregation; `gateway_row_id` set once the Wire Gateway
-- accepted it (the transfer worker retries with the same request_uid until then).
CREATE TABLE wire_out (
    wire_out_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    wtid BLOB NOT NULL UNIQUE CHECK (length(wtid) = 32),
    request_uid BLOB NOT NULL UNIQUE CHECK (length(request_uid) = 64),
    execution_date INTEGER NOT NULL,
    merchant_pub BLOB NOT NULL,
    merchant_payto TEXT NOT NULL,
    h_payto BLOB NOT NULL,
    account_section TEXT NOT NULL,
    amount_val INTEGER NOT NULL,
    amount_frac INTEGER NOT NULL,
    wire_fee_val INTEGER NOT NULL,
    wire_fee_frac INTEGER NOT NULL,
    gateway_row_id INTEGER,
    next_attempt INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX wire_out_pending ON wire_out (next_attempt) WHERE gateway_row_id IS NULL;
