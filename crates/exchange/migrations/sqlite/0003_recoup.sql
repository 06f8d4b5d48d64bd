-- Recoup (SQLite): coins of a revoked denomination pay their remaining value back. Kept in
-- step with ../postgres/0003_recoup.sql. Each recoup takes ALL that is left of the coin (the
-- coin's known_coins row goes to zero in the same writer transaction, see
-- src/db/sqlite/recoup.rs); a coin with nothing left is recouped only once more as a replay
-- (the same answer, no money).

-- A withdrawn coin paid back into the reserve it was withdrawn from. The withdrawal is the one
-- whose envelope hash the exchange recomputed from the coin's key and blinding secret
-- (coin_blind, revealed by the wallet); reserve_pub is that withdrawal's reserve, kept here for
-- the reserve's history and the audit.
CREATE TABLE recoups (
    recoup_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    coin_pub BLOB NOT NULL REFERENCES known_coins (coin_pub),
    coin_sig BLOB NOT NULL CHECK (length(coin_sig) = 64),
    coin_blind BLOB NOT NULL CHECK (length(coin_blind) = 32),
    amount_val INTEGER NOT NULL CHECK (amount_val >= 0),
    amount_frac INTEGER NOT NULL CHECK (amount_frac >= 0),
    recoup_timestamp INTEGER NOT NULL,
    withdraw_serial INTEGER NOT NULL REFERENCES withdrawals (withdraw_serial),
    reserve_pub BLOB NOT NULL REFERENCES reserves (reserve_pub),
    CHECK (amount_val > 0 OR amount_frac > 0)
);
CREATE INDEX recoups_by_coin ON recoups (coin_pub);
CREATE INDEX recoups_by_reserve ON recoups (reserve_pub);

-- A coin made by a refresh paid back into the coin that was melted for it (the old coin's
-- history shows OLD-COIN-RECOUP, this one's RECOUP-REFRESH). The fresh coin is the one whose
-- envelope hash, recomputed from its key and blinding secret, a reveal signed (rrc_serial);
-- old_coin_pub is that reveal's melted coin, kept here for the old coin's history, the audit
-- and the zombie rule (an old coin credited this way may still be melted after its
-- denomination's deposit expiry).
CREATE TABLE recoup_refreshes (
    recoup_refresh_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    coin_pub BLOB NOT NULL REFERENCES known_coins (coin_pub),
    old_coin_pub BLOB NOT NULL REFERENCES known_coins (coin_pub),
    coin_sig BLOB NOT NULL CHECK (length(coin_sig) = 64),
    coin_blind BLOB NOT NULL CHECK (length(coin_blind) = 32),
    amount_val INTEGER NOT NULL CHECK (amount_val >= 0),
    amount_frac INTEGER NOT NULL CHECK (amount_frac >= 0),
    recoup_timestamp INTEGER NOT NULL,
    rrc_serial INTEGER NOT NULL REFERENCES refresh_revealed_coins (rrc_serial),
    CHECK (amount_val > 0 OR amount_frac > 0)
);
CREATE INDEX recoup_refreshes_by_coin ON recoup_refreshes (coin_pub);
CREATE INDEX recoup_refreshes_by_old_coin ON recoup_refreshes (old_coin_pub);
