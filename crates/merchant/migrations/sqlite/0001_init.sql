-- Merchant backend schema (SQLite). Kept in step with ../postgres/0001_init.sql (same tables,
-- columns and constraints; only the dialect differs).
-- Times are BIGINT microseconds since the epoch; money is (value BIGINT, fraction INTEGER) in the
-- configured currency; binary keys are BLOBs; booleans are INTEGER 0/1; JSON is TEXT, stored as
-- received or built (contract terms are hashed from their stored text).

-- An instance: one merchant (shop) with its own key, accounts, inventory and orders.
CREATE TABLE instances (
  instance_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_id TEXT NOT NULL UNIQUE,
  merchant_pub BLOB NOT NULL UNIQUE CHECK (length(merchant_pub) = 32),
  merchant_priv BLOB NOT NULL CHECK (length(merchant_priv) = 32),
  name TEXT NOT NULL,
  email TEXT,
  phone_number TEXT,
  website TEXT,
  logo TEXT,
  address TEXT NOT NULL DEFAULT '{}',
  jurisdiction TEXT NOT NULL DEFAULT '{}',
  use_stefan INTEGER NOT NULL DEFAULT 0 CHECK (use_stefan IN (0, 1)),
  -- 'external': a reverse proxy authenticates; 'token': Bearer secret-token:<password>, whose
  -- argon2id PHC string is auth_hash.
  auth_method TEXT NOT NULL CHECK (auth_method IN ('external', 'token')),
  auth_hash TEXT,
  default_max_deposit_fee_val BIGINT,
  default_max_deposit_fee_frac INTEGER,
  default_max_wire_fee_val BIGINT,
  default_max_wire_fee_frac INTEGER,
  default_wire_fee_amortization INTEGER NOT NULL DEFAULT 1 CHECK (default_wire_fee_amortization >= 1),
  default_pay_delay BIGINT NOT NULL,
  default_refund_delay BIGINT NOT NULL,
  default_wire_transfer_delay BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
  CHECK (auth_method = 'external' OR auth_hash IS NOT NULL)
);

-- The bank accounts an instance is paid to; h_wire = hash of (payto_uri, salt).
CREATE TABLE instance_accounts (
  account_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_serial INTEGER NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
  h_wire BLOB NOT NULL CHECK (length(h_wire) = 64),
  salt BLOB NOT NULL CHECK (length(salt) = 16),
  payto_uri TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  credit_facade_url TEXT,
  credit_facade_credentials TEXT,
  UNIQUE (instance_serial, h_wire),
  UNIQUE (instance_serial, payto_uri)
);

-- Login tokens (POST /private/token): only their SHA-512 is stored.
CREATE TABLE login_tokens (
  token_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_serial INTEGER NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 64),
  scope TEXT NOT NULL,
  refreshable INTEGER NOT NULL DEFAULT 0 CHECK (refreshable IN (0, 1)),
  description TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);

-- Inventory. Available = total_stock - total_sold - total_lost - active product locks - locks
-- of unpaid orders before their pay deadline; total_stock -1 = unlimited.
CREATE TABLE products (
  product_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_serial INTEGER NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
  product_id TEXT NOT NULL,
  product_name TEXT,
  description TEXT NOT NULL,
  description_i18n TEXT NOT NULL DEFAULT '{}',
  unit TEXT NOT NULL,
  price_val BIGINT NOT NULL,
  price_frac INTEGER NOT NULL,
  image TEXT NOT NULL DEFAULT '',
  taxes TEXT NOT NULL DEFAULT '[]',
  categories TEXT NOT NULL DEFAULT '[]',
  total_stock BIGINT NOT NULL CHECK (total_stock >= -1),
  total_sold BIGINT NOT NULL DEFAULT 0 CHECK (total_sold >= 0),
  total_lost BIGINT NOT NULL DEFAULT 0 CHECK (total_lost >= 0),
  address TEXT NOT NULL DEFAULT '{}',
  next_restock BIGINT,
  minimum_age INTEGER,
  -- the product's forgettable fields ($forgettable, or the guide's _forgettable), as a JSON list
  forgettable TEXT NOT NULL DEFAULT '[]',
  UNIQUE (instance_serial, product_id),
  CHECK (total_stock = -1 OR total_sold + total_lost <= total_stock)
);

-- Locks a front end holds (a cart), by lock_uuid, until they expire or move into an order.
CREATE TABLE product_locks (
  lock_uuid TEXT NOT NULL,
  product_serial INTEGER NOT NULL REFERENCES products(product_serial) ON DELETE CASCADE,
  quantity BIGINT NOT NULL CHECK (quantity > 0),
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (lock_uuid, product_serial)
);
CREATE INDEX product_locks_by_product ON product_locks (product_serial, expires_at);

