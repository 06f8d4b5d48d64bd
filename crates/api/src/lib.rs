//! Serde types for the JSON of the Taler exchange, merchant, bank-integration, wire-gateway and terminal APIs (no IO).
