-- Refresh (SQLite): melts, their reveals and the fresh coins. Kept in step with
-- ../postgres/0002_refresh.sql (same tables, columns and meaning); the steps of its procedures
-- are in src/db/sqlite/refresh.rs, each ONE writer closure.

-- One row per melt, keyed by the commitment rc (a replay of the melt finds it and gets the same
-- noreveal_index). The melt debits the old coin by amount_with_fee in the same transaction
-- (known_coins.remaining). melt_fee is the old coin's refresh fee. deposits_before is how many
-- deposits of the coin were recorded before this melt: the coin's history lists the melt after
-- them, so that history only ever grows at its end (see coin_history.rs). rms, the refresh
-- master secret of a melt with Clause-Schnorr fresh coins, belongs to one melt only (as the C
-- exchange locks it in cs_nonce_locks).
CREATE TABLE refresh_commitments (
    melt_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    rc BLOB NOT NULL UNIQUE CHECK (length(rc) = 64),
    old_coin_pub BLOB NOT NULL REFERENCES known_coins (coin_pub),
    old_coin_sig BLOB NOT NULL CHECK (length(old_coin_sig) = 64),
    amount_with_fee_val INTEGER NOT NULL,
    amount_with_fee_frac INTEGER NOT NULL,
    melt_fee_val INTEGER NOT NULL,
    melt_fee_frac INTEGER NOT NULL,
    noreveal_index INTEGER NOT NULL CHECK (noreveal_index >= 0 AND noreveal_index < 3),
    rms BLOB UNIQUE CHECK (rms IS NULL OR length(rms) = 32),
    deposits_before INTEGER NOT NULL CHECK (deposits_before >= 0),
    execution_date INTEGER NOT NULL
);
CREATE INDEX refresh_commitments_by_coin ON refresh_commitments (old_coin_pub);

-- The reveal of a melt, at most one: the kept set's transfer key and the κ−1 revealed transfer
-- private keys (concatenated, 32 bytes each), which a replay must repeat.
CREATE TABLE refresh_reveals (
    melt_serial INTEGER PRIMARY KEY REFERENCES refresh_commitments (melt_serial),
    transfer_pub BLOB NOT NULL CHECK (length(transfer_pub) = 32),
    transfer_privs BLOB NOT NULL CHECK (length(transfer_privs) = 64),
    execution_date INTEGER NOT NULL
);

-- The fresh coins of a reveal, signed: what link shows the old coin's owner. coin_ev is the
-- envelope (RSA: the blinded message as received; CS: nonce ‖ c0 ‖ c1), h_coin_ev its hash
-- (unique: a recoup-refresh finds the old coin from it), ev_sig the blind signature in storage
-- form (RSA bytes; CS u32be(b) ‖ s), ewv the CS R values (R0 ‖ R1; NULL for RSA),
-- amount_with_fee the denomination's value plus withdraw fee (the audit's refreshed total).
CREATE TABLE refresh_revealed_coins (
    rrc_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    melt_serial INTEGER NOT NULL REFERENCES refresh_reveals (melt_serial),
    freshcoin_index INTEGER NOT NULL,
    denom_serial INTEGER NOT NULL REFERENCES denominations (denom_serial),
    coin_ev BLOB NOT NULL,
    h_coin_ev BLOB NOT NULL UNIQUE CHECK (length(h_coin_ev) = 64),
    link_sig BLOB NOT NULL CHECK (length(link_sig) = 64),
    ev_sig BLOB NOT NULL,
    ewv BLOB CHECK (ewv IS NULL OR length(ewv) = 64),
    amount_with_fee_val INTEGER NOT NULL,
    amount_with_fee_frac INTEGER NOT NULL,
    UNIQUE (melt_serial, freshcoin_index)
);

-- A Clause-Schnorr session nonce signs one envelope per denomination in refreshes (the
-- exchange's R values of a refresh come from the melt seed "rm", those of a withdrawal from
-- "rw", so the two domains lock apart): two challenges signed with one nonce would reveal the
-- denomination's private key.
CREATE TABLE refresh_cs_nonce_locks (
    nonce BLOB NOT NULL CHECK (length(nonce) = 32),
    denom_serial INTEGER NOT NULL REFERENCES denominations (denom_serial),
    h_coin_ev BLOB NOT NULL CHECK (length(h_coin_ev) = 64),
    PRIMARY KEY (nonce, denom_serial)
);
