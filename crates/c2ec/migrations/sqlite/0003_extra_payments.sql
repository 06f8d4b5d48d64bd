-- Card payments reported for an operation that already has another card transaction bound to
-- it (the terminal charged twice, or retried the payment under a new id). They can never fund
-- the operation, so each one captured for this operation goes back to the card, once.
-- Kept in step with ../postgres/0003_extra_payments.sql.
CREATE TABLE extra_payments (
  extra_id INTEGER PRIMARY KEY AUTOINCREMENT,
  withdrawal_id INTEGER NOT NULL REFERENCES withdrawals(withdrawal_id),
  provider_tx_id TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  refund_state TEXT NOT NULL DEFAULT 'due' CHECK (refund_state IN ('due', 'done', 'not_needed')),
  refund_id TEXT,
  refund_attempts INTEGER NOT NULL DEFAULT 0,
  refund_next_at BIGINT
);
CREATE INDEX extra_payments_refund_due ON extra_payments (refund_next_at) WHERE refund_state = 'due';
