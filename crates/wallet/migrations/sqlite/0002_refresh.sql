-- Refresh: a coin melted into fresh coins (melt, then reveal), resumable like a withdrawal.
-- Coins now come from withdrawals and refreshes: their origin is the transaction id.

CREATE TABLE coins_v2 (
    coin_pub BLOB PRIMARY KEY,
    coin_priv BLOB NOT NULL,
    exchange_base_url TEXT NOT NULL REFERENCES exchanges (base_url),
    h_denom_pub BLOB NOT NULL,
    currency TEXT NOT NULL,
    value_val INTEGER NOT NULL,
    value_frac INTEGER NOT NULL,
    denom_sig TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('fresh', 'dormant', 'spent')),
    -- txn:withdrawal:… or txn:refresh:…, and the coin's index in it.
    origin TEXT NOT NULL,
    coin_index INTEGER NOT NULL,
    created INTEGER NOT NULL,
    UNIQUE (origin, coin_index)
);
INSERT INTO coins_v2
SELECT coin_pub, coin_priv, exchange_base_url, h_denom_pub, currency, value_val, value_frac,
       denom_sig, status, 'txn:withdrawal:' || group_id, coin_index, created
FROM coins;
DROP TABLE coins;
ALTER TABLE coins_v2 RENAME TO coins;

CREATE TABLE refresh_groups (
    refresh_id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('melting', 'revealing', 'done')),
    exchange_base_url TEXT NOT NULL REFERENCES exchanges (base_url),
    old_coin_pub BLOB NOT NULL UNIQUE,
    -- Every transfer key and fresh coin derives from it: a retried melt or reveal is the same
    -- request.
    rms BLOB NOT NULL,
    currency TEXT NOT NULL,
    -- What the melt takes from the old coin (fresh coins, their withdraw fees, the melt fee).
    amount_val INTEGER NOT NULL,
    amount_frac INTEGER NOT NULL,
    noreveal_index INTEGER,
    created INTEGER NOT NULL,
    finished INTEGER,
    last_error TEXT
);

CREATE TABLE refresh_planchets (
    refresh_id TEXT NOT NULL REFERENCES refresh_groups (refresh_id),
    coin_index INTEGER NOT NULL,
    h_denom_pub BLOB NOT NULL,
    PRIMARY KEY (refresh_id, coin_index)
);
