//! The JSON wire types C2EC serves, from the shared `cardcash-api` crate (so the terminal
//! client, the exchange's wire-gateway client and C2EC agree byte for byte), plus the protocol
//! versions C2EC announces.

pub use cardcash_api::bank_integration::{
    BankIntegrationConfig, BankWithdrawalOperationPostRequest, BankWithdrawalOperationPostResponse,
    BankWithdrawalOperationStatus, WithdrawalStatus,
};
pub use cardcash_api::common::CurrencySpecification;
pub use cardcash_api::terminal::{
    TerminalConfig, TerminalWithdrawalConfirmationRequest, TerminalWithdrawalSetup,
    TerminalWithdrawalSetupResponse,
};
pub use cardcash_api::wire_gateway::{
    AddIncomingRequest, AddIncomingResponse, IncomingBankTransaction, IncomingHistory,
    OutgoingBankTransaction, OutgoingHistory, TransferRequest, TransferResponse, WireConfig,
};
use cardcash_util::LibtoolVersion;

/// Terminal API v0.
pub const TERMINAL_VERSION: LibtoolVersion = LibtoolVersion::new(0, 0, 0);
/// Bank-integration API: current 4, age 4, so wallets that only know v0 (they check
/// `current - age <= 0`) accept it as well as v4 ones. Claiming v0 is kept honest by always
/// giving wallets an `amount` (required in v0), see `state::amount_for_wallets`.
pub const INTEGRATION_VERSION: LibtoolVersion = LibtoolVersion::new(4, 0, 4);
/// Our implementation URN in the `/config` answers.
pub const IMPLEMENTATION: &str = "urn:net:taler:specs:bank:cardcash-c2ec";
