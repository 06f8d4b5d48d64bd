//! JSON bodies of the bank's HTTP APIs, all from `cardcash-api` so that the bank, its client
//! (`cardcash_client`) and the other servers of the same APIs agree byte for byte: the Taler
//! Wire Gateway API (also spoken by C2EC and used by the exchange) and the thin Core Bank API
//! subset.

pub use cardcash_api::common::CurrencySpecification;
pub use cardcash_api::corebank::{
    AccountData, AccountMinimalData, BalanceData, BankAccountTransactionInfo,
    BankAccountTransactionsResponse, CoreConfig, CreateTransactionRequest,
    CreateTransactionResponse, Direction, ListAccountsResponse, RegisterAccountRequest,
    RegisterAccountResponse, TokenRequest, TokenSuccessResponse,
};
pub use cardcash_api::wire_gateway::{
    AddIncomingRequest, AddIncomingResponse, IncomingBankTransaction, IncomingHistory,
    OutgoingBankTransaction, OutgoingHistory, TransferRequest, TransferResponse, WireConfig,
};

use crate::balance::Balance;

impl From<Balance> for BalanceData {
    fn from(b: Balance) -> Self {
        Self {
            amount: b.amount,
            credit_debit_indicator: if b.is_debit() {
                Direction::Debit
            } else {
                Direction::Credit
            },
        }
    }
}
