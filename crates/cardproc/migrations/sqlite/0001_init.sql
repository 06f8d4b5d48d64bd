-- Card processor schema (SQLite). Money is (value BIGINT, fraction INTEGER), times BIGINT µs.
-- The PostgreSQL schema has the same tables and constraints (migrations/postgres/0001_init.sql)
-- plus one stored function per hot write; on SQLite those are writer closures (src/db/sqlite.rs).

CREATE TABLE api_user (
    -- INTEGER PRIMARY KEY: the rowid itself, so an authentication is one b-tree lookup.
    user_id INTEGER PRIMARY KEY CHECK (user_id > 0),
    -- base64 MAC secret: the server must compute HMACs with it, so it cannot be hashed.
    secret TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('terminal', 'reader')),
    space_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE card_transaction (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id BIGINT NOT NULL,
    -- Only the states the processor stores (readers may see AUTHORIZED as FULFILL once due).
    state TEXT NOT NULL
        CHECK (state IN ('PENDING', 'AUTHORIZED', 'FULFILL', 'DECLINE', 'FAILED', 'VOIDED')),
    currency TEXT NOT NULL,
    amount_val BIGINT NOT NULL,
    amount_frac INTEGER NOT NULL,
    completed_val BIGINT NOT NULL DEFAULT 0,
    completed_frac INTEGER NOT NULL DEFAULT 0,
    refunded_val BIGINT NOT NULL DEFAULT 0,
    refunded_frac INTEGER NOT NULL DEFAULT 0,
    merchant_reference TEXT NOT NULL,
    terminal_id TEXT,
    meta_data TEXT NOT NULL,
    card_masked TEXT,
    failure_reason TEXT,
    created_by BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    authorized_at BIGINT,
    completed_at BIGINT,
    failed_at BIGINT,
    -- Delayed finality: an AUTHORIZED row becomes FULFILL at this time.
    fulfill_at BIGINT,
    CONSTRAINT card_transaction_amounts_valid CHECK (
        amount_val >= 0 AND amount_frac >= 0 AND amount_frac < 100000000
        AND completed_val >= 0 AND completed_frac >= 0 AND completed_frac < 100000000
        AND refunded_val >= 0 AND refunded_frac >= 0 AND refunded_frac < 100000000),
    -- The last line of defence of "never refund more than was captured".
    CONSTRAINT card_transaction_refunded_within_completed
        CHECK ((refunded_val, refunded_frac) <= (completed_val, completed_frac))
);

CREATE INDEX card_transaction_due_idx ON card_transaction (state, fulfill_at);

CREATE TABLE refund (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id BIGINT NOT NULL,
    external_id TEXT NOT NULL,
    transaction_id BIGINT NOT NULL REFERENCES card_transaction (id),
    amount_val BIGINT NOT NULL,
    amount_frac INTEGER NOT NULL,
    refund_type TEXT NOT NULL,
    merchant_reference TEXT,
    created_by BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT refund_amount_positive CHECK (
        amount_val >= 0 AND amount_frac >= 0 AND amount_frac < 100000000
        AND (amount_val > 0 OR amount_frac > 0)),
    UNIQUE (space_id, external_id)
);

CREATE INDEX refund_transaction_idx ON refund (transaction_id);
