-- Card processor schema (SQLite). Money is (value BIGINT, fraction INTEGER), times BIGINT µs.

CREATE TABLE api_user (
    user_id BIGINT PRIMARY KEY,
    -- base64 MAC secret: the server must compute HMACs with it, so it cannot be hashed.
    secret TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('terminal', 'reader')),
    space_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE card_transaction (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id BIGINT NOT NULL,
    state TEXT NOT NULL,
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
    version BIGINT NOT NULL DEFAULT 0
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
    UNIQUE (space_id, external_id)
);

CREATE INDEX refund_transaction_idx ON refund (transaction_id);
