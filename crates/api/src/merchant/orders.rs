//! Creating, listing, deleting and forgetting orders (`POST /private/orders`, `GET /private/orders`, `DELETE`, `PATCH …/forget`).
