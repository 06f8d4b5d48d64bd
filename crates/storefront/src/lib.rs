//! Pretty Pianos, the storefront of issue 10 (being built).
