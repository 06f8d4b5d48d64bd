//! The wallet's integration tests (one binary): a real bank, card processor, C2EC and exchange
//! on 127.0.0.1:0 (the test kit's world), each test once per engine of the services; the
//! wallet itself always keeps a SQLite file.

mod c2ec;
mod helpers;
mod keys;
mod manual;
mod merchant;
mod pay;
mod recoup;
mod refresh;
mod resume;
