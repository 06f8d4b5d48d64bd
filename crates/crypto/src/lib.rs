//! GNU Taler cryptography: SHA-512, GNUnet HKDF, EdDSA purposes, RSA-FDH blind signatures, planchets, refresh, contract hashing (no IO).
