//! Products and locks (`/private/products`, `…/lock`).
