-- The wallet's database (SQLite only). Money as (value, fraction), times as microseconds,
-- keys as BLOBs. Every state change of a withdrawal is one transaction.

CREATE TABLE exchanges (
    base_url TEXT PRIMARY KEY,
    master_pub BLOB NOT NULL,
    currency TEXT NOT NULL,
    -- The verified /keys as the exchange sent it (for fees, accounts, expiry).
    keys_json TEXT NOT NULL,
    keys_updated INTEGER NOT NULL,
    -- The version (ETag) of the terms the exchange serves now, and the one the user accepted.
    tos_etag TEXT,
    tos_accepted_etag TEXT
);

CREATE TABLE denominations (
    exchange_base_url TEXT NOT NULL REFERENCES exchanges (base_url),
    h_denom_pub BLOB NOT NULL,
    cipher TEXT NOT NULL CHECK (cipher IN ('RSA', 'CS')),
    denom_pub BLOB NOT NULL,
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
    PRIMARY KEY (exchange_base_url, h_denom_pub)
);

CREATE TABLE withdrawal_groups (
    group_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('bank-integrated', 'manual')),
    state TEXT NOT NULL,
    exchange_base_url TEXT NOT NULL REFERENCES exchanges (base_url),
    currency TEXT NOT NULL,
    reserve_priv BLOB NOT NULL,
    reserve_pub BLOB NOT NULL UNIQUE,
    -- Every planchet's secrets derive from this seed and the planchet's index: a retry after a
    -- crash sends the same request.
    seed BLOB NOT NULL,
    amount_val INTEGER NOT NULL,
    amount_frac INTEGER NOT NULL,
    bank_integration_base TEXT,
    wopid TEXT,
    -- The exchange account the money goes to (registered at the bank, or to wire manually).
    exchange_account TEXT,
    created INTEGER NOT NULL,
    finished INTEGER,
    last_error TEXT
);

CREATE TABLE planchets (
    group_id TEXT NOT NULL REFERENCES withdrawal_groups (group_id),
    coin_index INTEGER NOT NULL,
    h_denom_pub BLOB NOT NULL,
    withdrawn BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (group_id, coin_index)
);

CREATE TABLE coins (
    coin_pub BLOB PRIMARY KEY,
    coin_priv BLOB NOT NULL,
    exchange_base_url TEXT NOT NULL REFERENCES exchanges (base_url),
    h_denom_pub BLOB NOT NULL,
    currency TEXT NOT NULL,
    value_val INTEGER NOT NULL,
    value_frac INTEGER NOT NULL,
    -- The unblinded denomination signature as its JSON wire form.
    denom_sig TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('fresh', 'dormant', 'spent')),
    group_id TEXT NOT NULL REFERENCES withdrawal_groups (group_id),
    coin_index INTEGER NOT NULL,
    created INTEGER NOT NULL,
    UNIQUE (group_id, coin_index)
);
