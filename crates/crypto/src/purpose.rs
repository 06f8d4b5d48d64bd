//! The GNUnet signed-message envelope and one typed builder per Taler signature purpose
//! (spec §3, §3.1, §3.2).
//!
//! Every EdDSA signature in Taler covers `u32be size ‖ u32be purpose ‖ body`, where `size`
//! counts the 8-byte header too. Each struct here lists the body fields in wire order, so a
//! builder can never get a field out of place; the byte layouts are pinned by the wallet-core
//! vectors for 1025, 1030 (v12), 1028, 1022, 1200, 1201 (v12), 1101 and 1104, and taken from the
//! C exchange's `*_signatures.c` for the rest (audited against protocol v23, `23:0:6`: the
//! December 2024 `src/util/{offline,exchange,wallet,merchant,secmod}_signatures.c`). Where
//! protocol v12–14 and v23 differ there are two structs (`…V12`, `…V23`); an unversioned struct
//! is the same in both.
//!
//! Every `h_payto` here is the *full* payto hash ([`crate::wire::h_payto`]); see
//! [`crate::wire`] for the one the C exchange uses for its database keys instead.

use cardcash_util::{
    Amount, EcdhePublicKey, EddsaPublicKey, EddsaSignature, HashCode, RelativeTime, ShortHashCode,
    Timestamp,
};
use serde_json::Value;

use crate::error::CryptoError;
use crate::hash::Sha512Hasher;
use crate::wire::{h_conversion_url, h_payto, h_restrictions, h_wire_method, hash_c_string};

/// The purpose numbers (GANA registry; spec §3.1).
pub mod purpose_code {
    pub const MASTER_SIGNING_KEY_REVOKED: u32 = 1020;
    pub const MASTER_ADD_WIRE: u32 = 1021;
    pub const MASTER_GLOBAL_FEES: u32 = 1022;
    pub const MASTER_DEL_WIRE: u32 = 1023;
    pub const MASTER_SIGNING_KEY_VALIDITY: u32 = 1024;
    pub const MASTER_DENOMINATION_KEY_VALIDITY: u32 = 1025;
    pub const MASTER_ADD_AUDITOR: u32 = 1026;
    pub const MASTER_DEL_AUDITOR: u32 = 1027;
    pub const MASTER_WIRE_FEES: u32 = 1028;
    pub const MASTER_DENOMINATION_KEY_REVOKED: u32 = 1029;
    pub const MASTER_WIRE_DETAILS: u32 = 1030;
    pub const MASTER_EXTENSION: u32 = 1031;
    pub const EXCHANGE_RESERVE_STATUS: u32 = 1032;
    pub const EXCHANGE_CONFIRM_DEPOSIT: u32 = 1033;
    pub const EXCHANGE_CONFIRM_MELT: u32 = 1034;
    pub const EXCHANGE_KEY_SET: u32 = 1035;
    pub const EXCHANGE_CONFIRM_WIRE: u32 = 1036;
    pub const EXCHANGE_CONFIRM_WIRE_DEPOSIT: u32 = 1037;
    pub const EXCHANGE_CONFIRM_REFUND: u32 = 1038;
    pub const EXCHANGE_CONFIRM_RECOUP: u32 = 1039;
    pub const EXCHANGE_RESERVE_CLOSED: u32 = 1040;
    pub const EXCHANGE_CONFIRM_RECOUP_REFRESH: u32 = 1041;
    pub const EXCHANGE_AFFIRM_DENOM_UNKNOWN: u32 = 1042;
    pub const EXCHANGE_AFFIRM_DENOM_EXPIRED: u32 = 1043;
    pub const EXCHANGE_ACCOUNT_SETUP_SUCCESS: u32 = 1044;
    pub const EXCHANGE_CONFIRM_PURSE_CREATION: u32 = 1045;
    pub const AUDITOR_EXCHANGE_KEYS: u32 = 1064;
    pub const MERCHANT_CONTRACT: u32 = 1101;
    pub const MERCHANT_REFUND: u32 = 1102;
    pub const MERCHANT_TRACK_TRANSACTION: u32 = 1103;
    pub const MERCHANT_PAYMENT_OK: u32 = 1104;
    pub const MERCHANT_PAY_SESSION: u32 = 1106;
    pub const MERCHANT_WIRE_DETAILS: u32 = 1107;
    pub const WALLET_RESERVE_WITHDRAW: u32 = 1200;
    pub const WALLET_COIN_DEPOSIT: u32 = 1201;
    pub const WALLET_COIN_MELT: u32 = 1202;
    pub const WALLET_COIN_RECOUP: u32 = 1203;
    pub const WALLET_COIN_LINK: u32 = 1204;
    pub const WALLET_ACCOUNT_SETUP: u32 = 1205;
    pub const WALLET_COIN_RECOUP_REFRESH: u32 = 1206;
    pub const WALLET_AGE_ATTESTATION: u32 = 1207;
    pub const WALLET_RESERVE_HISTORY: u32 = 1208;
    /// 1209 until GANA gave the number to [`WALLET_COIN_HISTORY`] (2023, when the exchange
    /// dropped `/reserves/$RESERVE_PUB/status`).
    pub const WALLET_RESERVE_STATUS: u32 = 1209;
    /// The coin asks for its history (`GET /coins/$COIN_PUB/history`; GANA reuses 1209).
    pub const WALLET_COIN_HISTORY: u32 = 1209;
    pub const WALLET_PURSE_CREATE: u32 = 1210;
    pub const WALLET_PURSE_DEPOSIT: u32 = 1211;
    pub const WALLET_PURSE_STATUS: u32 = 1212;
    pub const WALLET_PURSE_MERGE: u32 = 1213;
    pub const WALLET_ACCOUNT_MERGE: u32 = 1214;
    pub const WALLET_RESERVE_CLOSE: u32 = 1215;
    pub const WALLET_PURSE_ECONTRACT: u32 = 1216;
    /// The RSA security module announces a denomination key.
    pub const SM_RSA_DENOMINATION_KEY: u32 = 1250;
    /// The EdDSA security module announces an online signing key.
    pub const SM_SIGNING_KEY: u32 = 1251;
    /// The CS security module announces a denomination key.
    pub const SM_CS_DENOMINATION_KEY: u32 = 1252;
}

