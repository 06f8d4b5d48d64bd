//! Pay, abort and refunds (`POST /orders/$ID/pay`, `/abort`, `/refund`, `POST /private/orders/$ID/refund`).
