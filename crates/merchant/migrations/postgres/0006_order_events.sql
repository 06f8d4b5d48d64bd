-- Order events and webhooks (H7). Kept in step with ../sqlite/0006_order_events.sql (see there
-- for why events carry both event_id and event_serial).
CREATE TABLE order_events (
  event_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_serial BIGINT UNIQUE,
  instance_serial BIGINT NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
  order_id TEXT NOT NULL,
  event_type TEXT NOT NULL
    CHECK (event_type IN ('order_created', 'pay', 'refund', 'order_settled')),
  created_at BIGINT NOT NULL,
  payload TEXT NOT NULL
);
CREATE INDEX order_events_unsequenced ON order_events (event_id) WHERE event_serial IS NULL;
CREATE INDEX order_events_by_instance ON order_events (instance_serial, event_serial);

-- One function for every captured change: inserts the events of the row's change and notifies
-- the sequencer (topic order_event_captured on the service's channel, delivered at commit).
-- search_path is pinned to the schema the migration runs in.
CREATE FUNCTION order_events_capture() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  now_us BIGINT := (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
  base JSONB := jsonb_build_object('summary', NEW.summary, 'amount_val', NEW.amount_val,
    'amount_frac', NEW.amount_frac, 'fulfillment_url', NEW.fulfillment_url);
  captured BOOLEAN := FALSE;
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO order_events (instance_serial, order_id, event_type, created_at, payload)
    VALUES (NEW.instance_serial, NEW.order_id, 'order_created', NEW.created_at, base::TEXT);
    captured := TRUE;
  ELSE
    IF OLD.paid = 0 AND NEW.paid = 1 THEN
      INSERT INTO order_events (instance_serial, order_id, event_type, created_at, payload)
      VALUES (NEW.instance_serial, NEW.order_id, 'pay', COALESCE(NEW.paid_at, now_us),
        (base || jsonb_build_object('session_id', NEW.session_id))::TEXT);
      captured := TRUE;
    END IF;
    -- Amounts are normalised (fraction < 10^8), so (val, frac) compare as rows.
    IF (NEW.refund_val, NEW.refund_frac) > (OLD.refund_val, OLD.refund_frac) THEN
      INSERT INTO order_events (instance_serial, order_id, event_type, created_at, payload)
      VALUES (NEW.instance_serial, NEW.order_id, 'refund', now_us,
        (base || jsonb_build_object(
          'refund_total_val', NEW.refund_val, 'refund_total_frac', NEW.refund_frac,
          'refund_before_val', OLD.refund_val, 'refund_before_frac', OLD.refund_frac,
          'reason', (SELECT reason FROM refunds WHERE order_serial = NEW.order_serial
                     ORDER BY refund_serial DESC LIMIT 1)))::TEXT);
      captured := TRUE;
    END IF;
    IF OLD.wired = 0 AND NEW.wired = 1 THEN
      INSERT INTO order_events (instance_serial, order_id, event_type, created_at, payload)
      VALUES (NEW.instance_serial, NEW.order_id, 'order_settled', now_us, base::TEXT);
      captured := TRUE;
    END IF;
  END IF;
  IF captured THEN
    PERFORM pg_notify('cardcash_merchant', 'order_event_captured ' || NEW.instance_serial);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER order_events_capture AFTER INSERT OR UPDATE ON orders
FOR EACH ROW EXECUTE FUNCTION order_events_capture();

CREATE TABLE webhooks (
  webhook_serial BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  instance_serial BIGINT NOT NULL REFERENCES instances(instance_serial) ON DELETE CASCADE,
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

CREATE TABLE webhook_deliveries (
  delivery_serial BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_serial BIGINT NOT NULL REFERENCES order_events(event_serial) ON DELETE CASCADE,
  webhook_serial BIGINT NOT NULL REFERENCES webhooks(webhook_serial) ON DELETE CASCADE,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  next_attempt BIGINT NOT NULL,
  last_status INTEGER,
  last_error TEXT,
  UNIQUE (event_serial, webhook_serial)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt) WHERE state = 'pending';