/// A message that can be EdDSA-signed: a purpose number and a body.
pub trait SignedMessage {
    /// The purpose number (see [`purpose_code`]).
    fn purpose(&self) -> u32;
    /// The body, without the 8-byte header.
    fn body(&self) -> Vec<u8>;
    /// The complete signed bytes: `u32be(8 + body.len()) ‖ u32be(purpose) ‖ body`.
    fn to_bytes(&self) -> Vec<u8> {
        envelope(self.purpose(), &self.body())
    }
}

/// `u32be size ‖ u32be purpose ‖ body`.
pub fn envelope(purpose: u32, body: &[u8]) -> Vec<u8> {
    // Bodies are a few hundred bytes; saturating keeps this total without a panic path.
    let size = u32::try_from(body.len().saturating_add(8)).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&purpose.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A purpose and body that no typed builder covers (or that arrived pre-assembled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub purpose: u32,
    pub body: Vec<u8>,
}

impl SignedMessage for RawMessage {
    fn purpose(&self) -> u32 {
        self.purpose
    }
    fn body(&self) -> Vec<u8> {
        self.body.clone()
    }
}

/// Appends fields in wire order.
struct Body(Vec<u8>);

impl Body {
    fn new(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn hash(self, h: &HashCode) -> Self {
        self.bytes(h.as_bytes())
    }
    fn short(self, h: &ShortHashCode) -> Self {
        self.bytes(h.as_bytes())
    }
    fn eddsa(self, k: &EddsaPublicKey) -> Self {
        self.bytes(k.as_bytes())
    }
    fn ecdhe(self, k: &EcdhePublicKey) -> Self {
        self.bytes(k.as_bytes())
    }
    fn ts(self, t: &Timestamp) -> Self {
        self.bytes(&t.to_nbo())
    }
    fn rel(self, t: &RelativeTime) -> Self {
        self.bytes(&t.to_nbo())
    }
    fn amount(self, a: &Amount) -> Self {
        self.bytes(&a.to_nbo())
    }
    fn u32(self, v: u32) -> Self {
        self.bytes(&v.to_be_bytes())
    }
    fn u64(self, v: u64) -> Self {
        self.bytes(&v.to_be_bytes())
    }
    fn done(self) -> Vec<u8> {
        self.0
    }
}

/// Declares a purpose struct whose body is its fields in declaration order.
macro_rules! signed_message {
    (
        $(#[$meta:meta])*
        $name:ident = $code:expr, size $size:expr;
        { $( $(#[$fmeta:meta])* $field:ident : $ty:ty => $put:ident ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $name {
            /// Total signed size in bytes, header included.
            pub const SIGNED_SIZE: usize = $size;
        }

        impl SignedMessage for $name {
            fn purpose(&self) -> u32 {
                $code
            }
            fn body(&self) -> Vec<u8> {
                Body::new($size - 8)
                    $( .$put(&self.$field) )*
                    .done()
            }
        }
    };
}

// Some fields are plain integers; give the builder by-reference versions for the macro.
impl Body {
    fn u32_ref(self, v: &u32) -> Self {
        self.u32(*v)
    }
    fn u64_ref(self, v: &u64) -> Self {
        self.u64(*v)
    }
    fn raw32(self, v: &[u8; 32]) -> Self {
        self.bytes(v)
    }
    fn raw8(self, v: &[u8; 8]) -> Self {
        self.bytes(v)
    }
}

// ---------------------------------------------------------------- master (offline) signatures

signed_message! {
    /// 1025: the master key vouches for a denomination (`/keys`). Verified by the wallet.
    DenominationValidity = purpose_code::MASTER_DENOMINATION_KEY_VALIDITY, size 256;
    {
        master_pub: EddsaPublicKey => eddsa,
        start: Timestamp => ts,
        expire_withdraw: Timestamp => ts,
        expire_deposit: Timestamp => ts,
        expire_legal: Timestamp => ts,
        value: Amount => amount,
        fee_withdraw: Amount => amount,
        fee_deposit: Amount => amount,
        fee_refresh: Amount => amount,
        fee_refund: Amount => amount,
        h_denom_pub: HashCode => hash,
    }
}

signed_message! {
    /// 1024: the master key vouches for an online signing key.
    SigningKeyValidity = purpose_code::MASTER_SIGNING_KEY_VALIDITY, size 64;
    {
        start: Timestamp => ts,
        expire: Timestamp => ts,
        end: Timestamp => ts,
        signkey_pub: EddsaPublicKey => eddsa,
    }
}

signed_message! {
    /// 1020: the master key revokes an online signing key.
    SigningKeyRevocation = purpose_code::MASTER_SIGNING_KEY_REVOKED, size 40;
    { exchange_pub: EddsaPublicKey => eddsa }
}

signed_message! {
    /// 1029: the master key revokes a denomination.
    DenominationRevocation = purpose_code::MASTER_DENOMINATION_KEY_REVOKED, size 72;
    { h_denom_pub: HashCode => hash }
}

signed_message! {
    /// 1030, protocol v12–14: the exchange's bank account (`/wire` `accounts[].master_sig`).
    WireAccountV12 = purpose_code::MASTER_WIRE_DETAILS, size 40;
    { h_payto: ShortHashCode => short }
}

signed_message! {
    /// 1030, protocol v23: account plus conversion URL and restriction hashes (all-zero when absent).
    WireAccountV23 = purpose_code::MASTER_WIRE_DETAILS, size 232;
    {
        h_payto: ShortHashCode => short,
        h_conversion_url: HashCode => hash,
        h_debit_restrictions: HashCode => hash,
        h_credit_restrictions: HashCode => hash,
    }
}

impl WireAccountV23 {
    /// The message for an account (C `TALER_exchange_wire_signature_make`): `payto` is the full
    /// payto URI as published in `/keys` `accounts[].payto_uri`, `conversion_url` the optional
    /// `conversion_url`, the restrictions the `debit_restrictions` / `credit_restrictions` arrays
    /// (`[]` when there are none). `bank_label` and `priority` are not signed.
    pub fn new(
        payto: &str,
        conversion_url: Option<&str>,
        debit_restrictions: &Value,
        credit_restrictions: &Value,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            h_payto: h_payto(payto),
            h_conversion_url: h_conversion_url(conversion_url),
            h_debit_restrictions: h_restrictions(debit_restrictions)?,
            h_credit_restrictions: h_restrictions(credit_restrictions)?,
        })
    }
}

signed_message! {
    /// 1021, protocol v23: the master key enables a wire account from `start_date` on
    /// (`POST /management/wire` `master_sig_add`; `validity_start` in the JSON).
    WireAdd = purpose_code::MASTER_ADD_WIRE, size 240;
    {
        start_date: Timestamp => ts,
        h_payto: ShortHashCode => short,
        h_conversion_url: HashCode => hash,
        h_debit_restrictions: HashCode => hash,
        h_credit_restrictions: HashCode => hash,
    }
}

impl WireAdd {
    /// The message the offline key signs to enable an account (C
    /// `TALER_exchange_offline_wire_add_sign`); the arguments as in [`WireAccountV23::new`].
    pub fn new(
        payto: &str,
        conversion_url: Option<&str>,
        debit_restrictions: &Value,
        credit_restrictions: &Value,
        start_date: Timestamp,
    ) -> Result<Self, CryptoError> {
        let account = WireAccountV23::new(
            payto,
            conversion_url,
            debit_restrictions,
            credit_restrictions,
        )?;
        Ok(Self {
            start_date,
            h_payto: account.h_payto,
            h_conversion_url: account.h_conversion_url,
            h_debit_restrictions: account.h_debit_restrictions,
            h_credit_restrictions: account.h_credit_restrictions,
        })
    }
}

signed_message! {
    /// 1023: the master key disables a wire account from `end_date` on
    /// (`POST /management/wire/disable` `master_sig_del`; `validity_end` in the JSON).
    WireDel = purpose_code::MASTER_DEL_WIRE, size 48;
    {
        end_date: Timestamp => ts,
        h_payto: ShortHashCode => short,
    }
}

impl WireDel {
    /// The message for the full payto URI `payto` (C `TALER_exchange_offline_wire_del_sign`).
    pub fn new(payto: &str, end_date: Timestamp) -> Self {
        Self {
            end_date,
            h_payto: h_payto(payto),
        }
    }
}

signed_message! {
    /// 1026: the master key adds an auditor (`POST /management/auditors`).
    AuditorAdd = purpose_code::MASTER_ADD_AUDITOR, size 112;
    {
        start_date: Timestamp => ts,
        auditor_pub: EddsaPublicKey => eddsa,
        /// `SHA-512(auditor_url ‖ 0x00)`.
        h_auditor_url: HashCode => hash,
    }
}

impl AuditorAdd {
    /// The message for an auditor at `auditor_url` (C `TALER_exchange_offline_auditor_add_sign`).
    pub fn new(auditor_pub: EddsaPublicKey, auditor_url: &str, start_date: Timestamp) -> Self {
        Self {
            start_date,
            auditor_pub,
            h_auditor_url: hash_c_string(auditor_url),
        }
    }
}

signed_message! {
    /// 1027: the master key removes an auditor (`POST /management/auditors/$PUB/disable`).
    AuditorDel = purpose_code::MASTER_DEL_AUDITOR, size 48;
    {
        end_date: Timestamp => ts,
        auditor_pub: EddsaPublicKey => eddsa,
    }
}

signed_message! {
    /// 1028: wire and closing fees of one wire method for a period.
    WireFee = purpose_code::MASTER_WIRE_FEES, size 136;
    {
        /// `SHA-512(method ‖ 0x00)`, see [`crate::wire::h_wire_method`].
        h_wire_method: HashCode => hash,
        start: Timestamp => ts,
        end: Timestamp => ts,
        wire_fee: Amount => amount,
        closing_fee: Amount => amount,
    }
}

impl WireFee {
    /// The message for wire method `method` (e.g. `"iban"`, `"x-taler-bank"`; C
    /// `TALER_exchange_offline_wire_fee_sign`).
    pub fn new(
        method: &str,
        start: Timestamp,
        end: Timestamp,
        wire_fee: Amount,
        closing_fee: Amount,
    ) -> Self {
        Self {
            h_wire_method: h_wire_method(method),
            start,
            end,
            wire_fee,
            closing_fee,
        }
    }
}

signed_message! {
    /// 1022: global fees for a period.
    GlobalFees = purpose_code::MASTER_GLOBAL_FEES, size 116;
    {
        start: Timestamp => ts,
        end: Timestamp => ts,
        purse_timeout: RelativeTime => rel,
        history_expiration: RelativeTime => rel,
        history_fee: Amount => amount,
        account_fee: Amount => amount,
        purse_fee: Amount => amount,
        purse_account_limit: u32 => u32_ref,
    }
}

// ---------------------------------------------------------------- exchange (online) signatures

signed_message! {
    /// 1033, protocol v12–14: the exchange confirms one coin's deposit.
    DepositConfirmationV12 = purpose_code::EXCHANGE_CONFIRM_DEPOSIT, size 312;
    {
        h_contract_terms: HashCode => hash,
        h_wire: HashCode => hash,
        /// Extensions/policy hash; all zero when there is none.
        h_policy: HashCode => hash,
        exchange_timestamp: Timestamp => ts,
        wire_deadline: Timestamp => ts,
        refund_deadline: Timestamp => ts,
        amount_without_fee: Amount => amount,
        coin_pub: EddsaPublicKey => eddsa,
        merchant_pub: EddsaPublicKey => eddsa,
    }
}

signed_message! {
    /// 1033, protocol v23 (batch deposit).
    DepositConfirmationV23 = purpose_code::EXCHANGE_CONFIRM_DEPOSIT, size 344;
    {
        h_contract_terms: HashCode => hash,
        h_wire: HashCode => hash,
        h_policy: HashCode => hash,
        exchange_timestamp: Timestamp => ts,
        wire_deadline: Timestamp => ts,
        refund_deadline: Timestamp => ts,
        total_without_fee: Amount => amount,
        /// SHA-512 over all 64-byte coin signatures in request order
        /// ([`crate::coin::h_coin_sigs`]).
        h_coin_sigs: HashCode => hash,
        merchant_pub: EddsaPublicKey => eddsa,
    }
}

impl DepositConfirmationV23 {
    /// [`crate::coin::h_coin_sigs`]: SHA-512 over the coins' `coin_sig` in request order.
    pub fn hash_coin_sigs<'a>(coin_sigs: impl IntoIterator<Item = &'a EddsaSignature>) -> HashCode {
        crate::coin::h_coin_sigs(coin_sigs)
    }
}

signed_message! {
    /// 1034: the exchange accepts a melt and fixes the index the wallet need not reveal.
    MeltConfirmation = purpose_code::EXCHANGE_CONFIRM_MELT, size 76;
    {
        rc: HashCode => hash,
        noreveal_index: u32 => u32_ref,
    }
}

signed_message! {
    /// 1035: the exchange signs the hash over its key set (`/keys` `exchange_sig`).
    ///
    /// In protocol v23 `hc` is [`KeySet::denominations_hash`] and `list_issue_date` the
    /// response's `list_issue_date`.
    KeySet = purpose_code::EXCHANGE_KEY_SET, size 80;
    {
        list_issue_date: Timestamp => ts,
        hc: HashCode => hash,
    }
}

impl KeySet {
    /// The `hc` the v23 C exchange signs for `/keys` (`taler-exchange-httpd_keys.c`
    /// `compute_msig_hash`, checked the same way by its client in `exchange_api_handle.c`):
    /// SHA-512 over the 64-byte `master_sig` (purpose 1025) of every denomination in the
    /// response, **in the order of the grouped `denominations` array**: group 0's `denoms[0]`,
    /// `denoms[1]`, …, then group 1's, and so on. Nothing else is covered: not the signing keys,
    /// accounts, fees, the denominations' keys or times (the master signatures cover those).
    /// Revoked denominations are listed under `recoup` only, so they are not hashed; ones that
    /// start in the future are listed and hashed.
    ///
    /// The C exchange builds the groups by walking its denominations from the latest
    /// `stamp_start` to the earliest, opening a group (keyed by cipher, value, fees, age mask) when
    /// it first meets one, so both the group order and the order inside a group are by
    /// descending start time; and it sets `list_issue_date` to the **earliest** `stamp_start`
    /// among the listed denominations. A client only recomputes the hash in the order it reads,
    /// so any order works as long as the JSON and the hash agree; follow the C order anyway.
    pub fn denominations_hash<'a>(
        master_sigs_in_response_order: impl IntoIterator<Item = &'a EddsaSignature>,
    ) -> HashCode {
        let mut h = Sha512Hasher::new();
        for sig in master_sigs_in_response_order {
            h.update(sig.as_bytes());
        }
        h.finalize()
    }
}

signed_message! {
    /// 1036: the exchange says which wire transfer paid a deposit (`GET /deposits/…`).
    ConfirmWire = purpose_code::EXCHANGE_CONFIRM_WIRE, size 232;
    {
        h_wire: HashCode => hash,
        h_contract_terms: HashCode => hash,
        wtid: [u8; 32] => raw32,
        coin_pub: EddsaPublicKey => eddsa,
        execution_time: Timestamp => ts,
        coin_contribution: Amount => amount,
    }
}

signed_message! {
    /// 1037: the exchange describes an aggregated wire transfer (`GET /transfers/…`).
    WireDepositConfirmation = purpose_code::EXCHANGE_CONFIRM_WIRE_DEPOSIT, size 184;
    {
        total: Amount => amount,
        wire_fee: Amount => amount,
        merchant_pub: EddsaPublicKey => eddsa,
        h_payto: ShortHashCode => short,
        /// SHA-512 over the aggregated deposits, each as [`WireDepositDetail::to_bytes`].
        h_details: HashCode => hash,
    }
}

impl WireDepositConfirmation {
    /// `h_details`: SHA-512 over the aggregated deposits in the order `/transfers/$WTID` lists
    /// them, each as [`WireDepositDetail::to_bytes`] (C `TALER_exchange_online_wire_deposit_append`).
    pub fn hash_details<'a>(details: impl IntoIterator<Item = &'a WireDepositDetail>) -> HashCode {
        let mut h = Sha512Hasher::new();
        for d in details {
            h.update(&d.to_bytes());
        }
        h.finalize()
    }
}

