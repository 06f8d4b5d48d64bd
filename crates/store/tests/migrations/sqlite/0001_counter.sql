-- A fake service schema for the store's own tests.
CREATE TABLE counter (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE token (
    token_id INTEGER PRIMARY KEY AUTOINCREMENT,
    nonce BLOB NOT NULL UNIQUE,
    amount_val BIGINT NOT NULL,
    amount_frac INTEGER NOT NULL,
    CONSTRAINT token_amount_frac_check CHECK (amount_frac >= 0 AND amount_frac < 100000000)
);
