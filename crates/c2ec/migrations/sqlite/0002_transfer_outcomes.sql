-- Transfer outcomes (Wire Gateway v3). Kept in step with ../postgres/0002_transfer_outcomes.sql.
--
-- The outgoing history lists only transfers the card processor carried out, numbered in the
-- order they succeeded: a transfer that succeeds late gets a fresh, higher row id, so a client
-- paging the history by offset never misses it (transfer row ids are handed out when the
-- exchange asks, not when the refund happens).
CREATE TABLE outgoing (
  row_id INTEGER PRIMARY KEY AUTOINCREMENT,
  transfer_id INTEGER NOT NULL UNIQUE REFERENCES transfers(row_id),
  created_at BIGINT NOT NULL
);
INSERT INTO outgoing (transfer_id, created_at)
  SELECT row_id, created_at FROM transfers WHERE status = 'refunded' ORDER BY row_id;

-- What is already promised to a card transaction is summed on every transfer to it.
CREATE INDEX transfers_by_target ON transfers (target_tx_id) WHERE target_tx_id IS NOT NULL;
-- A wtid names one transfer (BANK_TRANSFER_WTID_REUSED otherwise).
CREATE INDEX transfers_by_wtid ON transfers (wtid);
