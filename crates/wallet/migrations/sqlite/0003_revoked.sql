-- Denominations the exchange revoked (listed under `recoup` in /keys): no new coins of them.
ALTER TABLE denominations ADD COLUMN revoked BOOLEAN NOT NULL DEFAULT FALSE;
