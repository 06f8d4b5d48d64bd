-- Transfers reported by the merchant's bank (POST /private/transfers) next to what the exchange
-- says about them. A transfer row now holds two independent facts, each NULL until known:
-- the exchange's statement (payto_uri, execution_time, total, wire fee: written by the
-- settlement worker, or by the report when the exchange already knew the WTID) and the bank's
-- confirmation (credit_payto_uri, credit amount). Both are kept when they disagree, so the
-- operator sees the mismatch. SQLite cannot drop NOT NULL in place: the table is rebuilt.
-- Kept in step with ../postgres/0011_transfer_reports.sql.
CREATE TABLE transfers_new (
  transfer_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_serial INTEGER NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
  exchange_url TEXT NOT NULL,
  wtid BLOB NOT NULL CHECK (length(wtid) = 32),
  payto_uri TEXT,
  execution_time BIGINT,
  total_val BIGINT,
  total_frac INTEGER,
  wire_fee_val BIGINT,
  wire_fee_frac INTEGER,
  credit_payto_uri TEXT,
  credit_val BIGINT,
  credit_frac INTEGER,
  UNIQUE (instance_serial, exchange_url, wtid),
  CHECK ((execution_time IS NULL) = (payto_uri IS NULL)
     AND (execution_time IS NULL) = (total_val IS NULL)
     AND (execution_time IS NULL) = (wire_fee_val IS NULL)),
  CHECK ((credit_val IS NULL) = (credit_payto_uri IS NULL)),
  CHECK (execution_time IS NOT NULL OR credit_val IS NOT NULL)
);
INSERT INTO transfers_new (transfer_serial, instance_serial, exchange_url, wtid, payto_uri,
                           execution_time, total_val, total_frac, wire_fee_val, wire_fee_frac)
SELECT transfer_serial, instance_serial, exchange_url, wtid, payto_uri, execution_time,
       total_val, total_frac, wire_fee_val, wire_fee_frac
  FROM transfers;
DROP TABLE transfers;
ALTER TABLE transfers_new RENAME TO transfers;