/// One aggregated deposit inside [`WireDepositConfirmation::h_details`] (not signed by itself).
#[derive(Debug, Clone, PartialEq)]
pub struct WireDepositDetail {
    pub h_contract_terms: HashCode,
    pub execution_time: Timestamp,
    pub coin_pub: EddsaPublicKey,
    pub deposit_value: Amount,
    pub deposit_fee: Amount,
}

impl WireDepositDetail {
    /// The 152 bytes hashed into `h_details`.
    pub fn to_bytes(&self) -> Vec<u8> {
        Body::new(152)
            .hash(&self.h_contract_terms)
            .ts(&self.execution_time)
            .eddsa(&self.coin_pub)
            .amount(&self.deposit_value)
            .amount(&self.deposit_fee)
            .done()
    }
}

signed_message! {
    /// 1038: the exchange confirms a refund.
    RefundConfirmation = purpose_code::EXCHANGE_CONFIRM_REFUND, size 168;
    {
        h_contract_terms: HashCode => hash,
        coin_pub: EddsaPublicKey => eddsa,
        merchant_pub: EddsaPublicKey => eddsa,
        rtransaction_id: u64 => u64_ref,
        refund_amount: Amount => amount,
    }
}

signed_message! {
    /// 1039: the exchange confirms a recoup into a reserve.
    RecoupConfirmation = purpose_code::EXCHANGE_CONFIRM_RECOUP, size 104;
    {
        timestamp: Timestamp => ts,
        recoup_amount: Amount => amount,
        coin_pub: EddsaPublicKey => eddsa,
        reserve_pub: EddsaPublicKey => eddsa,
    }
}

