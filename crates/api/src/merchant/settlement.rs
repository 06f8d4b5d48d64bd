//! Wire transfers and their reconciliation (`/private/transfers`), webhooks.
