-- Payouts (SQLite): the processor pays the captured card payments, net of refunds and fees, to
-- the merchant's bank account in batches (src/payout.rs). Each captured transaction and each
-- refund is covered by exactly one payout (its payout_id, set once under the writer), so every
-- captured unit is paid out exactly once. Same tables as migrations/postgres/0002_payout.sql.

CREATE TABLE payout (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- Sums of what this payout covers.
    captured_val BIGINT NOT NULL,
    captured_frac INTEGER NOT NULL,
    refunded_val BIGINT NOT NULL,
    refunded_frac INTEGER NOT NULL,
    fees_val BIGINT NOT NULL,
    fees_frac INTEGER NOT NULL,
    -- The negative balance left by the previous payout, settled here first.
    carried_val BIGINT NOT NULL,
    carried_frac INTEGER NOT NULL,
    -- What is wired: captured - refunded - fees - carried when positive, else zero ...
    amount_val BIGINT NOT NULL,
    amount_frac INTEGER NOT NULL,
    -- ... and the rest is carried to the next payout.
    debt_val BIGINT NOT NULL,
    debt_frac INTEGER NOT NULL,
    transactions INTEGER NOT NULL CHECK (transactions > 0),
    refunds INTEGER NOT NULL CHECK (refunds >= 0),
    -- The bank's idempotency key (random, fixed at creation): a retry after a crash repeats
    -- the same transfer request, which the bank answers with the transfer it already made.
    request_uid BLOB NOT NULL UNIQUE CHECK (length(request_uid) = 32),
    -- PENDING: to be wired; PAID: the bank booked it; NETTED: nothing to wire (amount zero).
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'PAID', 'NETTED')),
    created_at BIGINT NOT NULL,
    paid_at BIGINT,
    bank_row_id BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    CONSTRAINT payout_amounts_valid CHECK (
        captured_val >= 0 AND captured_frac >= 0 AND captured_frac < 100000000
        AND refunded_val >= 0 AND refunded_frac >= 0 AND refunded_frac < 100000000
        AND fees_val >= 0 AND fees_frac >= 0 AND fees_frac < 100000000
        AND carried_val >= 0 AND carried_frac >= 0 AND carried_frac < 100000000
        AND amount_val >= 0 AND amount_frac >= 0 AND amount_frac < 100000000
        AND debt_val >= 0 AND debt_frac >= 0 AND debt_frac < 100000000),
    -- A payout either wires something or carries a debt, never both.
    CONSTRAINT payout_amount_or_debt CHECK (
        (amount_val = 0 AND amount_frac = 0) OR (debt_val = 0 AND debt_frac = 0)),
    CONSTRAINT payout_paid_has_row CHECK ((state = 'PAID') = (bank_row_id IS NOT NULL))
);

CREATE INDEX payout_space_idx ON payout (space_id, currency, id);
CREATE INDEX payout_pending_idx ON payout (state, id);

ALTER TABLE card_transaction ADD COLUMN payout_id BIGINT REFERENCES payout (id);
ALTER TABLE refund ADD COLUMN payout_id BIGINT REFERENCES payout (id);

-- The captures and refunds not yet covered by a payout (small: a settlement delay's worth).
CREATE INDEX card_transaction_unpaid_idx ON card_transaction (state, completed_at)
    WHERE payout_id IS NULL;
CREATE INDEX card_transaction_payout_idx ON card_transaction (payout_id);
CREATE INDEX refund_unpaid_idx ON refund (transaction_id) WHERE payout_id IS NULL;
CREATE INDEX refund_payout_idx ON refund (payout_id);