signed_message! {
    /// 1040: the exchange closed a reserve and wired the rest back.
    ReserveClosed = purpose_code::EXCHANGE_RESERVE_CLOSED, size 160;
    {
        timestamp: Timestamp => ts,
        closing_amount: Amount => amount,
        closing_fee: Amount => amount,
        reserve_pub: EddsaPublicKey => eddsa,
        h_payto: ShortHashCode => short,
        wtid: [u8; 32] => raw32,
    }
}

signed_message! {
    /// 1041: the exchange confirms a recoup of a refreshed coin into its old coin.
    RecoupRefreshConfirmation = purpose_code::EXCHANGE_CONFIRM_RECOUP_REFRESH, size 104;
    {
        timestamp: Timestamp => ts,
        recoup_amount: Amount => amount,
        coin_pub: EddsaPublicKey => eddsa,
        old_coin_pub: EddsaPublicKey => eddsa,
    }
}

signed_message! {
    /// 1042: the exchange does not know this denomination.
    DenominationUnknown = purpose_code::EXCHANGE_AFFIRM_DENOM_UNKNOWN, size 80;
    {
        timestamp: Timestamp => ts,
        h_denom_pub: HashCode => hash,
    }
}

signed_message! {
    /// 1043: the denomination is not valid for the operation now.
    DenominationExpired = purpose_code::EXCHANGE_AFFIRM_DENOM_EXPIRED, size 88;
    {
        timestamp: Timestamp => ts,
        /// Operation name, NUL-padded (not necessarily terminated) to 8 bytes; see [`operation_name`].
        operation: [u8; 8] => raw8,
        h_denom_pub: HashCode => hash,
    }
}

