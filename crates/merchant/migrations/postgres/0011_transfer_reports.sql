-- Transfers reported by the merchant's bank (POST /private/transfers) next to what the exchange
-- says about them. A transfer row now holds two independent facts, each NULL until known:
-- the exchange's statement (payto_uri, execution_time, total, wire fee: written by the
-- settlement worker, or by the report when the exchange already knew the WTID) and the bank's
-- confirmation (credit_payto_uri, credit amount). Both are kept when they disagree, so the
-- operator sees the mismatch. Kept in step with ../sqlite/0011_transfer_reports.sql.
ALTER TABLE transfers ALTER COLUMN payto_uri DROP NOT NULL;
ALTER TABLE transfers ALTER COLUMN execution_time DROP NOT NULL;
ALTER TABLE transfers ALTER COLUMN total_val DROP NOT NULL;
ALTER TABLE transfers ALTER COLUMN total_frac DROP NOT NULL;
ALTER TABLE transfers ALTER COLUMN wire_fee_val DROP NOT NULL;
ALTER TABLE transfers ALTER COLUMN wire_fee_frac DROP NOT NULL;
ALTER TABLE transfers ADD COLUMN credit_payto_uri TEXT;
ALTER TABLE transfers ADD COLUMN credit_val BIGINT;
ALTER TABLE transfers ADD COLUMN credit_frac INTEGER;
ALTER TABLE transfers ADD CONSTRAINT transfers_exchange_statement CHECK (
  (execution_time IS NULL) = (payto_uri IS NULL)
  AND (execution_time IS NULL) = (total_val IS NULL)
  AND (execution_time IS NULL) = (wire_fee_val IS NULL));
ALTER TABLE transfers ADD CONSTRAINT transfers_bank_report CHECK (
  (credit_val IS NULL) = (credit_payto_uri IS NULL));
ALTER TABLE transfers ADD CONSTRAINT transfers_some_fact CHECK (
  execution_time IS NOT NULL OR credit_val IS NOT NULL);