-- Orders. Before the claim contract_terms holds the order as created (deadlines fixed, no
-- nonce); the claim writes the final contract terms (with the wallet's nonce) and their hash.
CREATE TABLE orders (
  order_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_serial INTEGER NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
  order_id TEXT NOT NULL,
  claim_token BLOB CHECK (claim_token IS NULL OR length(claim_token) = 16),
  -- SHA-512 of the creation request: a replay with the same order_id (or idempotency key) and
  -- the same request answers the same; a different one is a conflict.
  h_post_data BLOB NOT NULL CHECK (length(h_post_data) = 64),
  idempotency_key TEXT,
  created_at BIGINT NOT NULL,
  pay_deadline BIGINT NOT NULL,
  refund_deadline BIGINT NOT NULL,
  wire_transfer_deadline BIGINT NOT NULL,
  summary TEXT NOT NULL,
  amount_val BIGINT NOT NULL,
  amount_frac INTEGER NOT NULL,
  fulfillment_url TEXT,
  account_serial INTEGER NOT NULL REFERENCES instance_accounts(account_serial),
  contract_terms TEXT NOT NULL,
  -- set by the claim
  nonce BLOB CHECK (nonce IS NULL OR length(nonce) = 32),
  h_contract_terms BLOB CHECK (h_contract_terms IS NULL OR length(h_contract_terms) = 64),
  claimed_at BIGINT,
  -- set by the payment (and /paid, which re-binds the session)
  paid INTEGER NOT NULL DEFAULT 0 CHECK (paid IN (0, 1)),
  paid_at BIGINT,
  session_id TEXT NOT NULL DEFAULT '',
  -- total refund granted so far
  refund_val BIGINT NOT NULL DEFAULT 0,
  refund_frac INTEGER NOT NULL DEFAULT 0,
  wired INTEGER NOT NULL DEFAULT 0 CHECK (wired IN (0, 1)),
  UNIQUE (instance_serial, order_id),
  UNIQUE (instance_serial, idempotency_key),
  CHECK ((nonce IS NULL) = (h_contract_terms IS NULL)),
  CHECK (paid = 0 OR h_contract_terms IS NOT NULL)
);
CREATE INDEX orders_by_session ON orders (instance_serial, session_id, fulfillment_url) WHERE paid = 1;
CREATE INDEX orders_by_creation ON orders (instance_serial, order_serial);

-- Inventory an order holds until it is paid (then sold) or its pay deadline passes.
CREATE TABLE order_locks (
  order_serial INTEGER NOT NULL REFERENCES orders(order_serial) ON DELETE CASCADE,
  product_serial INTEGER NOT NULL REFERENCES products(product_serial),
  quantity BIGINT NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_serial, product_serial)
);
CREATE INDEX order_locks_by_product ON order_locks (product_serial);

-- Coins deposited at an exchange for an order, with the exchange's confirmation.
CREATE TABLE deposits (
  deposit_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  order_serial INTEGER NOT NULL REFERENCES orders(order_serial) ON DELETE CASCADE,
  coin_pub BLOB NOT NULL CHECK (length(coin_pub) = 32),
  coin_sig BLOB NOT NULL CHECK (length(coin_sig) = 64),
  exchange_url TEXT NOT NULL,
  h_denom BLOB NOT NULL CHECK (length(h_denom) = 64),
  amount_with_fee_val BIGINT NOT NULL,
  amount_with_fee_frac INTEGER NOT NULL,
  deposit_fee_val BIGINT NOT NULL,
  deposit_fee_frac INTEGER NOT NULL,
  refund_fee_val BIGINT NOT NULL,
  refund_fee_frac INTEGER NOT NULL,
  exchange_pub BLOB NOT NULL CHECK (length(exchange_pub) = 32),
  exchange_sig BLOB NOT NULL CHECK (length(exchange_sig) = 64),
  exchange_timestamp BIGINT NOT NULL,
  -- the settlement: the exchange's wire transfer id once known
  wtid BLOB CHECK (wtid IS NULL OR length(wtid) = 32),
  execution_time BIGINT,
  UNIQUE (order_serial, coin_pub)
);
CREATE INDEX deposits_by_coin ON deposits (coin_pub);

-- Refunds granted per coin (rtransaction_id numbers the grants of an order), and what the
-- exchange answered when it was executed.
CREATE TABLE refunds (
  refund_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  order_serial INTEGER NOT NULL REFERENCES orders(order_serial) ON DELETE CASCADE,
  rtransaction_id BIGINT NOT NULL,
  coin_pub BLOB NOT NULL CHECK (length(coin_pub) = 32),
  amount_val BIGINT NOT NULL,
  amount_frac INTEGER NOT NULL,
  reason TEXT NOT NULL,
  granted_at BIGINT NOT NULL,
  -- the exchange's answer: success (signature) or a final failure (status and reply)
  exchange_pub BLOB CHECK (exchange_pub IS NULL OR length(exchange_pub) = 32),
  exchange_sig BLOB CHECK (exchange_sig IS NULL OR length(exchange_sig) = 64),
  exchange_status INTEGER,
  exchange_reply TEXT,
  -- the wallet picked it up (POST /orders/$ID/refund)
  obtained INTEGER NOT NULL DEFAULT 0 CHECK (obtained IN (0, 1)),
  UNIQUE (order_serial, rtransaction_id, coin_pub)
);