/// The 8-byte NUL-padded operation field of [`DenominationExpired`] (longer names are cut, as
/// the C exchange cuts them: it answers `"oper":"csr-withdraw"` but signs `csr-with`). The v23
/// exchange's names: `DEPOSIT`, `MELT`, `RECOUP`, `RECOUP-REFRESH`, `REVEAL`, `csr-melt`,
/// `csr-withdraw`, `PURSE CREATE`.
pub fn operation_name(op: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (dst, src) in out.iter_mut().zip(op.as_bytes()) {
        *dst = *src;
    }
    out
}

// ---------------------------------------------------------------- merchant signatures

signed_message! {
    /// 1101: the merchant signs the contract (claim response). Verified by the wallet.
    ContractSig = purpose_code::MERCHANT_CONTRACT, size 72;
    { h_contract_terms: HashCode => hash }
}

signed_message! {
    /// 1104: the merchant confirms payment (pay response). Verified by the wallet.
    PaymentOk = purpose_code::MERCHANT_PAYMENT_OK, size 72;
    { h_contract_terms: HashCode => hash }
}

signed_message! {
    /// 1102: the merchant authorises a refund of one coin.
    MerchantRefund = purpose_code::MERCHANT_REFUND, size 136;
    {
        h_contract_terms: HashCode => hash,
        coin_pub: EddsaPublicKey => eddsa,
        rtransaction_id: u64 => u64_ref,
        refund_amount: Amount => amount,
    }
}

