-- C2EC schema (SQLite). Kept in step with ../postgres/0001_init.sql (same tables, constraints
-- and trigger; PostgreSQL adds one stored function per state change, whose steps the SQLite
-- writer closures in src/db/sqlite.rs run in Rust).
-- Times are BIGINT microseconds since the epoch; money is (value BIGINT, fraction INTEGER) in
-- the configured currency; binary keys are BLOBs; booleans are INTEGER 0/1.

CREATE TABLE terminals (
  terminal_id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  -- argon2id PHC string of the terminal's secret; the secret itself is never stored.
  secret_hash TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  created_at BIGINT NOT NULL
);

CREATE TABLE withdrawals (
  withdrawal_id INTEGER PRIMARY KEY AUTOINCREMENT,
  wopid BLOB NOT NULL UNIQUE CHECK (length(wopid) = 32),
  terminal_id INTEGER NOT NULL REFERENCES terminals(terminal_id),
  request_uid TEXT NOT NULL,
  request_hash BLOB NOT NULL,
  amount_val BIGINT,
  amount_frac INTEGER,
  suggested_val BIGINT,
  suggested_frac INTEGER,
  card_fees_val BIGINT NOT NULL,
  card_fees_frac INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'selected', 'confirmed', 'aborted')),
  reserve_pub BLOB UNIQUE CHECK (reserve_pub IS NULL OR length(reserve_pub) = 32),
  exchange_account TEXT,
  provider_tx_id TEXT UNIQUE,
  created_at BIGINT NOT NULL,
  selected_at BIGINT,
  checked_at BIGINT,
  finished_at BIGINT,
  -- attestation scheduling: due when checked and next_attempt_at <= now (a claimed row's
  -- next_attempt_at is the end of its claim's lease)
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT,
  abort_reason TEXT,
  evidence TEXT,
  -- money captured for an aborted operation goes back to the card
  refund_state TEXT NOT NULL DEFAULT 'none'
    CHECK (refund_state IN ('none', 'due', 'done', 'not_needed')),
  refund_id TEXT,
  refund_attempts INTEGER NOT NULL DEFAULT 0,
  refund_next_at BIGINT,
  UNIQUE (terminal_id, request_uid),
  CHECK (status IN ('pending', 'aborted') OR (reserve_pub IS NOT NULL AND exchange_account IS NOT NULL AND amount_val IS NOT NULL)),
  CHECK (status <> 'confirmed' OR provider_tx_id IS NOT NULL),
  CHECK ((amount_val IS NULL) = (amount_frac IS NULL)),
  CHECK ((suggested_val IS NULL) = (suggested_frac IS NULL))
);
CREATE INDEX withdrawals_attest_due ON withdrawals (next_attempt_at) WHERE status = 'selected' AND provider_tx_id IS NOT NULL;
CREATE INDEX withdrawals_expiry ON withdrawals (status, created_at) WHERE status IN ('pending', 'selected');
CREATE INDEX withdrawals_refund_due ON withdrawals (refund_next_at) WHERE refund_state = 'due';

-- The database refuses every transition that is not an edge of the state machine.
CREATE TRIGGER withdrawals_status_machine
BEFORE UPDATE OF status ON withdrawals
WHEN NEW.status <> OLD.status AND NOT (
  (OLD.status = 'pending' AND NEW.status IN ('selected', 'aborted')) OR
  (OLD.status = 'selected' AND NEW.status IN ('confirmed', 'aborted'))
)
BEGIN
  SELECT RAISE(ABORT, 'c2ec: illegal withdrawal status transition');
END;

-- Audit trail: one row per state change or noteworthy event, append-only.
CREATE TABLE withdrawal_events (
  event_id INTEGER PRIMARY KEY AUTOINCREMENT,
  withdrawal_id INTEGER NOT NULL REFERENCES withdrawals(withdrawal_id),
  old_status TEXT,
  new_status TEXT NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT,
  created_at BIGINT NOT NULL
);
CREATE INDEX withdrawal_events_by_op ON withdrawal_events (withdrawal_id);

-- Wire gateway incoming history: exactly one row per confirmed withdrawal (plus admin rows).
CREATE TABLE incoming (
  row_id INTEGER PRIMARY KEY AUTOINCREMENT,
  withdrawal_id INTEGER UNIQUE REFERENCES withdrawals(withdrawal_id),
  reserve_pub BLOB NOT NULL UNIQUE,
  amount_val BIGINT NOT NULL,
  amount_frac INTEGER NOT NULL,
  debit_account TEXT NOT NULL,
  created_at BIGINT NOT NULL
);

-- Wire gateway transfers from the exchange: executed as card refunds. Status `pending`
-- (without a failure note: pending; with one: transient failure), `refunded`, `failed`.
CREATE TABLE transfers (
  row_id INTEGER PRIMARY KEY AUTOINCREMENT,
  request_uid BLOB NOT NULL UNIQUE,
  request_hash BLOB NOT NULL,
  amount_val BIGINT NOT NULL,
  amount_frac INTEGER NOT NULL,
  wtid BLOB NOT NULL,
  exchange_base_url TEXT NOT NULL,
  credit_account TEXT NOT NULL,
  -- the card transaction the credit account names, when it is one of ours
  target_tx_id TEXT,
  created_at BIGINT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'refunded', 'failed')),
  refund_id TEXT,
  failure TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT
);
CREATE INDEX transfers_due ON transfers (next_attempt_at) WHERE status = 'pending';
-- What is already promised to a card transaction is summed on every transfer to it.
CREATE INDEX transfers_by_target ON transfers (target_tx_id) WHERE target_tx_id IS NOT NULL;
-- A wtid names one transfer (BANK_TRANSFER_WTID_REUSED otherwise).
CREATE INDEX transfers_by_wtid ON transfers (wtid);

-- The outgoing history lists only transfers the card processor carried out, numbered in the
-- order they succeeded: a transfer that succeeds late gets a fresh, higher row id, so a client
-- paging the history by offset never misses it (transfer row ids are handed out when the
-- exchange asks, not when the refund happens).
CREATE TABLE outgoing (
  row_id INTEGER PRIMARY KEY AUTOINCREMENT,
  transfer_id INTEGER NOT NULL UNIQUE REFERENCES transfers(row_id),
  created_at BIGINT NOT NULL
);

-- Card payments reported for an operation that already has another card transaction bound to
-- it (the terminal charged twice, or retried the payment under a new id). They can never fund
-- the operation, so each one captured for this operation goes back to the card, once.
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
