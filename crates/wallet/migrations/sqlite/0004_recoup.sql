-- Recoup: a withdrawn coin of a revoked denomination pays its value back into its reserve,
-- which the wallet then withdraws again.

-- R0 ‖ R1 of a CS coin: what its recoup reveals with the blinding seed.
ALTER TABLE coins ADD COLUMN cs_r BLOB;

CREATE TABLE recoups (
    coin_pub BLOB PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES withdrawal_groups (group_id),
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    created INTEGER NOT NULL,
    finished INTEGER,
    last_error TEXT
);
