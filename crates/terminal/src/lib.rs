//! A payment terminal that sells Taler e-cash for a card payment through C2EC.
//!
//! The terminal of the C2EC sequence diagram: [`flow::TerminalFlow`] runs one withdrawal end
//! to end against C2EC's Terminal API (`cardcash_client::C2ecTerminalClient`) and the card
//! processor (`cardcash_client::CardprocClient`), reporting progress to a
//! [`flow::FlowObserver`];
//! [`qr`] draws the `taler://withdraw` URI for a text terminal or a web page, [`receipt`]
//! formats the customer's receipt, [`console`] prints progress for a person at a text
//! terminal, [`page`] renders a static status page and [`display`] serves it to a
//! customer-facing screen. The binary
//! (`cardcash terminal withdraw`) and `cardcash demo` only wire these together.

pub mod console;
pub mod display;
pub mod flow;
pub mod page;
pub mod qr;
pub mod receipt;

pub use console::ConsoleObserver;
pub use display::{CustomerDisplay, serve_display};
pub use flow::{
    CardData, FlowError, FlowEvent, FlowObserver, FlowOptions, FlowReport, TerminalFlow,
};
pub use receipt::{AbortReason, Outcome, Receipt};
