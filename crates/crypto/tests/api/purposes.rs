//! Purpose envelopes: header layout and the declared size of every builder.