signed_message! {
    /// 1103: the merchant asks about the wire transfer of a deposit (C exchange v14+/v23 layout):
    /// `GET /deposits/$H_WIRE/$MERCHANT_PUB/$H_CONTRACT_TERMS/$COIN_PUB?merchant_sig=…`, verified
    /// with the merchant key from the path (which the message itself does not contain).
    TrackTransaction = purpose_code::MERCHANT_TRACK_TRANSACTION, size 168;
    {
        h_contract_terms: HashCode => hash,
        h_wire: HashCode => hash,
        coin_pub: EddsaPublicKey => eddsa,
    }
}

signed_message! {
    /// 1103 in wallet-core's older layout (adds the merchant key before the coin).
    TrackTransactionWallet = purpose_code::MERCHANT_TRACK_TRANSACTION, size 200;
    {
        h_contract_terms: HashCode => hash,
        h_wire: HashCode => hash,
        merchant_pub: EddsaPublicKey => eddsa,
        coin_pub: EddsaPublicKey => eddsa,
    }
}

// ---------------------------------------------------------------- wallet (coin/reserve) signatures

signed_message! {
    /// 1200, protocol v12–v23: the reserve authorises one withdrawal.
    WithdrawRequestV12 = purpose_code::WALLET_RESERVE_WITHDRAW, size 160;
    {
        /// Coin value plus withdraw fee.
        amount_with_fee: Amount => amount,
        h_denom_pub: HashCode => hash,
        h_coin_envelope: HashCode => hash,
    }
}

