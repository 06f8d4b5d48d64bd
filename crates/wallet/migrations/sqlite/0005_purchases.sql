-- Payments to merchants and the refunds they grant.
--
-- A coin now knows what is left of it: a payment may take part of a coin (the change is
-- refreshed), a refund gives part of a spent coin back (refreshed too). `fresh` coins have
-- all their value left; `spent` coins whose remainder is above zero wait for a refresh.
ALTER TABLE coins ADD COLUMN remaining_val INTEGER NOT NULL DEFAULT 0;
ALTER TABLE coins ADD COLUMN remaining_frac INTEGER NOT NULL DEFAULT 0;
UPDATE coins SET remaining_val = value_val, remaining_frac = value_frac
WHERE status IN ('fresh', 'dormant');

-- A coin may now be refreshed more than once (its change after a payment, then what a refund
-- gave back): refresh_groups loses UNIQUE (old_coin_pub). Rebuilt in the order the foreign
-- key of refresh_planchets allows.
CREATE TABLE refresh_groups_v2 (
    refresh_id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('melting', 'revealing', 'done')),
    exchange_base_url TEXT NOT NULL REFERENCES exchanges (base_url),
    old_coin_pub BLOB NOT NULL,
    rms BLOB NOT NULL,
    currency TEXT NOT NULL,
    amount_val INTEGER NOT NULL,
    amount_frac INTEGER NOT NULL,
    noreveal_index INTEGER,
    created INTEGER NOT NULL,
    finished INTEGER,
    last_error TEXT
);
INSERT INTO refresh_groups_v2 SELECT * FROM refresh_groups;
CREATE TABLE refresh_planchets_v2 (
    refresh_id TEXT NOT NULL REFERENCES refresh_groups_v2 (refresh_id),
    coin_index INTEGER NOT NULL,
    h_denom_pub BLOB NOT NULL,
    PRIMARY KEY (refresh_id, coin_index)
);
INSERT INTO refresh_planchets_v2 SELECT * FROM refresh_planchets;
DROP TABLE refresh_planchets;
DROP TABLE refresh_groups;
ALTER TABLE refresh_groups_v2 RENAME TO refresh_groups;
ALTER TABLE refresh_planchets_v2 RENAME TO refresh_planchets;
CREATE INDEX refresh_groups_by_coin ON refresh_groups (old_coin_pub);

CREATE TABLE purchases (
    proposal_id TEXT PRIMARY KEY,
    merchant_base_url TEXT NOT NULL,
    order_id TEXT NOT NULL,
    claim_token TEXT,
    -- The session of the last URI (empty: none).
    session_id TEXT NOT NULL DEFAULT '',
    -- The claim nonce, stored before the claim leaves: a retried claim is the same claim.
    nonce_priv BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('claiming', 'proposed', 'paying', 'done', 'repurchase', 'aborted')),
    -- The contract terms exactly as the merchant sent them (the hash is over these).
    contract_json TEXT,
    h_contract BLOB,
    merchant_sig BLOB,
    merchant_pub BLOB,
    currency TEXT,
    amount_val INTEGER,
    amount_frac INTEGER,
    summary TEXT,
    fulfillment_url TEXT,
    -- The merchant's payment confirmation (1104), the proof /paid shows again.
    pay_sig BLOB,
    -- A repurchase: the earlier purchase of the same fulfillment URL.
    repurchase_of TEXT REFERENCES purchases (proposal_id),
    created INTEGER NOT NULL,
    paid INTEGER,
    last_error TEXT,
    UNIQUE (merchant_base_url, order_id)
);
CREATE INDEX purchases_by_fulfillment ON purchases (merchant_base_url, fulfillment_url);

-- The coins of a payment with their signed deposit permissions: stored with the coins marked
-- spent, before /pay leaves, so a resumed payment sends the identical request.
CREATE TABLE purchase_coins (
    proposal_id TEXT NOT NULL REFERENCES purchases (proposal_id),
    coin_index INTEGER NOT NULL,
    coin_pub BLOB NOT NULL REFERENCES coins (coin_pub),
    contribution_val INTEGER NOT NULL,
    contribution_frac INTEGER NOT NULL,
    deposit_fee_val INTEGER NOT NULL,
    deposit_fee_frac INTEGER NOT NULL,
    coin_sig BLOB NOT NULL,
    PRIMARY KEY (proposal_id, coin_index),
    UNIQUE (proposal_id, coin_pub)
);

-- Refunds the exchange executed for a purchase's coins (its signature verified), each once.
CREATE TABLE purchase_refunds (
    proposal_id TEXT NOT NULL REFERENCES purchases (proposal_id),
    coin_pub BLOB NOT NULL,
    rtransaction_id INTEGER NOT NULL,
    amount_val INTEGER NOT NULL,
    amount_frac INTEGER NOT NULL,
    -- What the exchange keeps of it; the coin got amount - fee back.
    fee_val INTEGER NOT NULL,
    fee_frac INTEGER NOT NULL,
    execution_time INTEGER NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (proposal_id, coin_pub, rtransaction_id)
);
