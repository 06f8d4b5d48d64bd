-- Settlement (H4): what the exchange says about each deposit once the wire deadline passed, and
-- the wire transfers that paid them. Kept in step with ../postgres/0005_settlement.sql.

-- When the settlement worker asks the exchange about the deposit next (microseconds; 0 = as
-- soon as the order's wire deadline passed), and what the coin contributed to its transfer
-- (deposit minus deposit fee and refunds, as the exchange signed it).
ALTER TABLE deposits ADD COLUMN next_check BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deposits ADD COLUMN wired_val BIGINT;
ALTER TABLE deposits ADD COLUMN wired_frac INTEGER;
CREATE INDEX deposits_unsettled ON deposits (next_check) WHERE wtid IS NULL;

-- An aggregated wire transfer of an exchange to an instance (GET /transfers/$WTID).
CREATE TABLE transfers (
  transfer_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_serial INTEGER NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
  exchange_url TEXT NOT NULL,
  wtid BLOB NOT NULL CHECK (length(wtid) = 32),
  payto_uri TEXT NOT NULL,
  execution_time BIGINT NOT NULL,
  total_val BIGINT NOT NULL,
  total_frac INTEGER NOT NULL,
  wire_fee_val BIGINT NOT NULL,
  wire_fee_frac INTEGER NOT NULL,
  UNIQUE (instance_serial, exchange_url, wtid)
);