/// 1200 in protocol v23: the same layout as v12 (one signature per coin of a batch-withdraw,
/// `amount_with_fee` = the denomination's value plus its withdraw fee).
pub type WithdrawRequestV23 = WithdrawRequestV12;

signed_message! {
    /// 1208, protocol v23: the reserve asks for its history (`GET /reserves/$RESERVE_PUB/history`).
    /// The signature travels in the `Taler-Reserve-History-Signature` request header and covers
    /// only `start_off`, the `start` query parameter (0 when absent); a bad one is answered 403
    /// `EXCHANGE_RESERVE_HISTORY_BAD_SIGNATURE`.
    ReserveHistoryRequest = purpose_code::WALLET_RESERVE_HISTORY, size 16;
    { start_off: u64 => u64_ref }
}

signed_message! {
    /// 1209, protocol v23: the coin asks for its history (`GET /coins/$COIN_PUB/history`, the
    /// proof a wallet fetches after a double-spending 409). The signature travels in the
    /// `Taler-Coin-History-Signature` request header and covers only `start_off`, the `start`
    /// query parameter (0 when absent); a bad one is answered 403
    /// `EXCHANGE_COIN_HISTORY_BAD_SIGNATURE`. C: `TALER_CoinHistoryRequestPS`,
    /// `TALER_wallet_coin_history_sign`/`_verify` in `src/util/wallet_signatures.c`.
    CoinHistoryRequest = purpose_code::WALLET_COIN_HISTORY, size 16;
    { start_off: u64 => u64_ref }
}

signed_message! {
    /// 1201, protocol v12: the coin authorises a deposit.
    DepositRequestV12 = purpose_code::WALLET_COIN_DEPOSIT, size 392;
    {
        h_contract_terms: HashCode => hash,
        /// All zero without age restriction.
        h_age_commitment: [u8; 32] => raw32,
        /// Extensions/policy hash; all zero when there is none.
        h_policy: HashCode => hash,
        h_wire: HashCode => hash,
        h_denom_pub: HashCode => hash,
        /// The contract's `timestamp`.
        wallet_timestamp: Timestamp => ts,
        refund_deadline: Timestamp => ts,
        /// This coin's contribution including the deposit fee.
        amount_with_fee: Amount => amount,
        deposit_fee: Amount => amount,
        merchant_pub: EddsaPublicKey => eddsa,
    }
}

signed_message! {
    /// 1201, protocol v23: as v12 plus the wallet data hash (all zero when absent).
    DepositRequestV23 = purpose_code::WALLET_COIN_DEPOSIT, size 456;
    {
        h_contract_terms: HashCode => hash,
        h_age_commitment: [u8; 32] => raw32,
        h_policy: HashCode => hash,
        h_wire: HashCode => hash,
        h_denom_pub: HashCode => hash,
        wallet_timestamp: Timestamp => ts,
        refund_deadline: Timestamp => ts,
        amount_with_fee: Amount => amount,
        deposit_fee: Amount => amount,
        merchant_pub: EddsaPublicKey => eddsa,
        wallet_data_hash: HashCode => hash,
    }
}

signed_message! {
    /// 1202: the old coin authorises a melt.
    Melt = purpose_code::WALLET_COIN_MELT, size 216;
    {
        rc: HashCode => hash,
        h_denom_pub: HashCode => hash,
        h_age_commitment: [u8; 32] => raw32,
        amount_with_fee: Amount => amount,
        melt_fee: Amount => amount,
    }
}

signed_message! {
    /// 1203: the coin asks for a recoup into its reserve.
    Recoup = purpose_code::WALLET_COIN_RECOUP, size 104;
    {
        h_denom_pub: HashCode => hash,
        /// The coin's RSA blinding key secret.
        coin_bks: [u8; 32] => raw32,
    }
}

signed_message! {
    /// 1206: a refreshed coin asks for a recoup into its old coin.
    RecoupRefresh = purpose_code::WALLET_COIN_RECOUP_REFRESH, size 104;
    {
        h_denom_pub: HashCode => hash,
        coin_bks: [u8; 32] => raw32,
    }
}

signed_message! {
    /// 1204: the old coin links a fresh coin to its transfer key.
    Link = purpose_code::WALLET_COIN_LINK, size 200;
    {
        h_denom_pub: HashCode => hash,
        transfer_pub: EcdhePublicKey => ecdhe,
        h_age_commitment: [u8; 32] => raw32,
        coin_envelope_hash: HashCode => hash,
    }
}

// ---------------------------------------------------------------- security-module signatures

