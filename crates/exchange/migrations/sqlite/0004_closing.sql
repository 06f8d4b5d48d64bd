-- Reserve closing (SQLite; kept in step with ../postgres/0004_closing.sql). A reserve whose
-- expiration date passed with a balance left is closed: ONE writer transaction empties it and
-- records the closing with everything its transfer back needs (amount, closing fee, receiver,
-- the exchange account that pays, WTID, request_uid, base URL), so every attempt of the
-- transfer is the same request and the Wire Gateway executes it once.

-- One row per closing. `amount` is the whole balance taken from the reserve (as the C
-- exchange's reserves_close.amount and the 1040 signature name it), `closing_fee` what the
-- exchange keeps (the closing fee of the receiver's wire method, at most the amount),
-- `transferred` the rest, wired back to `receiver_payto` (the account that funded the reserve)
-- through the Wire Gateway of `account_section`. `done` once the gateway accepted the transfer
-- (gateway_row_id) or at once when nothing is left to send.
CREATE TABLE reserves_close (
    close_serial INTEGER PRIMARY KEY AUTOINCREMENT,
    reserve_pub BLOB NOT NULL REFERENCES reserves (reserve_pub),
    -- The closings of the reserve before this one (0 for the first): fixes the request_uid.
    close_number INTEGER NOT NULL CHECK (close_number >= 0),
    execution_date INTEGER NOT NULL,
    receiver_payto TEXT NOT NULL,
    account_section TEXT NOT NULL,
    wtid BLOB NOT NULL UNIQUE CHECK (length(wtid) = 32),
    request_uid BLOB NOT NULL UNIQUE CHECK (length(request_uid) = 64),
    amount_val INTEGER NOT NULL CHECK (amount_val >= 0),
    amount_frac INTEGER NOT NULL CHECK (amount_frac >= 0),
    closing_fee_val INTEGER NOT NULL CHECK (closing_fee_val >= 0),
    closing_fee_frac INTEGER NOT NULL CHECK (closing_fee_frac >= 0),
    transferred_val INTEGER NOT NULL CHECK (transferred_val >= 0),
    transferred_frac INTEGER NOT NULL CHECK (transferred_frac >= 0),
    exchange_base_url TEXT NOT NULL,
    gateway_row_id INTEGER,
    done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    next_attempt INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    UNIQUE (reserve_pub, close_number),
    CHECK (gateway_row_id IS NULL OR done = 1),
    CHECK (done = 0 OR gateway_row_id IS NOT NULL
           OR (transferred_val = 0 AND transferred_frac = 0))
);
-- What the closing transfer worker looks at.
CREATE INDEX reserves_close_pending ON reserves_close (next_attempt) WHERE done = 0;

-- Expired reserves that could not be closed (no closing fee for the receiver's wire method at
-- the expiration date, no account that may debit through the right Wire Gateway, no usable
-- origin): they stay open and are tried again at next_attempt (or at once when key material
-- changes or the exchange restarts). `reason` is what is missing, as the closer logged it.
CREATE TABLE reserves_close_wait (
    reserve_pub BLOB PRIMARY KEY REFERENCES reserves (reserve_pub),
    reason TEXT NOT NULL,
    since INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 1
);

-- The closer's scan: reserves with a balance, by expiration date.
CREATE INDEX reserves_expiring ON reserves (expiration_date)
    WHERE balance_val > 0 OR balance_frac > 0;
