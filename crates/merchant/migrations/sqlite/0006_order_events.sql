-- Order events and webhooks (H7). Kept in step with ../postgres/0006_order_events.sql.
--
-- The transactional outbox: triggers on `orders` record every committed change an integrator
-- cares about in the same transaction as the change, whoever wrote it (order creation, pay,
-- refund, settlement code, an operator's SQL). event_id numbers events as they are captured;
-- event_serial numbers them in the order they became VISIBLE, assigned by the merchant's
-- sequencer (src/webhooks/worker.rs) after commit: on PostgreSQL two transactions can commit
-- their captured events out of event_id order, and a stream resumed "after id N" must never
-- skip a late one. Streams (SSE) and webhook deliveries only see sequenced events.
CREATE TABLE order_events (
  event_id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_serial BIGINT UNIQUE,
  instance_serial INTEGER NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
  order_id TEXT NOT NULL,
  event_type TEXT NOT NULL
    CHECK (event_type IN ('order_created', 'pay', 'refund', 'order_settled')),
  created_at BIGINT NOT NULL,
  -- JSON object: amounts as *_val/*_frac (the currency is the configured one)
  payload TEXT NOT NULL
);
CREATE INDEX order_events_unsequenced ON order_events (event_id) WHERE event_serial IS NULL;
CREATE INDEX order_events_by_instance ON order_events (instance_serial, event_serial);

-- Now in microseconds (SQLite has no microsecond clock in SQL; milliseconds are enough here).
CREATE TRIGGER order_events_order_created AFTER INSERT ON orders
BEGIN
  INSERT INTO order_events (instance_serial, order_id, event_type, created_at, payload)
  VALUES (NEW.instance_serial, NEW.order_id, 'order_created', NEW.created_at,
    json_object('summary', NEW.summary, 'amount_val', NEW.amount_val,
      'amount_frac', NEW.amount_frac, 'fulfillment_url', NEW.fulfillment_url));
END;

CREATE TRIGGER order_events_pay AFTER UPDATE OF paid ON orders
WHEN OLD.paid = 0 AND NEW.paid = 1
BEGIN
  INSERT INTO order_events (instance_serial, order_id, event_type, created_at, payload)
  VALUES (NEW.instance_serial, NEW.order_id, 'pay',
    COALESCE(NEW.paid_at, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 1000),
    json_object('summary', NEW.summary, 'amount_val', NEW.amount_val,
      'amount_frac', NEW.amount_frac, 'fulfillment_url', NEW.fulfillment_url,
      'session_id', NEW.session_id));
END;

-- Amounts are normalised (fraction < 10^8), so (val, frac) compare lexicographically.
CREATE TRIGGER order_events_refund AFTER UPDATE OF refund_val, refund_frac ON orders
WHEN NEW.refund_val > OLD.refund_val
  OR (NEW.refund_val = OLD.refund_val AND NEW.refund_frac > OLD.refund_frac)
BEGIN
  INSERT INTO order_events (instance_serial, order_id, event_type, created_at, payload)
  VALUES (NEW.instance_serial, NEW.order_id, 'refund',
    CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 1000,
    json_object('summary', NEW.summary, 'amount_val', NEW.amount_val,
      'amount_frac', NEW.amount_frac, 'fulfillment_url', NEW.fulfillment_url,
      'refund_total_val', NEW.refund_val, 'refund_total_frac', NEW.refund_frac,
      'refund_before_val', OLD.refund_val, 'refund_before_frac', OLD.refund_frac,
      'reason', (SELECT reason FROM refunds WHERE order_serial = NEW.order_serial
                 ORDER BY refund_serial DESC LIMIT 1)));
END;

CREATE TRIGGER order_events_settled AFTER UPDATE OF wired ON orders
WHEN OLD.wired = 0 AND NEW.wired = 1
BEGIN
  INSERT INTO order_events (instance_serial, order_id, event_type, created_at, payload)
  VALUES (NEW.instance_serial, NEW.order_id, 'order_settled',
    CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 1000,
    json_object('summary', NEW.summary, 'amount_val', NEW.amount_val,
      'amount_frac', NEW.amount_frac, 'fulfillment_url', NEW.fulfillment_url));
END;

-- Webhooks (POST /private/webhooks). secret: the HMAC key of the Taler-Webhook-Signature
-- header (our addition; the C merchant signs nothing).
CREATE TABLE webhooks (
  webhook_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_serial INTEGER NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
  webhook_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  url TEXT NOT NULL,
  http_method TEXT NOT NULL,
  header_template TEXT,
  body_template TEXT,
  secret TEXT NOT NULL,
  UNIQUE (instance_serial, webhook_id)
);
CREATE INDEX webhooks_by_event ON webhooks (instance_serial, event_type);

-- One delivery per (event, webhook), made when the event is sequenced: idempotent by its key.
-- state: pending (next_attempt says when), delivered (a 2xx), failed (gave up).
CREATE TABLE webhook_deliveries (
  delivery_serial INTEGER PRIMARY KEY AUTOINCREMENT,
  event_serial BIGINT NOT NULL REFERENCES order_events(event_serial) ON DELETE CASCADE,
  webhook_serial INTEGER NOT NULL REFERENCES webhooks(webhook_serial) ON DELETE CASCADE,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  next_attempt BIGINT NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  UNIQUE (event_serial, webhook_serial)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt) WHERE state = 'pending';