signed_message! {
    /// 1251: the EdDSA security module announces an online signing key (`/management/keys`
    /// `future_signkeys[].signkey_secmod_sig`, signed by `signkey_secmod_public_key`). The
    /// duration is how long the key signs: `stamp_expire - stamp_start`.
    SigningKeyAnnouncement = purpose_code::SM_SIGNING_KEY, size 56;
    {
        exchange_pub: EddsaPublicKey => eddsa,
        anchor_time: Timestamp => ts,
        duration: RelativeTime => rel,
    }
}

signed_message! {
    /// 1250: the RSA security module announces a denomination key (`/management/keys`
    /// `future_denoms[].denom_secmod_sig`, signed by `denom_secmod_public_key`). The duration is
    /// the withdrawal period: `stamp_expire_withdraw - stamp_start`.
    RsaDenominationKeyAnnouncement = purpose_code::SM_RSA_DENOMINATION_KEY, size 152;
    {
        /// `SHA-512` of the RSA public key's encoding ([`crate::rsa::RsaPublicKey::pub_hash`]),
        /// not `h_denom_pub`.
        h_rsa_pub: HashCode => hash,
        /// `SHA-512(section_name ‖ 0x00)`: the configuration section of the denomination
        /// (`future_denoms[].section_name`, e.g. `coin_kudos_1`).
        h_section_name: HashCode => hash,
        anchor_time: Timestamp => ts,
        duration_withdraw: RelativeTime => rel,
    }
}

impl RsaDenominationKeyAnnouncement {
    /// The announcement of `key` for configuration section `section_name` (C
    /// `TALER_exchange_secmod_rsa_sign`).
    pub fn new(
        key: &crate::rsa::RsaPublicKey,
        section_name: &str,
        anchor_time: Timestamp,
        duration_withdraw: RelativeTime,
    ) -> Self {
        Self {
            h_rsa_pub: key.pub_hash(),
            h_section_name: hash_c_string(section_name),
            anchor_time,
            duration_withdraw,
        }
    }
}

signed_message! {
    /// 1252: the CS security module announces a denomination key; the layout of 1250.
    CsDenominationKeyAnnouncement = purpose_code::SM_CS_DENOMINATION_KEY, size 152;
    {
        /// `SHA-512` of the 32-byte CS public key ([`crate::cs::h_cs_pub`]), not `h_denom_pub`.
        h_cs_pub: HashCode => hash,
        /// `SHA-512(section_name ‖ 0x00)`.
        h_section_name: HashCode => hash,
        anchor_time: Timestamp => ts,
        duration_withdraw: RelativeTime => rel,
    }
}

impl CsDenominationKeyAnnouncement {
    /// The announcement of CS key `key` for configuration section `section_name` (C
    /// `TALER_exchange_secmod_cs_sign`).
    pub fn new(
        key: &[u8; 32],
        section_name: &str,
        anchor_time: Timestamp,
        duration_withdraw: RelativeTime,
    ) -> Self {
        Self {
            h_cs_pub: crate::cs::h_cs_pub(key),
            h_section_name: hash_c_string(section_name),
            anchor_time,
            duration_withdraw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CryptoError, EddsaPrivateKey, verify};

    #[test]
    fn coin_history_request_is_purpose_1209_over_the_start_offset() {
        let m = CoinHistoryRequest {
            start_off: 0x0102_0304_0506_0708,
        };
        assert_eq!(m.purpose(), 1209);
        assert_eq!(CoinHistoryRequest::SIGNED_SIZE, 16);
        assert_eq!(
            m.to_bytes(),
            [0, 0, 0, 16, 0, 0, 0x04, 0xb9, 1, 2, 3, 4, 5, 6, 7, 8],
            "u32be size, u32be purpose, u64be start_off"
        );
        assert_eq!(
            CoinHistoryRequest { start_off: 0 }.to_bytes(),
            [0, 0, 0, 16, 0, 0, 0x04, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn coin_history_request_round_trips() {
        let coin = EddsaPrivateKey::from_bytes(&[0x42; 32]);
        let other = EddsaPrivateKey::from_bytes(&[0x43; 32]);
        let m = CoinHistoryRequest { start_off: 7 };
        let sig = coin.sign(&m);
        verify(&coin.public(), &sig, &m).expect("own signature verifies");
        assert_eq!(
            verify(&coin.public(), &sig, &CoinHistoryRequest { start_off: 8 }),
            Err(CryptoError::InvalidSignature),
            "another offset"
        );
        assert_eq!(
            verify(&other.public(), &sig, &m),
            Err(CryptoError::InvalidSignature),
            "another coin"
        );
        // Not interchangeable with the reserve's history request over the same offset.
        assert_eq!(
            verify(
                &coin.public(),
                &sig,
                &ReserveHistoryRequest { start_off: 7 }
            ),
            Err(CryptoError::InvalidSignature)
        );
    }
}
