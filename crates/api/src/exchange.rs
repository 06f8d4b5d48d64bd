//! Exchange API types (v12 surface wallet-core speaks). Filled in below.
