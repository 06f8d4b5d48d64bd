-- The legacy face (protocol v12-14, wallets of late 2022): an account's master signature in the
-- v12 layout (purpose 1030 over the payto hash only), shown in the legacy /wire. NULL until the
-- offline key uploads it (`master_sig_wire_v12` of POST /management/wire); the legacy /wire
-- lists only accounts that have one.
ALTER TABLE wire_accounts ADD COLUMN master_sig_wire_v12 BLOB
    CHECK (master_sig_wire_v12 IS NULL OR length(master_sig_wire_v12) = 64);
