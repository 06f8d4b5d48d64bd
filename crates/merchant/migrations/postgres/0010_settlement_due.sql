-- A deposit is due for tracking at its order's wire deadline: stored as its next_check when it
-- is recorded, so the settlement worker finds due deposits along the deposits_unsettled index
-- instead of joining every unsettled deposit with its order on each wake-up (that scan grew
-- with the deposits and took 40 % of the backend's CPU under load). Kept in step with
-- ../sqlite/0010_settlement_due.sql.
UPDATE deposits d
   SET next_check = o.wire_transfer_deadline
  FROM orders o
 WHERE o.order_serial = d.order_serial
   AND d.wtid IS NULL
   AND d.next_check < o.wire_transfer_deadline;
