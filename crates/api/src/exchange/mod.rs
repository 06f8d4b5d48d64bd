//! The Taler exchange API's JSON, protocol v23 (the C exchange `23:0:6`, Dec 2024), plus the v12
//! surface the 2022 wallet-core speaks ([`v12`]).
//!
//! Authority for every field: the C exchange (`felixuxx/Flashpay` at its newest commit,
//! `src/exchange/taler-exchange-httpd_*.c` for what it writes and reads, `src/lib/` for what its
//! client tolerates) and docs.taler.net core/api-exchange; our notes
//! (`shared/spec/taler-protocol.md` §6) summarise them, and each module's `//!` lists where v23
//! differs from the notes. Types only: signatures and hashes are typed here and verified in
//! `cardcash-crypto`; the exchange service decides.
//!
//! Map, by route:
//! - [`keys`]: `GET /config`, `GET /keys` (grouped denominations, accounts, fees, limits).
//! - [`denom`]: the cipher-tagged values (RSA and CS keys, envelopes, signatures).
//! - [`reserve`]: `GET /reserves/$PUB`, `GET /reserves/$PUB/history`.
//! - [`withdraw`]: `POST /csr-withdraw`, `POST /reserves/$PUB/batch-withdraw`.
//! - [`deposit`]: `POST /batch-deposit`, `POST /coins/$PUB/refund`, `GET /coins/$PUB/history`.
//! - [`refresh`]: `POST /coins/$PUB/melt`, `POST /refreshes/$RC/reveal`, `GET /coins/$PUB/link`,
//!   `POST /csr-melt`.
//! - [`recoup`]: `POST /coins/$PUB/recoup`, `POST /coins/$PUB/recoup-refresh`.
//! - [`tracking`]: `GET /deposits/$H_WIRE/$MERCHANT_PUB/$H_CONTRACT/$COIN_PUB`,
//!   `GET /transfers/$WTID`.
//! - [`management`]: `/management/keys`, `/management/wire[/disable]`,
//!   `/management/wire-fee`, `/management/global-fee`, revocations.
//! - [`v12`]: `/keys` with flat `denoms`, `/wire`, single withdraw, per-coin deposit.
//!
//! Conventions as in the rest of the crate: optional fields are omitted when `None` and default
//! when absent; unknown fields are ignored on input. Error bodies that carry more than
//! `{code, hint}` are types of their own (`…Response` with a flattened [`ErrorDetail`]).
//!
//! [`ErrorDetail`]: crate::common::ErrorDetail

pub mod denom;
pub mod deposit;
pub mod keys;
pub mod management;
pub mod recoup;
pub mod refresh;
pub mod reserve;
pub mod tracking;
pub mod v12;
pub mod withdraw;

pub use denom::{
    BlindedDenominationSignature, BlindingKeySecret, CoinEnvelope, CsNonce, CsPoint, CsScalar,
    DenominationPublicKey, ExchangeWithdrawValues, UnblindedSignature,
};
pub use deposit::{
    BatchDepositCoin, BatchDepositRequest, BatchDepositResponse, COIN_HISTORY_SIGNATURE_HEADER,
    CoinAgeCommitmentConflictResponse, CoinDenominationConflictResponse, CoinHistoryEntry,
    CoinHistoryResponse, CoinInsufficientFundsResponse, DepositConflictingContractResponse,
    RefundRequest, RefundResponse,
};
pub use keys::{
    AccountLimit, AccountRestriction, Auditor, AuditorDenominationSignature, CsDenomination,
    DenominationGroup, DenominationGroupKeys, EXCHANGE_PROTOCOL_VERSION, ExchangeConfigResponse,
    ExchangeKeysResponse, GlobalFee, KycOperation, Recoup, RsaDenomination, SignKey, WireAccount,
    WireFee, ZeroLimitedOperation,
};
pub use management::{
    DenominationRevocationRequest, DenominationSignature, FutureDenomination, FutureKeysResponse,
    FutureSignKey, GlobalFeesRequest, MasterSignaturesRequest, SignKeyRevocationRequest,
    SignKeySignature, WireFeeSetupRequest, WireSetupRequest, WireTeardownRequest,
};
pub use recoup::{RecoupRefreshResponse, RecoupRequest, RecoupWithdrawResponse};
pub use refresh::{
    CsrMeltCoin, CsrMeltRequest, CsrMeltResponse, CsrMeltValues, LinkCoin, LinkResponse,
    LinkSession, MeltRequest, MeltResponse, RefreshMasterSecret, RevealCommitmentViolationResponse,
    RevealRequest, RevealResponse, TransferPrivateKey,
};
pub use reserve::{
    RESERVE_HISTORY_SIGNATURE_HEADER, ReserveHistoryEntry, ReserveHistoryResponse,
    ReserveSummaryResponse,
};
pub use tracking::{
    DepositLongPollTarget, TrackTransactionAcceptedResponse, TrackTransactionResponse,
    TrackTransferDetail, TrackTransferResponse,
};
pub use withdraw::{
    BatchWithdrawRequest, BatchWithdrawResponse, CsrWithdrawRequest, CsrWithdrawResponse,
    DenominationErrorResponse, ReserveInsufficientBalanceResponse, WithdrawPlanchet,
    WithdrawSignature,
};

/// Sample values and the round-trip check the modules' tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// A 32-byte key in base32.
    pub const PUB: &str = "5HRE2AVT0S3FJ8KSYGKWFCWEECTDHS9RKKZHCYGXRC777Y16PT1G";
    /// A 32-byte hash in base32.
    pub const SHORT: &str = "YVZ49476F3D8Y07PPF4K7TYNV2H0F7P18HQA2CC0JHP8PNVAWMM0";
    /// A 64-byte hash in base32.
    pub const HASH: &str = "P70XSM4H5JSEFBCAEV98371MDM1SSNWKRJ59SMZAQW6G3JE2T552M3SH9N8PJ8Z0YJ7W8ZTEJKS50VPK0FRWYEND33P4P4M8DJZKJ4R";
    /// A 64-byte signature in base32.
    pub const SIG: &str = HASH;

    /// Base32 of `bytes`.
    pub fn b32(bytes: &[u8]) -> String {
        cardcash_util::base32::encode(bytes)
    }

    /// Parses `text` as `T`, checks that writing it back gives the same JSON (same fields, same
    /// values; order and spacing aside), and returns it.
    pub fn assert_round_trip<T: Serialize + DeserializeOwned>(text: &str) -> T {
        let parsed: T =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("does not parse: {e}\n{text}"));
        let back = serde_json::to_value(&parsed).unwrap();
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, original, "round trip changed the JSON");
        parsed
    }
}
