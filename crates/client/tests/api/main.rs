//! `cardcash-client` against the real services, started on 127.0.0.1:0 with SQLite databases:
//! every typed client end to end, and the error type on real answers (Taler error bodies,
//! oversize bodies, refused connections, silent servers).

mod bank;
mod cardproc;
mod errors;
mod helpers;
mod withdrawal;
