//! Canonical JSON edge cases and properties.
